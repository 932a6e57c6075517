//! Asking the person at the terminal: secrets read without echo, and confirmations of
//! destructive commands. Off a terminal nothing is asked: the command needs its explicit flag
//! (`--token-file -`, `--password-stdin`, `--yes`) or fails at once with a message saying so,
//! instead of waiting for input that will never come.

use super::client::ClientError;
use std::io::{BufRead, IsTerminal, Write};

/// Whether standard input is a terminal a person types at.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads a secret typed at the terminal, without echo. `missing` says what to do instead when
/// standard input is not a terminal.
pub fn secret(prompt: &str, missing: &str) -> Result<String, ClientError> {
    if !interactive() {
        return Err(ClientError::Usage(format!(
            "standard input is not a terminal: {missing}"
        )));
    }
    let value = rpassword::prompt_password(format!("{prompt}: "))
        .map_err(|e| ClientError::Usage(format!("cannot read the {prompt}: {e}")))?;
    Ok(value.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads one line from standard input (for secrets piped in on purpose).
pub fn line(what: &str) -> Result<String, ClientError> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut text)
        .map_err(|e| ClientError::Usage(format!("cannot read the {what} from standard input: {e}")))?;
    let value = text.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        return Err(ClientError::Usage(format!("expected the {what} on standard input")));
    }
    Ok(value)
}

/// Asks before a destructive action. `yes` (the `--yes` flag) answers for scripts; on a terminal
/// the summary is shown and `yes` must be typed; otherwise the action is refused.
pub fn confirm(summary: &[String], yes: bool) -> Result<(), ClientError> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        return Err(ClientError::Usage(format!(
            "{} Standard input is not a terminal, so nothing was asked and nothing was done: pass --yes to confirm.",
            summary.join(" ")
        )));
    }
    let mut err = std::io::stderr().lock();
    for line in summary {
        let _ = writeln!(err, "{line}");
    }
    let _ = write!(err, "Type 'yes' to continue: ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ClientError::Usage(format!("cannot read the answer: {e}")))?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(ClientError::Usage("not confirmed; nothing was done".into()))
    }
}
