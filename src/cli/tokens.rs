//! `provisio tokens ...` and `provisio scim-tokens ...`: API and SCIM tokens over the admin API.

use super::RemoteArgs;
use super::client::{ClientError, encode};
use super::output::{print_json, print_table, when};
use super::session::connect;
use crate::api::IssuedTokenBody;
use crate::domain::admin::ApiToken;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

const NO_BODY: Option<&Value> = None;

// ---------------------------------------------------------------- tokens

/// `provisio tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token; prints only the secret (or the whole record with --json).
    Create {
        /// A label for the token.
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

/// `provisio tokens ...` (collection `/api/v1/tokens`) and `provisio scim-tokens ...`
/// (collection `/api/v1/scim-tokens`).
pub async fn tokens(remote: &RemoteArgs, command: TokensCommand, collection: &str) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        TokensCommand::Create { name } => {
            let issued: IssuedTokenBody = client
                .request(Method::POST, collection, Some(&json!({"name": name})))
                .await?;
            if remote.json {
                print_json(&issued)
            } else {
                println!("{}", issued.secret)
            }
        }
        TokensCommand::List => {
            let tokens: Vec<ApiToken> = client.request(Method::GET, collection, NO_BODY).await?;
            if remote.json {
                print_json(&tokens);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            format!("{}...", t.prefix),
                            when(t.created_at),
                            t.revoked_at
                                .map(|r| format!("revoked {r}"))
                                .unwrap_or_else(|| "active".into()),
                            t.id.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "PREFIX", "CREATED", "STATE", "ID"], &rows);
            }
        }
        TokensCommand::Revoke { id } => {
            let token: ApiToken = client
                .request(Method::DELETE, &format!("{collection}/{}", encode(&id)), NO_BODY)
                .await?;
            if remote.json {
                print_json(&token)
            } else {
                println!("revoked token {} ({})", token.name, token.id)
            }
        }
    }
    Ok(())
}
