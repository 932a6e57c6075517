//! Independent SCIM software for the tests: scim2-server (from PyPI, installed by
//! `scripts/setup-referees`) started on a loopback port as a real outbound target, and a proxy
//! that can sit in front of it to refuse methods or inject faults.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The venv holding the referees.
pub fn referee_venv() -> PathBuf {
    match std::env::var_os("PROVISIO_REFEREE_VENV") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-referees"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running scim2-server.
pub struct ScimTarget {
    child: Child,
    /// Its SCIM base URL.
    pub base_url: String,
    /// The bearer token it requires.
    pub token: String,
    http: reqwest::Client,
}

impl ScimTarget {
    /// Starts scim2-server on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with_token(&format!("target-token-{}", uuid::Uuid::now_v7().simple())).await
    }

    /// Like [`ScimTarget::start`], requiring `token`.
    pub async fn start_with_token(token: &str) -> Self {
        let token = token.to_owned();
        provisio::install_crypto_provider();
        let venv = referee_venv();
        let binary = venv.join("bin/scim2-server");
        assert!(
            binary.exists(),
            "scim2-server is not installed at {}: run scripts/setup-referees",
            binary.display()
        );
        let port = free_port();
        let child = super::tied_to_test(&mut Command::new(&binary))
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                &token,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scim2-server");
        let base_url = format!("http://127.0.0.1:{port}/v2");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let target = ScimTarget {
            child,
            base_url,
            token,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = target
                .http
                .get(format!("{}/ServiceProviderConfig", target.base_url))
                .send()
                .await
                && response.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "scim2-server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        target
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("target answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Every resource of a kind the target holds, page by page.
    async fn all(&self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (status, body) = self
                .get(&format!("/{kind}?startIndex={}&count=500", out.len() + 1))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body["Resources"].as_array().cloned().unwrap_or_default();
            let total = body["totalResults"].as_u64().unwrap_or(0) as usize;
            let empty = page.is_empty();
            out.extend(page);
            if empty || out.len() >= total {
                return out;
            }
        }
    }

    /// Every user the target holds.
    pub async fn users(&self) -> Vec<Value> {
        self.all("Users").await
    }

    /// The target's user with this userName (case-insensitive), if any.
    pub async fn user(&self, username: &str) -> Option<Value> {
        self.users()
            .await
            .into_iter()
            .find(|u| u["userName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(username)))
    }

    /// One user by id: status and body.
    pub async fn user_by_id(&self, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/Users/{id}")).await
    }

    /// Every group the target holds.
    pub async fn groups(&self) -> Vec<Value> {
        self.all("Groups").await
    }

    /// Sends a request straight to the target (as someone changing it by hand would).
    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").json(&body);
        }
        let response = request.send().await.expect("target answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Creates a user directly in the target (as if someone made it by hand there).
    pub async fn create_user(&self, resource: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/Users", self.base_url))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .json(&resource)
            .send()
            .await
            .expect("target answers");
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.expect("json")
    }
}

impl Drop for ScimTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does to requests.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer PATCH with this status instead of forwarding it.
    pub refuse_patch: Option<u16>,
    /// Answer every request with 503 (the target is down).
    pub down: bool,
    /// Answer this many `GET /Users?filter=...` look-ups with an empty list.
    pub hide_lookups: usize,
    /// Answer this many requests with 500 and a SCIM error whose detail is `fail_detail`.
    pub fail_next: usize,
    /// The detail of those errors.
    pub fail_detail: String,
    /// Random faults, each a share of requests (0.0 to 1.0): 500, 429 with `Retry-After: 1`, the
    /// connection closed after forwarding (the answer is lost), and a stall of `stall` after forwarding.
    pub random: Option<RandomFaults>,
    /// Answer 400 with this detail to any request whose body contains `reject_body_containing`.
    pub reject_body_containing: Option<String>,
    /// Paged listings (`GET /Users?startIndex=...`, `/Groups?...`) answer at most this many
    /// resources per page, whatever `count` asked for.
    pub page_cap: Option<usize>,
    /// Paged listings ignore `count`: the upstream is asked for everything at once.
    pub ignore_count: bool,
    /// After answering the first page of a paged listing, delete its first this-many resources
    /// upstream (once), so that the listing shrinks while it is read.
    pub shrink_after_first_page: usize,
}

/// Shares of requests that get each random fault.
#[derive(Debug, Clone)]
pub struct RandomFaults {
    /// 500 Internal Server Error.
    pub error: f64,
    /// 429 Too Many Requests with `Retry-After: 1`.
    pub throttle: f64,
    /// Forwarded, then the connection is closed mid-answer.
    pub close: f64,
    /// Forwarded, then the answer waits this long (past the hub's timeout).
    pub stall: f64,
    /// How long a stall lasts.
    pub stall_for: Duration,
}

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// When it was answered (or the fault applied).
    pub answered: Instant,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status returned to the hub.
    pub status: u16,
    /// The Authorization header value.
    pub authorization: Option<String>,
}

/// A small deterministic generator, so that fault runs are reproducible.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A body that fails after its first bytes, so that the connection breaks mid-answer.
fn futures_broken_body() -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(axum::body::Bytes::from_static(b"{\"schemas\":")),
        Err(std::io::Error::other("connection dropped by the test")),
    ];
    Body::from_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter<T>(items: Vec<T>) -> impl futures_core::Stream<Item = T> {
    struct Iter<T>(std::vec::IntoIter<T>);
    impl<T> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    impl<T> Unpin for Iter<T> {}
    Iter(items.into_iter())
}

#[derive(Clone)]
struct ProxyState {
    rng: Arc<Mutex<Rng>>,
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Mutex<Faults>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A proxy on a loopback port in front of a SCIM target.
pub struct Proxy {
    /// The base URL to give the hub (same path as the upstream's).
    pub base_url: String,
    faults: Arc<Mutex<Faults>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream_base` (e.g. `http://127.0.0.1:1234/v2`).
    pub async fn start(upstream_base: &str) -> Self {
        provisio::install_crypto_provider();
        let (origin, path) = split_base(upstream_base);
        let faults = Arc::new(Mutex::new(Faults::default()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            rng: Arc::new(Mutex::new(Rng(0x9e37_79b9_7f4a_7c15))),
            upstream: origin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            faults: faults.clone(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            base_url: format!("http://{address}{path}"),
            faults,
            seen,
            task,
        }
    }

    /// Changes what the proxy does.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("lock") = faults;
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn split_base(base: &str) -> (String, String) {
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[after_scheme..].find('/') {
        Some(i) => (base[..after_scheme + i].to_owned(), base[after_scheme + i..].to_owned()),
        None => (base.to_owned(), String::new()),
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let faults = state.faults.lock().expect("lock").clone();
    let arrived = Instant::now();
    let record = |status: u16| {
        state.seen.lock().expect("lock").push(Seen {
            at: arrived,
            answered: Instant::now(),
            method: method.to_string(),
            path: path.clone(),
            status,
            authorization: authorization.clone(),
        });
    };
    // Draw this request's random fault.
    let fault = faults.random.as_ref().map(|r| {
        let roll = state.rng.lock().map(|mut g| g.next_f64()).unwrap_or(1.0);
        if roll < r.error {
            "error"
        } else if roll < r.error + r.throttle {
            "throttle"
        } else if roll < r.error + r.throttle + r.close {
            "close"
        } else if roll < r.error + r.throttle + r.close + r.stall {
            "stall"
        } else {
            "none"
        }
    });
    match fault {
        Some("error") => {
            record(500);
            return plain(500, "injected failure");
        }
        Some("throttle") => {
            record(429);
            let mut response = plain(429, "slow down");
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return response;
        }
        _ => {}
    }
    if faults.down {
        record(503);
        return plain(503, "down for the test");
    }
    if method == axum::http::Method::PATCH
        && let Some(status) = faults.refuse_patch
    {
        record(status);
        return plain(status, "PATCH is not supported here");
    }
    {
        let mut current = state.faults.lock().expect("lock");
        if current.fail_next > 0 {
            current.fail_next -= 1;
            let detail = current.fail_detail.clone();
            drop(current);
            record(500);
            let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500", "detail": detail});
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/scim+json"));
            return response;
        }
    }
    if method == axum::http::Method::GET && path.contains("/Users?filter=") {
        let mut current = state.faults.lock().expect("lock");
        if current.hide_lookups > 0 {
            current.hide_lookups -= 1;
            drop(current);
            record(200);
            let mut response = Response::new(Body::from(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[],"startIndex":1,"itemsPerPage":0}"#,
            ));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/scim+json"));
            return response;
        }
    }
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if let Some(needle) = &faults.reject_body_containing
        && String::from_utf8_lossy(&body).contains(needle.as_str())
    {
        record(400);
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
            "scimType": "invalidValue", "detail": format!("the value '{needle}' is not allowed here")});
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    }
    let paged = method == axum::http::Method::GET && path.contains("startIndex=");
    let forwarded_path = if paged && faults.ignore_count {
        rewrite_count(&path, 1_000_000)
    } else {
        path.clone()
    };
    let mut upstream = state.http.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method"),
        format!("{}{forwarded_path}", state.upstream),
    );
    for name in ["authorization", "content-type", "accept", "if-match", "if-none-match"] {
        if let Some(value) = headers.get(name) {
            upstream = upstream.header(name, value.as_bytes());
        }
    }
    match upstream.body(body.to_vec()).send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let content_type = answer.headers().get("content-type").cloned();
            let mut bytes = answer.bytes().await.unwrap_or_default();
            if paged && status == 200 {
                bytes = page_faults(&state, &faults, &path, authorization.as_deref(), bytes).await;
            }
            if fault == Some("close") {
                // The target acted; the answer is lost: the body breaks off.
                record(0);
                let broken = futures_broken_body();
                let mut response = Response::new(broken);
                *response.status_mut() = StatusCode::from_u16(status).expect("status");
                return response;
            }
            if fault == Some("stall")
                && let Some(random) = &faults.random
            {
                tokio::time::sleep(random.stall_for).await;
            }
            record(status);
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = StatusCode::from_u16(status).expect("status");
            if let Some(ct) = content_type {
                response
                    .headers_mut()
                    .insert("content-type", HeaderValue::from_bytes(ct.as_bytes()).expect("header"));
            }
            response
        }
        Err(_) => {
            record(502);
            plain(502, "upstream unreachable")
        }
    }
}

