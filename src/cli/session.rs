//! The CLI's session with a hub: the saved server and token (`cli.toml`), connecting, and `login`.

use super::RemoteArgs;
use super::client::{Client, ClientError};
use crate::api::IssuedTokenBody;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The CLI config file.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct CliConfig {
    server: Option<String>,
    token: Option<String>,
}

fn config_path(remote: &RemoteArgs) -> Option<PathBuf> {
    remote
        .cli_config
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/provisio/cli.toml")))
}

fn read_config(remote: &RemoteArgs) -> Result<CliConfig, ClientError> {
    let Some(path) = config_path(remote) else {
        return Ok(CliConfig::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
        Err(e) => Err(ClientError::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// A client for the hub the remote flags (or the CLI config file) name.
pub(super) fn connect(remote: &RemoteArgs) -> Result<Client, ClientError> {
    let file = read_config(remote)?;
    let server = remote
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let token = remote.token.clone().or(file.token);
    if token.is_none() {
        return Err(ClientError::Usage(
            "no API token: pass --token, set PROVISIO_TOKEN, run `provisio login`, or create one with `provisio admin-token`".into(),
        ));
    }
    Client::new(&server, token)
}

/// `provisio login`.
pub async fn login(remote: &RemoteArgs, username: &str, password_stdin: bool) -> Result<(), ClientError> {
    let file = read_config(remote)?;
    let server = remote
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let client = Client::new(&server, None)?;
    let read = |what: &str| -> Result<String, ClientError> {
        if password_stdin {
            super::prompt::line(what)
        } else {
            super::prompt::secret(
                what,
                "pass --password-stdin to read the password (and a new one, on the next line) from it",
            )
        }
    };
    let password = read("password")?;
    let body = json!({"username": username, "password": password, "token_name": "cli-login"});
    let issued: IssuedTokenBody = match client.request(Method::POST, "/api/v1/auth/login", Some(&body)).await {
        Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::FORBIDDEN => {
            eprintln!("the one-time password must be replaced");
            let new_password = read("new password")?;
            let body = json!({"username": username, "password": password, "new_password": new_password, "token_name": "cli-login"});
            client.request(Method::POST, "/api/v1/auth/login", Some(&body)).await?
        }
        other => other?,
    };
    let path = config_path(remote)
        .ok_or_else(|| ClientError::Usage("no HOME and no --cli-config: cannot save the token".into()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let config = CliConfig {
        server: Some(server),
        token: Some(issued.secret),
    };
    let text = toml::to_string(&config).map_err(|e| ClientError::Other(e.to_string()))?;
    write_private(&path, &text)?;
    eprintln!("logged in; token saved in {}", path.display());
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), ClientError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))
}
