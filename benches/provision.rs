//! Provisioning benchmark: how fast the hub provisions users into a SCIM target, next to what the
//! same target takes when the same requests are sent to it directly.
//!
//! Run with `cargo bench --bench provision -- [--users N] [--target memory|scim2] [--workers W]
//! [--trickle M] [--database-url postgres://...]`. See the README.
//!
//! Phases:
//! 1. raw: the benchmark itself sends each user's look-up (`GET /Users?filter=userName eq`) and
//!    create (`POST /Users`) to a fresh target with as many concurrent clients as the hub has
//!    workers: the target's capacity for this workload.
//! 2. bulk: N users are put in a group, then a policy links the group to the app: users per
//!    second from the policy change to the last account created.
//! 3. trickle: M more users join the group one at a time (50 per second, well under capacity):
//!    p50/p99 time from each directory change's commit to the target's answer.

mod common;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use provisio::config::{Config, DatabaseConfig, LogFormat};
use provisio::domain::admin::Actor;
use provisio::domain::group::NewGroup;
use provisio::domain::user::{NewUser, UserSource};
use provisio::outbound::scim::{encode_query, filter_literal};
use provisio::outbound::{EngineConfig, WorkerConfig};
use provisio::service::{AuthService, DirectoryService};
use provisio::store::SqlStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Options {
    users: usize,
    target: String,
    workers: usize,
    trickle: usize,
    database_url: Option<String>,
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("provision")? else {
        return Ok(None);
    };
    let mut options = Options {
        users: 10_000,
        target: "memory".into(),
        workers: 4,
        trickle: 200,
        database_url: None,
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--users" => options.users = common::positive(&flag, &value)?,
            "--target" => options.target = value,
            "--workers" => options.workers = common::positive(&flag, &value)?,
            "--trickle" => options.trickle = common::number(&flag, &value)?,
            "--database-url" => options.database_url = Some(value),
            other => common::unknown(other)?,
        }
    }
    if !matches!(options.target.as_str(), "memory" | "scim2") {
        return Err("--target must be memory or scim2".into());
    }
    Ok(Some(options))
}

// ------------------------------------------------------------------ a minimal in-memory SCIM target

#[derive(Default)]
struct Memory {
    users: HashMap<String, Value>,
    by_name: HashMap<String, String>,
    next: u64,
}

type Shared = Arc<Mutex<Memory>>;

fn scim_error(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.as_u16().to_string(), "detail": detail}))).into_response()
}

async fn spc() -> Json<Value> {
    Json(
        json!({"patch": {"supported": true}, "filter": {"supported": true, "maxResults": 1000}, "bulk": {"supported": false}, "etag": {"supported": false}}),
    )
}

async fn list_users(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Json<Value> {
    let memory = state.lock().unwrap_or_else(|e| e.into_inner());
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
        None => memory
            .users
            .values()
            .take(query.get("count").and_then(|c| c.parse().ok()).unwrap_or(100))
            .cloned()
            .collect(),
    };
    Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": found.len(), "Resources": found}),
    )
}

