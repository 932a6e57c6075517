//! `provisio config export|plan|apply`: configuration as code over the admin API. The document is
//! sent as written; the tokens and bind passwords it names (`token_file`, `token_env`,
//! `bind_password_file`, `bind_password_env`) are read here, on the operator's machine, and sent
//! beside it.

use super::RemoteArgs;
use super::client::ClientError;
use super::output::print_json;
use super::session::connect;
use crate::domain::config_doc::{SecretRef, parse};
use crate::service::config_doc::{ConfigChanges, ConfigExport};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

const NO_BODY: Option<&Value> = None;

/// `provisio config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the hub's attributes, apps, policies (with the groups they name) and LDAP sources as a
    /// TOML document.
    Export {
        /// Write the document to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Show what applying a document would change, object by object (changes nothing).
    Plan {
        /// The TOML document.
        file: PathBuf,
        /// Also list the deletions of what the document leaves out.
        #[arg(long)]
        prune: bool,
    },
    /// Apply a document in one transaction: what its plan lists, or nothing.
    Apply {
        /// The TOML document.
        file: PathBuf,
        /// Delete the apps, policies, attributes and LDAP sources the document leaves out (never
        /// directory groups).
        #[arg(long)]
        prune: bool,
    },
}

/// Runs `provisio config ...`.
pub async fn config(remote: &RemoteArgs, command: ConfigCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        ConfigCommand::Export { output } => {
            let export: ConfigExport = client.request(Method::GET, "/api/v1/config", NO_BODY).await?;
            match output {
                Some(path) => std::fs::write(&path, export.document)
                    .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))?,
                None => print!("{}", export.document),
            }
            Ok(())
        }
        ConfigCommand::Plan { file, prune } => {
            let body = request_body(&file, prune)?;
            let plan: ConfigChanges = client.request(Method::POST, "/api/v1/config/plan", Some(&body)).await?;
            show(remote, &plan, "no changes: the hub matches the document", "to change");
            Ok(())
        }
        ConfigCommand::Apply { file, prune } => {
            let body = request_body(&file, prune)?;
            let done: ConfigChanges = client
                .request(Method::POST, "/api/v1/config/apply", Some(&body))
                .await?;
            show(
                remote,
                &done,
                "no changes: the hub already matched the document",
                "changed",
            );
            Ok(())
        }
    }
}

fn show(remote: &RemoteArgs, changes: &ConfigChanges, nothing: &str, verb: &str) {
    if remote.json {
        print_json(changes);
    } else if changes.changes.is_empty() {
        println!("{nothing}");
    } else {
        for change in &changes.changes {
            println!("{change}");
        }
        println!("{} object(s) {verb}", changes.changes.len());
    }
}

/// The request: the document as written and the secrets it names. A document that does not
/// parse is sent without secrets, so the hub's refusal (with its line) is the one answer.
fn request_body(file: &PathBuf, prune: bool) -> Result<Value, ClientError> {
    let document = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let mut app_tokens = Map::new();
    let mut ldap_passwords = Map::new();
    if let Ok(parsed) = parse(&document) {
        for (app, reference) in parsed.token_refs() {
            // Trimmed whole, as `apps create` reads a token file: the same file gives the same token.
            let secret = read_secret(&reference, &format!("the token of the app '{app}'"))?
                .trim()
                .to_owned();
            app_tokens.insert(app, Value::String(secret));
        }
        for (source, reference) in parsed.password_refs() {
            let secret = read_secret(&reference, &format!("the bind password of the LDAP source '{source}'"))?;
            ldap_passwords.insert(source, Value::String(secret));
        }
    }
    Ok(json!({
        "document": document,
        "secrets": {"app_tokens": app_tokens, "ldap_passwords": ldap_passwords},
        "prune": prune,
    }))
}

/// Reads one secret from the file or environment variable the document names.
fn read_secret(reference: &SecretRef, what: &str) -> Result<String, ClientError> {
    let secret = match reference {
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("{what}: cannot read the file {path}: {e}")))?,
        SecretRef::Env(name) => std::env::var(name)
            .map_err(|_| ClientError::Usage(format!("{what}: the environment variable {name} is not set")))?,
    };
    let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(ClientError::Usage(format!("{what}: the {reference} is empty")));
    }
    Ok(secret)
}
