//! A small client of the admin REST API, used by the CLI's remote commands.

use crate::api::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What can go wrong talking to a hub; each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The API error code.
        code: String,
        /// The API error message (with the field, when one is named).
        message: String,
    },
    /// The hub could not be reached.
    #[error("cannot reach the hub at {server}: {reason}")]
    Unreachable {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
    },
    /// The command line or local setup is wrong.
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The process exit code for this error (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Api { status, .. } => match status.as_u16() {
                400 | 413 | 422 => 3,
                404 => 4,
                409 => 5,
                401 | 403 => 6,
                503 => 8,
                _ => 1,
            },
            ClientError::Unreachable { .. } => 7,
            ClientError::Usage(_) => 2,
            ClientError::Other(_) => 1,
        }
    }
}

/// An authenticated connection to one hub.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with an optional bearer token.
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request to `path` (under the server URL) and decodes the JSON answer.
    pub async fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Other(format!("the hub sent an unexpected answer ({status}): {e}")))
    }

    /// Sends a request whose answer has no body.
    pub async fn request_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        self.send(method, path, body).await.map(|_| ())
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => {
                let message = match body.error.field {
                    Some(field) if !body.error.message.starts_with(&field) => {
                        format!("{field}: {}", body.error.message)
                    }
                    _ => body.error.message,
                };
                (body.error.code, message)
            }
            Err(_) => ("http_error".to_owned(), format!("the hub answered {status}")),
        };
        Err(ClientError::Api { status, code, message })
    }

    fn unreachable(&self, error: reqwest::Error) -> ClientError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        ClientError::Unreachable {
            server: self.server.clone(),
            reason,
        }
    }
}

/// Percent-encodes one path segment or query value.
pub use crate::outbound::scim::encode_query as encode;
