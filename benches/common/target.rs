//! The SCIM targets the benchmarks provision into: an in-memory target served by the benchmark
//! itself over HTTP on loopback (optionally answering after a delay; paged listings in creation
//! order), and scim2-server from the referee venv.

use super::{die_with_bench, free_port};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Memory {
    /// Its users by id.
    pub users: HashMap<String, Value>,
    /// Ids in the order created: the order listings page through.
    order: Vec<String>,
    by_name: HashMap<String, String>,
    next: u64,
    /// When each user's create arrived, by lower-cased userName.
    created_at: HashMap<String, Instant>,
}

/// A target's state: its users, its answer delay and the requests it received.
pub struct Inner {
    memory: Mutex<Memory>,
    delay: Duration,
    requests: AtomicU64,
    /// The time the delayed answers really waited, in microseconds, over all requests.
    waited_micros: AtomicU64,
}

pub type Shared = Arc<Inner>;

impl Inner {
    /// The target's memory.
    pub fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request and waits the target's delay before it is answered. The delay is slept
    /// on a blocking thread, accurate to a fraction of a millisecond: the runtime's timer works
    /// in whole milliseconds and rounds each delay up, which made a 50 ms target answer after
    /// 51.1 ms on average.
    async fn arrive(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            let arrived = Instant::now();
            let delay = self.delay;
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
            let waited = u64::try_from(arrived.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.waited_micros.fetch_add(waited, Ordering::Relaxed);
        }
    }
}

fn scim_error(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.as_u16().to_string(), "detail": detail}))).into_response()
}

async fn spc(State(state): State<Shared>) -> Json<Value> {
    state.arrive().await;
    Json(
        json!({"patch": {"supported": true}, "filter": {"supported": true, "maxResults": 1000}, "bulk": {"supported": false}, "etag": {"supported": false}}),
    )
}

async fn list_users(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Json<Value> {
    state.arrive().await;
    let memory = state.memory();
    let found: Vec<Value> = match query
        .get("filter")
        .and_then(|f| f.strip_prefix("userName eq \""))
        .and_then(|f| f.strip_suffix('"'))
    {
        Some(name) => memory
            .by_name
            .get(&name.to_lowercase())
            .and_then(|id| memory.users.get(id))
            .cloned()
            .into_iter()
            .collect(),
        None => {
            // Pages in creation order: `startIndex` is 1-based, `count` defaults to 100.
            let start = query
                .get("startIndex")
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let count = query.get("count").and_then(|c| c.parse().ok()).unwrap_or(100);
            let total = memory.order.len();
            let page: Vec<Value> = memory
                .order
                .iter()
                .skip(start - 1)
                .take(count)
                .filter_map(|id| memory.users.get(id).cloned())
                .collect();
            return Json(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": total, "startIndex": start, "itemsPerPage": page.len(), "Resources": page}),
            );
        }
    };
    Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": found.len(), "Resources": found}),
    )
}