fn plain(status: u16, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    response
}

/// `path` with its `count` query parameter set to `count`.
fn rewrite_count(path: &str, count: usize) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("count="))
        .map(str::to_owned)
        .collect();
    parts.push(format!("count={count}"));
    format!("{base}?{}", parts.join("&"))
}

/// Applies the paging faults to one page of a listing: the page cap, and the deletion that
/// shrinks the listing after its first page.
async fn page_faults(
    state: &ProxyState,
    faults: &Faults,
    path: &str,
    authorization: Option<&str>,
    bytes: axum::body::Bytes,
) -> axum::body::Bytes {
    let Ok(mut page) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return bytes;
    };
    let first_page = path.contains("startIndex=1&") || path.ends_with("startIndex=1");
    if first_page && faults.shrink_after_first_page > 0 {
        let shrink = {
            let mut current = state.faults.lock().expect("lock");
            std::mem::take(&mut current.shrink_after_first_page)
        };
        let endpoint = path.split('?').next().unwrap_or(path).to_owned();
        let ids: Vec<String> = page["Resources"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .take(shrink)
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for id in ids {
            let mut request = state.http.delete(format!("{}{endpoint}/{id}", state.upstream));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let deleted = request.send().await.expect("delete upstream");
            assert!(
                deleted.status().is_success(),
                "deleting {id} upstream: {}",
                deleted.status()
            );
        }
    }
    if let Some(cap) = faults.page_cap
        && let Some(items) = page["Resources"].as_array_mut()
    {
        items.truncate(cap);
        let kept = items.len();
        page["itemsPerPage"] = serde_json::json!(kept);
    }
    axum::body::Bytes::from(page.to_string())
}
