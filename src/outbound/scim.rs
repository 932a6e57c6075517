//! A SCIM 2.0 client for outbound targets: sends requests with the app's bearer token, classifies
//! failures (transient or permanent), reads `Retry-After`, and explains connection problems in
//! words an administrator understands. Answers are read up to a size cap, and no request goes to a
//! link-local address unless the server allows it.

use super::resolve::{TargetResolver, redirect_policy, refusal_cause};
use crate::domain::address::{is_link_local, literal_address, refusal};
use provisio_scim::ast::{AttrPath, CompareOp, Filter};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The media type SCIM uses.
pub const SCIM_JSON: &str = "application/scim+json";

/// The largest answer read from a target by default (1 MiB is plenty for a SCIM answer).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

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
    /// The target answered, but its answer cannot be used: larger than the cap, or a create
    /// without the new resource's id. Trying again would not help.
    #[error("{message}")]
    Unusable {
        /// HTTP status of the answer.
        status: u16,
        /// Explanation for people.
        message: String,
    },
    /// The hub refused to connect: the target's address is link-local and not allowed.
    #[error("{message}")]
    Refused {
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
            ScimError::NotScim { .. } | ScimError::Unusable { .. } | ScimError::Refused { .. } => false,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The HTTP status of the target's answer, also when the answer was unusable.
    pub fn answer_status(&self) -> Option<u16> {
        match self {
            ScimError::Status { status, .. } | ScimError::Unusable { status, .. } => Some(*status),
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
    max_answer_bytes: usize,
    allow_link_local: bool,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client shared by every target (connection pooling, timeouts). Host names are
/// resolved by [`TargetResolver`], which drops link-local addresses unless `allow_link_local`;
/// redirects to link-local literal addresses are refused likewise.
pub fn http_client(timeout: Duration, allow_link_local: bool) -> Result<reqwest::Client, String> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .dns_resolver(TargetResolver { allow_link_local })
        .redirect(redirect_policy(allow_link_local))
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

/// Classifies a failure to get an answer: the hub's own refusal of a link-local address, or a
/// transport problem put in words.
fn transport_error(error: &reqwest::Error, url: &str) -> ScimError {
    match refusal_cause(error) {
        Some(message) => ScimError::Refused { message },
        None => ScimError::Transport {
            message: explain_transport(error, url),
        },
    }
}

/// Reads an answer's body, at most `limit` bytes: a longer one (announced or streamed) is
/// refused without reading the rest.
async fn read_capped(mut response: reqwest::Response, limit: usize, url: &str) -> Result<Vec<u8>, ScimError> {
    let status = response.status().as_u16();
    let too_large = || ScimError::Unusable {
        status,
        message: format!("the target's answer exceeded {limit} bytes; it was not read further"),
    };
    if response
        .content_length()
        .is_some_and(|length| usize::try_from(length).map_or(true, |length| length > limit))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, url))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
            max_answer_bytes: MAX_ANSWER_BYTES,
            allow_link_local: false,
        }
    }

    /// Reads answers up to `max_answer_bytes`, and sends to a link-local literal address only when
    /// `allow_link_local` (by default: [`MAX_ANSWER_BYTES`], refused).
    pub fn with_limits(mut self, max_answer_bytes: usize, allow_link_local: bool) -> Self {
        self.max_answer_bytes = max_answer_bytes;
        self.allow_link_local = allow_link_local;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends one request to `path` (relative to the base URL) and returns the answer, or the error
    /// classified. Never logs or returns the token.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ScimResponse, ScimError> {
        let url = format!("{}{path}", self.base_url);
        // Literal addresses are not resolved, so the resolver cannot refuse them: refuse here.
        if !self.allow_link_local
            && let Some(address) = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().and_then(literal_address))
                .filter(|ip| is_link_local(*ip))
        {
            return Err(ScimError::Refused {
                message: refusal("the hub refuses to connect to", address),
            });
        }
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, format!("{SCIM_JSON}, application/json"));
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| ScimError::NotScim { message: e.to_string() })?;
            request = request.header(reqwest::header::CONTENT_TYPE, SCIM_JSON).body(bytes);
        }
        let response = request.send().await.map_err(|e| transport_error(&e, &url))?;
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
        let bytes = read_capped(response, self.max_answer_bytes, &url).await?;
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

/// The filter `attribute eq "value"` in its canonical text (the string quoted and escaped as the
/// filter grammar's JSON strings are), for a look-up.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    Filter::Compare {
        path: AttrPath::simple(attribute),
        op: CompareOp::Eq,
        value: Value::String(value.to_owned()),
    }
    .to_string()
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

    #[tokio::test]
    async fn link_local_literals_are_refused_before_connecting() {
        let http = http_client(Duration::from_secs(1), false).unwrap();
        for base in [
            "http://169.254.169.254/scim",
            "http://[fe80::1]/scim",
            "http://[::ffff:169.254.169.254]/",
            "http://2852039166/",
        ] {
            let client = ScimClient::new(http.clone(), base, SecretString::from("t"));
            match client.send(Method::GET, "/Users?count=1", None).await {
                Err(ScimError::Refused { message }) => assert!(message.contains("link-local"), "{message}"),
                other => panic!("{base}: {other:?}"),
            }
        }
    }

    /// Resolves every name to the crafted addresses, through the same filter as [`TargetResolver`].
    struct Crafted(Vec<std::net::SocketAddr>);

    impl reqwest::dns::Resolve for Crafted {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let kept = super::super::resolve::allowed_addresses(name.as_str(), self.0.clone(), false);
            Box::pin(async move {
                let addrs: reqwest::dns::Addrs = Box::new(kept?.into_iter());
                Ok(addrs)
            })
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_link_local_is_refused_as_such() {
        let metadata = std::net::SocketAddr::from(([169, 254, 169, 254], 80));
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .dns_resolver(Crafted(vec![metadata]))
            .build()
            .unwrap();
        let client = ScimClient::new(http, "http://metadata.example/scim", SecretString::from("t"));
        match client.send(Method::GET, "/Users?count=1", None).await {
            Err(ScimError::Refused { message }) => {
                assert!(
                    message.contains("metadata.example") && message.contains("169.254.169.254"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_redirect_to_link_local_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::FOUND,
                [(axum::http::header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
            )
        });
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = http_client(Duration::from_secs(5), false).unwrap();
        let client = ScimClient::new(http, &format!("http://{address}/scim"), SecretString::from("t"));
        let result = client.send(Method::GET, "/Users?count=1", None).await;
        server.abort();
        match result {
            Err(ScimError::Refused { message }) => assert!(message.contains("redirect"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn look_up_filters_escape_what_the_grammar_needs() {
        assert_eq!(eq_filter("userName", r#"a"b\c"#), r#"userName eq "a\"b\\c""#);
        // A control character is escaped, and the filter parses back to the same value.
        let text = eq_filter("userName", "tab\there");
        assert_eq!(text, r#"userName eq "tab\there""#);
        let parsed = provisio_scim::filter::parse_filter(&text).expect("parses");
        assert_eq!(
            parsed,
            Filter::Compare {
                path: AttrPath::simple("userName"),
                op: CompareOp::Eq,
                value: Value::String("tab\there".into()),
            }
        );
    }
}
