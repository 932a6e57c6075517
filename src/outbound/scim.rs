//! A SCIM 2.0 client for outbound targets: sends requests with the app's bearer token, classifies
//! failures (transient or permanent), reads `Retry-After`, and explains connection problems in
//! words an administrator understands.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The media type SCIM uses.
pub const SCIM_JSON: &str = "application/scim+json";

/// What went wrong with a target request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScimError {
    /// No HTTP answer: DNS, TLS, refused or reset connection, timeout.
    #[error("{message}")]
    Transport {
        /// Explanation for people.
        message: String,
    },
    /// The target answered with an error status.
    #[error("{status}: {detail}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The target's own explanation (SCIM `detail`, else the body's start).
        detail: String,
        /// SCIM `scimType`, when given.
        scim_type: Option<String>,
        /// How long the target asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The target answered, but not with SCIM JSON.
    #[error("{message}")]
    NotScim {
        /// Explanation for people.
        message: String,
    },
}

impl ScimError {
    /// Whether trying again later may succeed (connection problems, timeouts, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ScimError::Transport { .. } => true,
            ScimError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            ScimError::NotScim { .. } => false,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the target asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ScimError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ScimResponse {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// A client for one app's SCIM base URL.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client shared by every target (connection pooling, timeouts).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("provisio/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Parses `Retry-After` in both forms: delay seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Puts a reqwest failure in words: DNS, TLS, refused, timeout.
fn explain_transport(error: &reqwest::Error, url: &str) -> String {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        source = inner.source();
    }
    let lower = chain.to_lowercase();
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url);
    if error.is_timeout() {
        format!("the target at {host} did not answer in time")
    } else if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service not known")
    {
        format!("the host name in {host} could not be resolved (DNS): check the base URL")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        format!("the TLS connection to {host} failed ({chain}): check the certificate and the URL scheme")
    } else if lower.contains("connection refused") {
        format!("nothing accepts connections at {host} (connection refused): check the host and port")
    } else {
        format!("the connection to {host} failed: {chain}")
    }
}

impl ScimClient {
    /// A client for `base_url` with `token`, over the shared `http` client.
    pub fn new(http: reqwest::Client, base_url: &str, token: SecretString) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends one request to `path` (relative to the base URL) and returns the answer, or the error
    /// classified. Never logs or returns the token.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ScimResponse, ScimError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, format!("{SCIM_JSON}, application/json"));
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| ScimError::NotScim { message: e.to_string() })?;
            request = request.header(reqwest::header::CONTENT_TYPE, SCIM_JSON).body(bytes);
        }
        let response = request.send().await.map_err(|e| ScimError::Transport {
            message: explain_transport(&e, &url),
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.map_err(|e| ScimError::Transport {
            message: explain_transport(&e, &url),
        })?;
        let body: Option<Value> = if bytes.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if (200..300).contains(&status) {
            return match body {
                Some(body) => Ok(ScimResponse { status, body }),
                None => Err(ScimError::NotScim {
                    message: format!(
                        "the target answered {status} but not with JSON (content type '{content_type}'): is the base URL a SCIM endpoint?"
                    ),
                }),
            };
        }
        let text = String::from_utf8_lossy(&bytes);
        let (detail, scim_type) = match &body {
            Some(Value::Object(map)) => (
                map.get("detail")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| snippet(&text)),
                map.get("scimType").and_then(Value::as_str).map(str::to_owned),
            ),
            _ => (snippet(&text), None),
        };
        Err(ScimError::Status {
            status,
            detail,
            scim_type,
            retry_after,
        })
    }
}

fn snippet(text: &str) -> String {
    let trimmed: String = text.chars().take(300).collect();
    if trimmed.trim().is_empty() {
        "(no details given)".to_owned()
    } else {
        trimmed
    }
}

/// Quotes a value for a SCIM filter string literal.
pub fn filter_literal(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn filter_literals_escape_quotes() {
        assert_eq!(filter_literal(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