async fn create_user(State(state): State<Shared>, Json(mut body): Json<Value>) -> Response {
    state.arrive().await;
    let mut memory = state.memory();
    let Some(name) = body.get("userName").and_then(Value::as_str).map(str::to_lowercase) else {
        return scim_error(StatusCode::BAD_REQUEST, "userName is required");
    };
    if memory.by_name.contains_key(&name) {
        return scim_error(StatusCode::CONFLICT, "userName is taken");
    }
    memory.next += 1;
    let id = format!("u{}", memory.next);
    body["id"] = json!(id);
    memory.by_name.insert(name.clone(), id.clone());
    memory.created_at.insert(name, Instant::now());
    memory.order.push(id.clone());
    memory.users.insert(id, body.clone());
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn get_user(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    state.arrive().await;
    match state.memory().users.get(&id) {
        Some(user) => (StatusCode::OK, Json(user.clone())).into_response(),
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

async fn patch_user(State(state): State<Shared>, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    state.arrive().await;
    let mut memory = state.memory();
    let Some(user) = memory.users.get_mut(&id) else {
        return scim_error(StatusCode::NOT_FOUND, "no such user");
    };
    for op in body["Operations"].as_array().cloned().unwrap_or_default() {
        if let (Some(path), Some(value)) = (op["path"].as_str(), op.get("value")) {
            user[path] = value.clone();
        }
    }
    (StatusCode::OK, Json(user.clone())).into_response()
}

async fn put_user(State(state): State<Shared>, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    state.arrive().await;
    let mut memory = state.memory();
    match memory.users.get_mut(&id) {
        Some(user) => {
            *user = body;
            (StatusCode::OK, Json(user.clone())).into_response()
        }
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

async fn delete_user(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    state.arrive().await;
    let mut memory = state.memory();
    match memory.users.remove(&id) {
        Some(_) => {
            memory.order.retain(|kept| *kept != id);
            StatusCode::NO_CONTENT.into_response()
        }
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

/// A running target: its base URL and bearer token, what it received, and how to stop it.
pub struct Target {
    /// Its SCIM base URL.
    pub base_url: String,
    /// Its bearer token.
    pub token: String,
    /// Only for the in-memory target.
    pub state: Option<Shared>,
    /// Stops it.
    pub stop: Box<dyn FnOnce() + Send>,
}

impl Target {
    /// When the first and the last user create arrived, if any has.
    pub fn create_span(&self) -> Option<(Instant, Instant)> {
        let memory = self.state.as_ref()?.memory();
        let first = memory.created_at.values().min()?;
        let last = memory.created_at.values().max()?;
        Some((*first, *last))
    }

    /// The mean time a delayed answer really waited, in milliseconds (the timer rounds the
    /// delay up), over all requests so far.
    pub fn mean_wait_ms(&self) -> f64 {
        self.state.as_ref().map_or(0.0, |s| {
            let requests = s.requests.load(Ordering::Relaxed).max(1);
            s.waited_micros.load(Ordering::Relaxed) as f64 / requests as f64 / 1000.0
        })
    }

    /// Requests received so far (in-memory target only; 0 otherwise).
    pub fn requests(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.requests.load(Ordering::Relaxed))
    }

    /// When the user's create arrived (in-memory target only).
    pub fn created_at(&self, username: &str) -> Option<Instant> {
        self.state
            .as_ref()
            .and_then(|s| s.memory().created_at.get(&username.to_lowercase()).copied())
    }

    /// Fills the in-memory target with `resources` (each needs a `userName`), as accounts made
    /// before the benchmark; returns how many it holds.
    pub fn fill(&self, resources: impl IntoIterator<Item = Value>) -> usize {
        let Some(state) = &self.state else { return 0 };
        let mut memory = state.memory();
        for mut resource in resources {
            let Some(name) = resource.get("userName").and_then(Value::as_str).map(str::to_lowercase) else {
                continue;
            };
            memory.next += 1;
            let id = format!("u{}", memory.next);
            resource["id"] = json!(id);
            memory.by_name.insert(name, id.clone());
            memory.order.push(id.clone());
            memory.users.insert(id, resource);
        }
        memory.users.len()
    }

    /// Users it holds (in-memory target only).
    pub fn users(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.memory().users.len())
    }
}

pub async fn start_memory_target(delay: Duration) -> Target {
    let state: Shared = Arc::new(Inner {
        memory: Mutex::default(),
        delay,
        requests: AtomicU64::new(0),
        waited_micros: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .route("/v2/ServiceProviderConfig", get(spc))
        .route("/v2/Users", get(list_users).post(create_user))
        .route(
            "/v2/Users/{id}",
            get(get_user).patch(patch_user).put(put_user).delete(delete_user),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a target port");
    let address = listener.local_addr().expect("target address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Target {
        base_url: format!("http://{address}/v2"),
        token: "bench-token".into(),
        state: Some(state),
        stop: Box::new(move || task.abort()),
    }
}

pub fn start_scim2_target() -> Target {
    let venv = std::env::var("PROVISIO_REFEREE_VENV")
        .unwrap_or_else(|_| format!("{}/.venv-referees", env!("CARGO_MANIFEST_DIR")));
    let port = free_port();
    let token = "bench-token".to_owned();
    let mut command = Command::new(format!("{venv}/bin/scim2-server"));
    command
        .args([
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--bearer-token",
            &token,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child: Child = die_with_bench(&mut command)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start scim2-server from {venv} ({e}): run scripts/setup-referees"));
    let child = Arc::new(Mutex::new(child));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "scim2-server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    Target {
        base_url: format!("http://127.0.0.1:{port}/v2"),
        token,
        state: None,
        stop: Box::new(move || {
            if let Ok(mut child) = child.lock() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }),
    }
}