async fn create_user(State(state): State<Shared>, Json(mut body): Json<Value>) -> Response {
    let mut memory = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(name) = body.get("userName").and_then(Value::as_str).map(str::to_lowercase) else {
        return scim_error(StatusCode::BAD_REQUEST, "userName is required");
    };
    if memory.by_name.contains_key(&name) {
        return scim_error(StatusCode::CONFLICT, "userName is taken");
    }
    memory.next += 1;
    let id = format!("u{}", memory.next);
    body["id"] = json!(id);
    memory.by_name.insert(name, id.clone());
    memory.users.insert(id, body.clone());
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn patch_user(State(state): State<Shared>, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    let mut memory = state.lock().unwrap_or_else(|e| e.into_inner());
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
    let mut memory = state.lock().unwrap_or_else(|e| e.into_inner());
    match memory.users.get_mut(&id) {
        Some(user) => {
            *user = body;
            (StatusCode::OK, Json(user.clone())).into_response()
        }
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

async fn delete_user(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut memory = state.lock().unwrap_or_else(|e| e.into_inner());
    match memory.users.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

/// A running target: its base URL and bearer token, and how to stop it.
struct Target {
    base_url: String,
    token: String,
    stop: Box<dyn FnOnce() + Send>,
}

async fn start_memory_target() -> Target {
    let state: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/v2/ServiceProviderConfig", get(spc))
        .route("/v2/Users", get(list_users).post(create_user))
        .route(
            "/v2/Users/{id}",
            axum::routing::patch(patch_user).put(put_user).delete(delete_user),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Target {
        base_url: format!("http://{address}/v2"),
        token: "bench-token".into(),
        stop: Box::new(move || task.abort()),
    }
}

fn start_scim2_target() -> Target {
    let venv = std::env::var("PROVISIO_REFEREE_VENV")
        .unwrap_or_else(|_| format!("{}/.venv-referees", env!("CARGO_MANIFEST_DIR")));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let token = "bench-token".to_owned();
    let child: Child = Command::new(format!("{venv}/bin/scim2-server"))
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
        .unwrap_or_else(|e| panic!("cannot start scim2-server from {venv} ({e}): run scripts/setup-referees"));
    let child = Arc::new(Mutex::new(child));
    let base_url = format!("http://127.0.0.1:{port}/v2");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "scim2-server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    Target {
        base_url,
        token,
        stop: Box::new(move || {
            if let Ok(mut child) = child.lock() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }),
    }
}

async fn start_target(kind: &str) -> Target {
    match kind {
        "scim2" => start_scim2_target(),
        _ => start_memory_target().await,
    }
}

// ------------------------------------------------------------------ measurements

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn resource(username: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": username,
        "externalId": username,
        "name": {"givenName": "Bench", "familyName": username},
        "displayName": format!("Bench {username}"),
        "emails": [{"type": "work", "value": format!("{username}@bench.example"), "primary": true}],
        "active": true
    })
}

/// Sends each user's look-up and create straight to the target, `concurrency` at a time.
async fn raw_capacity(target: &Target, users: usize, concurrency: usize) -> (f64, usize) {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, next, base, token) = (
            http.clone(),
            next.clone(),
            target.base_url.clone(),
            target.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= users {
                    break errors;
                }
                let name = format!("raw{i:06}");
                let lookup = http
                    .get(format!(
                        "{base}/Users?filter={}",
                        encode_query(&format!("userName eq {}", filter_literal(&name)))
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let create = http
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(resource(&name).to_string())
                    .send()
                    .await;
                if lookup.is_err() || create.map(|r| r.status().as_u16() != 201).unwrap_or(true) {
                    errors += 1;
                }
            }
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(0);
    }
    (users as f64 / started.elapsed().as_secs_f64(), errors)
}

async fn count(store: &SqlStore, sql: &str) -> i64 {
    store.query_scalar(sql).await.expect("count")
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(options) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "provision benchmark: {} users, target {}, {} workers, {} trickle changes, store {}",
        options.users,
        options.target,
        options.workers,
        options.trickle,
        if options.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    // Phase 1: the target's own capacity for the same requests.
    let target = start_target(&options.target).await;
    let (raw_rate, raw_errors) = raw_capacity(&target, options.users, options.workers).await;
    (target.stop)();
    println!(
        "raw target capacity: {raw_rate:.0} users/s ({} requests/s, {raw_errors} errors)",
        (raw_rate * 2.0).round()
    );

    // The hub, on a fresh store, with a fresh target.
    let target = start_target(&options.target).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = match &options.database_url {
        Some(url) => DatabaseConfig::Url(SecretString::from(url.clone())),
        None => DatabaseConfig::Sqlite {
            data_dir: dir.path().to_owned(),
        },
    };
    let store = provisio::server::open_store(&database).await.expect("open store");
    let token = AuthService::new(store.clone())
        .create_token("bench", &provisio::domain::admin::Principal::system())
        .await
        .expect("token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hub_url = format!("http://{}", listener.local_addr().expect("address"));
    let config = Config {
        listen: listener.local_addr().expect("address"),
        database,
        log_format: LogFormat::Human,
        log_level: "warn".into(),
        max_body_bytes: 1024 * 1024,
        shutdown_timeout: Duration::from_secs(10),
        secret_key_file: dir.path().join("secret.key"),
        request_timeout: Duration::from_secs(30),
        engine: EngineConfig::default(),
        report_retention: time::Duration::days(180),
        secure_cookies: false,
        sessions: Default::default(),
        login_throttle: Default::default(),
        workers: WorkerConfig {
            workers: options.workers,
            poll: Duration::from_millis(100),
            ..Default::default()
        },
    };
    let shutdown = CancellationToken::new();
    let hub = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move { provisio::server::run(store, listener, &config, shutdown).await })
    };
    let http = reqwest::Client::new();
    let admin = token.secret.expose_secret().to_owned();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{hub_url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let app: Value = api(
        reqwest::Method::POST,
        "/api/v1/apps",
        json!({"name": "bench", "base_url": target.base_url, "token": target.token}),
    )
    .await
    .expect("create app")
    .json()
    .await
    .expect("app");
    let app_id = app["id"].as_str().expect("app id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let app: Value = api(reqwest::Method::GET, &format!("/api/v1/apps/{app_id}"), Value::Null)
            .await
            .expect("app")
            .json()
            .await
            .expect("app");
        if app["connection_status"] == "ok" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the app's connection check did not pass: {app}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Phase 2: N members, then the policy.
    let directory = DirectoryService::new(store.clone());
    let group = directory
        .create_group(
            NewGroup {
                name: "bench".into(),
                external_id: None,
            },
            UserSource::Local,
            &Actor::System,
        )
        .await
        .expect("group");
    let seeding = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (directory, next, group) = (directory.clone(), next.clone(), group.id.to_string());
        let users = options.users;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let name = format!("user{i:06}");
                let input = NewUser {
                    username: name.clone(),
                    given_name: Some("Bench".into()),
                    family_name: Some(name.clone()),
                    display_name: Some(format!("Bench {name}")),
                    email: Some(format!("{name}@bench.example")),
                    ..Default::default()
                };
                let user = directory
                    .create_user(input, UserSource::Local, &Actor::System)
                    .await
                    .expect("user");
                directory
                    .add_member(&group, &user.id.to_string(), &Actor::System)
                    .await
                    .expect("member");
            }
        }));
    }
    for task in tasks {
        task.await.expect("seeding task");
    }
    println!(
        "seeded {} users and memberships in {:.1} s",
        options.users,
        seeding.elapsed().as_secs_f64()
    );
    let bulk_start = Instant::now();
    api(
        reqwest::Method::POST,
        "/api/v1/policies",
        json!({"app": "bench", "group": "bench"}),
    )
    .await
    .expect("policy");
    let expected = i64::try_from(options.users).unwrap_or(i64::MAX);
    loop {
        let done = count(
            &store,
            &format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}'"),
        )
        .await;
        let failed = count(
            &store,
            &format!("SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app_id}' AND status = 'failed'"),
        )
        .await;
        if done + failed >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bulk_seconds = bulk_start.elapsed().as_secs_f64();
    let bulk_rate = options.users as f64 / bulk_seconds;
    println!(
        "hub bulk provisioning: {bulk_rate:.0} users/s ({} users in {bulk_seconds:.1} s)",
        options.users
    );

    // Phase 3: single changes at 50 per second, through the admin API as an administrator would make them.
    for i in 0..options.trickle {
        let tick = Instant::now();
        let name = format!("trickle{i:05}");
        let created = api(
            reqwest::Method::POST,
            "/api/v1/users",
            json!({"username": name, "email": format!("{name}@bench.example")}),
        )
        .await
        .expect("user");
        assert_eq!(created.status().as_u16(), 201);
        let added = api(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/bench/members/{name}"),
            Value::Null,
        )
        .await
        .expect("member");
        assert_eq!(added.status().as_u16(), 200);
        if let Some(rest) = Duration::from_millis(20).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let expected = expected + i64::try_from(options.trickle).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(
        &store,
        &format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}'"),
    )
    .await
        < expected
    {
        assert!(
            Instant::now() < deadline,
            "the trickle changes were not all provisioned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Latency: the membership change's commit to the end of the create request, per user.
    let latencies = store
        .query_integers(&format!(
            "SELECT r.started_at + r.duration_ms * 1000 - c.occurred_at FROM provisioning_reports r \
             JOIN change_log c ON c.related_id = r.subject_id AND c.entity = 'membership' AND c.operation = 'added' \
             WHERE r.app_id = '{app_id}' AND r.operation = 'create' AND r.outcome = 'success' AND r.username LIKE 'trickle%'"
        ))
        .await
        .expect("latencies");
    let mut sorted: Vec<f64> = latencies.iter().map(|micros| *micros as f64 / 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    println!(
        "hub change-to-answer latency over {} single changes: p50 {:.1} ms, p99 {:.1} ms",
        sorted.len(),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0)
    );
    println!(
        "hub throughput as a share of the target's raw capacity: {:.0}%",
        bulk_rate / raw_rate * 100.0
    );

    shutdown.cancel();
    let _ = hub.await;
    (target.stop)();
}
