//! Provisioning benchmark: the acceptance scenarios of outbound throughput and latency, each
//! printed beside its reference measured in the same run, against the real `provisio serve`
//! binary (started as a child process with default settings) and SCIM targets served by this
//! benchmark over HTTP on loopback.
//!
//! Run with `cargo bench --bench provision` (all scenarios; see the README for the options).
//!
//! Scenarios:
//! - a. fast: `--users` (10,000) members of a group, then a policy links the group to an app on
//!   the in-memory target (app concurrency `--concurrency`, 8): users per second from the policy
//!   change to the last account stored, beside the target's raw capacity for the same requests
//!   (each user's look-up `GET /Users?filter=userName eq` and create `POST /Users`, sent by this
//!   benchmark with a Rust client over `--concurrency` connections to a fresh target). On SQLite,
//!   then on PostgreSQL when `--postgres URL` or `PROVISIO_TEST_POSTGRES_URL` names a server (a
//!   fresh database is created there and dropped afterwards).
//! - b. slow: the same into a target that answers every request after `--delay-ms` (50 ms), app
//!   concurrency 8, `--slow-users` (1,000) users: users per second beside the bound
//!   `concurrency / (requests per user x delay)`, with the requests per user counted by the
//!   target itself during the run.
//! - c. ten slow apps: `--slow-apps` (10) such apps, each with its own slow target, get
//!   policies at once for one group of `--slow-apps-users` (200) users: the sum of their users
//!   per second (all accounts over the time to the last one) beside the sum of their bounds.
//! - d. change to target: `--changes` (200) single changes made through the admin API (create a
//!   user, add them to a group linked to the fast app), 20 per second; the time from sending the
//!   membership change to the target receiving the user's create, p50/p99, first at idle, then
//!   while a second app (a second in-memory target) provisions the `--users` group initially.
//!
//! Scenarios a (SQLite), d, b and c run on one hub over one SQLite store, in that order.
//! `--scenarios a,b,c,d` picks some; `--serve-flags "--max-in-flight 16"` passes flags to
//! `provisio serve` (default: none); `--target scim2` runs scenario a against scim2-server instead of the
//! in-memory target.

mod common;
use common::percentiles;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use provisio::config::DatabaseConfig;
use provisio::domain::admin::Actor;
use provisio::domain::group::NewGroup;
use provisio::domain::user::{NewUser, UserSource};
use provisio::outbound::scim::{encode_query, eq_filter};
use provisio::service::DirectoryService;
use provisio::store::SqlStore;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    users: usize,
    concurrency: usize,
    delay_ms: u64,
    slow_users: usize,
    slow_apps: usize,
    slow_apps_users: usize,
    changes: usize,
    postgres: Option<String>,
    serve_flags: Vec<String>,
    target: String,
    scenarios: String,
}

impl Options {
    fn runs(&self, scenario: char) -> bool {
        self.scenarios.contains(scenario)
    }
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("provision")? else {
        return Ok(None);
    };
    let mut o = Options {
        users: 10_000,
        concurrency: 8,
        delay_ms: 50,
        slow_users: 1_000,
        slow_apps: 10,
        slow_apps_users: 200,
        changes: 200,
        postgres: std::env::var("PROVISIO_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        serve_flags: Vec::new(),
        target: "memory".into(),
        scenarios: "abcd".into(),
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--users" => o.users = common::positive(&flag, &value)?,
            "--concurrency" => o.concurrency = common::positive(&flag, &value)?,
            "--delay-ms" => o.delay_ms = common::positive(&flag, &value)? as u64,
            "--slow-users" => o.slow_users = common::positive(&flag, &value)?,
            "--slow-apps" => o.slow_apps = common::positive(&flag, &value)?,
            "--slow-apps-users" => o.slow_apps_users = common::positive(&flag, &value)?,
            "--changes" => o.changes = common::positive(&flag, &value)?,
            "--postgres" => o.postgres = Some(value).filter(|v| v != "none"),
            "--serve-flags" => o.serve_flags = value.split_whitespace().map(str::to_owned).collect(),
            "--target" => o.target = value,
            "--scenarios" => o.scenarios = value.replace(',', ""),
            other => common::unknown(other)?,
        }
    }
    if !matches!(o.target.as_str(), "memory" | "scim2") {
        return Err("--target must be memory or scim2".into());
    }
    if o.scenarios.is_empty() || !o.scenarios.chars().all(|c| "abcd".contains(c)) {
        return Err("--scenarios takes letters among a, b, c, d".into());
    }
    Ok(Some(o))
}

// ------------------------------------------------------------------ the in-memory SCIM target

#[derive(Default)]
struct Memory {
    users: HashMap<String, Value>,
    by_name: HashMap<String, String>,
    next: u64,
    /// When each user's create arrived, by lower-cased userName.
    created_at: HashMap<String, Instant>,
}

/// A target's state: its users, its answer delay and the requests it received.
struct Inner {
    memory: Mutex<Memory>,
    delay: Duration,
    requests: AtomicU64,
}

type Shared = Arc<Inner>;

impl Inner {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request and waits the target's delay before it is answered.
    async fn arrive(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
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
    match state.memory().users.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => scim_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

/// A running target: its base URL and bearer token, what it received, and how to stop it.
struct Target {
    base_url: String,
    token: String,
    /// Only for the in-memory target.
    state: Option<Shared>,
    stop: Box<dyn FnOnce() + Send>,
}

impl Target {
    /// Requests received so far (in-memory target only; 0 otherwise).
    fn requests(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.requests.load(Ordering::Relaxed))
    }

    /// When the user's create arrived (in-memory target only).
    fn created_at(&self, username: &str) -> Option<Instant> {
        self.state
            .as_ref()
            .and_then(|s| s.memory().created_at.get(&username.to_lowercase()).copied())
    }

    /// Users it holds (in-memory target only).
    fn users(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.memory().users.len())
    }
}

async fn start_memory_target(delay: Duration) -> Target {
    let state: Shared = Arc::new(Inner {
        memory: Mutex::default(),
        delay,
        requests: AtomicU64::new(0),
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

fn start_scim2_target() -> Target {
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

// ------------------------------------------------------------------ the hub: `provisio serve`

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Makes a child process die with the benchmark, so that no hub or referee outlives it.
fn die_with_bench(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A store for one hub: a SQLite data directory or a fresh PostgreSQL database.
struct Database {
    config: DatabaseConfig,
    flags: Vec<String>,
    _dir: Option<tempfile::TempDir>,
    /// The server's admin URL and the database's name, to drop it afterwards.
    postgres: Option<(String, String)>,
}

impl Database {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Database {
            config: DatabaseConfig::Sqlite {
                data_dir: dir.path().to_owned(),
            },
            flags: vec!["--data-dir".into(), dir.path().display().to_string()],
            _dir: Some(dir),
            postgres: None,
        }
    }

    async fn postgres(admin_url: &str) -> Self {
        let name = format!("provisio_bench_{}", uuid::Uuid::now_v7().simple());
        let admin = SqlStore::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin_url}: {e}"));
        admin
            .execute_raw(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the benchmark database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .expect("a PostgreSQL URL with a database path");
        let url = format!("{base}/{name}");
        Database {
            config: DatabaseConfig::Url(SecretString::from(url.clone())),
            flags: vec!["--database-url".into(), url],
            _dir: None,
            postgres: Some((admin_url.to_owned(), name)),
        }
    }

    fn kind(&self) -> &'static str {
        if self.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(admin) = SqlStore::connect(admin_url).await
        {
            let _ = admin
                .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            admin.close().await;
        }
    }
}

/// A running `provisio serve` and an admin API client for it.
struct Hub {
    child: Child,
    url: String,
    token: String,
    http: reqwest::Client,
    _key_dir: tempfile::TempDir,
}

impl Hub {
    async fn start(database: &Database, serve_flags: &[String]) -> Self {
        let binary = env!("CARGO_BIN_EXE_provisio");
        let output = Command::new(binary)
            .arg("admin-token")
            .args(&database.flags)
            .output()
            .expect("run provisio admin-token");
        assert!(
            output.status.success(),
            "provisio admin-token: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let key_dir = tempfile::tempdir().expect("key directory");
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(&database.flags)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--secret-key-file",
                &key_dir.path().join("secret.key").display().to_string(),
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        command.args(serve_flags);
        let child = die_with_bench(&mut command).spawn().expect("start provisio serve");
        let hub = Hub {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            http: reqwest::Client::new(),
            _key_dir: key_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while hub.http.get(format!("{}/readyz", hub.url)).send().await.is_err() {
            assert!(Instant::now() < deadline, "provisio serve did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        hub
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin API request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("admin API answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn expect(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// Creates an app on `target` with `concurrency` requests in flight and waits until its
    /// connection check passed; returns its id.
    async fn connect_app(&self, name: &str, target: &Target, concurrency: usize) -> String {
        let app = self
            .expect(
                reqwest::Method::POST,
                "/api/v1/apps",
                Some(json!({"name": name, "base_url": target.base_url, "token": target.token,
                            "flow": {"concurrency": concurrency}})),
            )
            .await;
        let id = app["id"].as_str().expect("app id").to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let app = self
                .expect(reqwest::Method::GET, &format!("/api/v1/apps/{id}"), None)
                .await;
            if app["connection_status"] == "ok" {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "the app's connection check did not pass: {app}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn link(&self, app: &str, group: &str) {
        self.expect(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": app, "group": group})),
        )
        .await;
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------ measurements

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

/// Sends each user's look-up and create straight to the target over `concurrency` connections.
async fn raw_capacity(target: &Target, users: usize, concurrency: usize) -> (f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        // One client per task: each keeps its own keep-alive connection.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (next, base, token) = (next.clone(), target.base_url.clone(), target.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break errors;
                }
                let name = format!("raw{i:06}");
                let lookup = http
                    .get(format!(
                        "{base}/Users?filter={}",
                        encode_query(&eq_filter("userName", &name))
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let lookup_ok = match lookup {
                    Ok(answer) => answer.status().is_success() && answer.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let create = http
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(resource(&name).to_string())
                    .send()
                    .await;
                let create_ok = match create {
                    Ok(answer) => answer.status().as_u16() == 201 && answer.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !lookup_ok || !create_ok {
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

/// Creates `count` users named `{prefix}NNNNNN` in the store and puts them in a new group `group`
/// (before the hub starts: seeding is not what is measured).
async fn seed(store: &SqlStore, name: &str, prefix: &str, count: usize) {
    let started = Instant::now();
    let directory = DirectoryService::new(store.clone());
    let group = directory
        .create_group(
            NewGroup {
                name: name.into(),
                external_id: None,
            },
            UserSource::Local,
            &Actor::System,
        )
        .await
        .expect("group")
        .id
        .to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (directory, next, group, prefix) = (directory.clone(), next.clone(), group.clone(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let name = format!("{prefix}{i:06}");
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
                    .expect("seed user");
                directory
                    .add_member(&group, &user.id.to_string(), &Actor::System)
                    .await
                    .expect("seed membership");
                if (i + 1) % 5_000 == 0 {
                    println!("  seeded {} users", i + 1);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("seeding task");
    }
    if count > 0 {
        println!(
            "  seeded {count} users in group {name} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Accounts the hub stored for each app, and its failed jobs.
async fn progress(store: &SqlStore, app: &str) -> (usize, usize) {
    let accounts = store
        .query_scalar(&format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app}'"))
        .await
        .expect("count accounts");
    let failed = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app}' AND status = 'failed'"
        ))
        .await
        .expect("count failed jobs");
    (
        usize::try_from(accounts).unwrap_or(0),
        usize::try_from(failed).unwrap_or(0),
    )
}

/// Waits until each app (its id, and its in-memory target when it has one) has `expected` accounts
/// stored (or failed jobs), printing progress every 5 s; returns the seconds from `started` to each
/// app's last account. Gives up after `limit`. The store is asked often only once the target
/// holds every user (or when there is no in-memory target to ask), otherwise once a second, so
/// that watching costs the hub next to nothing.
async fn wait_for_accounts(
    store: &SqlStore,
    apps: &[(String, Option<Shared>)],
    expected: usize,
    started: Instant,
    limit: Duration,
) -> Vec<f64> {
    let mut finished: Vec<Option<f64>> = vec![None; apps.len()];
    let mut last_look = Instant::now();
    let mut last_print = Instant::now();
    let mut failures = 0;
    while finished.iter().any(Option::is_none) {
        let look = last_look.elapsed() >= Duration::from_secs(1);
        let print = last_print.elapsed() >= Duration::from_secs(5);
        let mut done_total = 0;
        if look {
            failures = 0;
            last_look = Instant::now();
        }
        for (i, (app, target)) in apps.iter().enumerate() {
            if finished[i].is_some() {
                done_total += expected;
                continue;
            }
            let target_done = target.as_ref().is_none_or(|t| t.memory().users.len() >= expected);
            if !(look || print || target_done) {
                continue;
            }
            let (accounts, failed) = progress(store, app).await;
            done_total += accounts;
            failures += failed;
            if accounts + failed >= expected {
                finished[i] = Some(started.elapsed().as_secs_f64());
            }
        }
        if print {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  ... {done_total}/{} accounts after {seconds:.0} s ({:.0} users/s so far, {failures} failed jobs)",
                expected * apps.len(),
                done_total as f64 / seconds
            );
            last_print = Instant::now();
        }
        assert!(
            started.elapsed() < limit,
            "provisioning did not finish within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if failures > 0 {
        println!("  warning: {failures} jobs failed (dead letters): counted as done");
    }
    finished.into_iter().map(|s| s.unwrap_or(f64::NAN)).collect()
}

/// Scenario a on one store: `users` into the in-memory (or scim2) target.
async fn fast(o: &Options, hub: &Hub, store: &SqlStore, kind: &str, raw: f64) -> (String, Target) {
    let target = start_target(&o.target).await;
    let app = hub.connect_app("fast", &target, o.concurrency).await;
    let before = target.requests();
    let started = Instant::now();
    hub.link("fast", "bench").await;
    let seconds = wait_for_accounts(
        store,
        &[(app.clone(), target.state.clone())],
        o.users,
        started,
        Duration::from_secs(3600),
    )
    .await[0];
    let rate = o.users as f64 / seconds;
    let per_user = (target.requests() - before) as f64 / o.users as f64;
    println!(
        "a. fast target, {kind}: {rate:.0} users/s ({} users in {seconds:.1} s, {per_user:.2} requests per user) \
         beside the target's raw capacity {raw:.0} users/s: {:.1}%",
        o.users,
        rate / raw * 100.0
    );
    (app, target)
}

async fn start_target(kind: &str) -> Target {
    match kind {
        "scim2" => start_scim2_target(),
        _ => start_memory_target(Duration::ZERO).await,
    }
}

/// Provisions `users` of `group` into `apps` fresh slow targets at once; prints users/s beside
/// the bound.
async fn slow(o: &Options, hub: &Hub, store: &SqlStore, group: &str, apps: usize, users: usize) {
    let label = if apps == 1 {
        "b. slow target".to_owned()
    } else {
        format!("c. {apps} slow apps at once")
    };
    let name = group;
    let delay = Duration::from_millis(o.delay_ms);
    let mut targets = Vec::new();
    let mut ids = Vec::new();
    for i in 0..apps {
        let target = start_memory_target(delay).await;
        ids.push(hub.connect_app(&format!("{name}{i:02}"), &target, o.concurrency).await);
        targets.push(target);
    }
    let before: Vec<u64> = targets.iter().map(Target::requests).collect();
    let started = Instant::now();
    for i in 0..apps {
        hub.link(&format!("{name}{i:02}"), group).await;
    }
    let watched: Vec<_> = ids
        .iter()
        .cloned()
        .zip(targets.iter().map(|t| t.state.clone()))
        .collect();
    let finished = wait_for_accounts(store, &watched, users, started, Duration::from_secs(3600)).await;
    let wall = finished.iter().copied().fold(0.0, f64::max);
    let mut bounds = 0.0;
    let mut per_user_all = Vec::new();
    for (target, before) in targets.iter().zip(&before) {
        let per_user = (target.requests() - before) as f64 / users as f64;
        per_user_all.push(per_user);
        bounds += o.concurrency as f64 / (per_user * delay.as_secs_f64());
    }
    let rate = (users * apps) as f64 / wall;
    let per_user = per_user_all.iter().sum::<f64>() / per_user_all.len() as f64;
    let rates: Vec<f64> = finished.iter().map(|s| users as f64 / s).collect();
    let (p50, _, max) = percentiles(rates.clone(), 100.0);
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{label}: {rate:.0} users/s ({} accounts in {wall:.1} s; {per_user:.2} requests per user counted by the targets) \
         beside the bound {bounds:.0} users/s ({} x concurrency {} / (requests per user x {} ms)): {:.1}%",
        users * apps,
        apps,
        o.concurrency,
        o.delay_ms,
        rate / bounds * 100.0
    );
    if apps > 1 {
        println!("   per app: min {min:.1}, median {p50:.1}, max {max:.1} users/s");
    }
    for target in targets {
        (target.stop)();
    }
}

/// Makes `count` single changes through the admin API at 20 per second (user created, then added
/// to `group`), while `keep_going` holds; returns the time from each membership change being sent
/// to the target receiving the user's create, in milliseconds.
async fn changes(
    hub: &Hub,
    target: &Target,
    group: &str,
    prefix: &str,
    count: usize,
    keep_going: impl Fn() -> bool,
) -> Vec<f64> {
    let mut sent = Vec::new();
    for i in 0..count {
        if !keep_going() {
            break;
        }
        let tick = Instant::now();
        let name = format!("{prefix}{i:05}");
        hub.expect(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": name, "email": format!("{name}@bench.example")})),
        )
        .await;
        let at = Instant::now();
        hub.expect(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{group}/members/{name}"),
            None,
        )
        .await;
        sent.push((name, at));
        if let Some(rest) = Duration::from_millis(50).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut latencies = Vec::new();
    for (name, at) in sent {
        let created = loop {
            if let Some(created) = target.created_at(&name) {
                break created;
            }
            assert!(Instant::now() < deadline, "{name} never reached the target");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        latencies.push(created.saturating_duration_since(at).as_secs_f64() * 1000.0);
    }
    latencies
}

fn print_latency(label: &str, latencies: Vec<f64>) {
    if latencies.is_empty() {
        println!("{label}: no samples");
        return;
    }
    let samples = latencies.len();
    let (p50, p99, max) = percentiles(latencies, 99.0);
    println!("{label}: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {samples} changes");
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "provision benchmark: scenarios {}, {} users, app concurrency {}, slow targets {} ms, hub `provisio serve` {}",
        o.scenarios,
        o.users,
        o.concurrency,
        o.delay_ms,
        if o.serve_flags.is_empty() {
            "with default settings".to_owned()
        } else {
            o.serve_flags.join(" ")
        }
    );
    let begun = Instant::now();

    // The reference for scenario a: the target's own capacity for the same requests.
    let mut raw = f64::NAN;
    if o.runs('a') {
        let target = start_target(&o.target).await;
        let (rate, errors) = raw_capacity(&target, o.users, o.concurrency).await;
        (target.stop)();
        raw = rate;
        println!(
            "raw target capacity ({} target, {} connections, look-up + create): {rate:.0} users/s ({:.0} requests/s, {errors} errors)",
            o.target,
            o.concurrency,
            rate * 2.0
        );
    }

    // One hub over SQLite for a, d, b and c.
    let database = Database::sqlite();
    let store = provisio::server::open_store(&database.config)
        .await
        .expect("open store");
    println!("seeding the SQLite store");
    if o.runs('a') || o.runs('d') {
        seed(&store, "bench", "user", o.users).await;
        seed(&store, "latency", "none", 0).await;
    }
    if o.runs('b') {
        seed(&store, "slow", "slow", o.slow_users).await;
    }
    if o.runs('c') {
        seed(&store, "slowapps", "many", o.slow_apps_users).await;
    }
    let hub = Hub::start(&database, &o.serve_flags).await;

    let mut fast_app = None;
    if o.runs('a') {
        fast_app = Some(fast(&o, &hub, &store, "SQLite", raw).await);
    }
    if o.runs('d') {
        // The target the changes go to: scenario a's, or a fresh in-memory one.
        let (target, app) = match fast_app.take() {
            Some((_, target)) if target.state.is_some() => (target, "fast"),
            other => {
                if let Some((_, target)) = other {
                    (target.stop)();
                }
                let target = start_memory_target(Duration::ZERO).await;
                hub.connect_app("changes", &target, o.concurrency).await;
                (target, "changes")
            }
        };
        hub.link(app, "latency").await;
        let idle = changes(&hub, &target, "latency", "idle", o.changes, || true).await;
        print_latency("d. change to target at idle", idle);

        let second = start_memory_target(Duration::ZERO).await;
        let busy = hub.connect_app("busy", &second, o.concurrency).await;
        let started = Instant::now();
        hub.link("busy", "bench").await;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (store, busy, done, state) = (store.clone(), busy.clone(), done.clone(), second.state.clone());
            let users = o.users;
            tokio::spawn(async move {
                let seconds =
                    wait_for_accounts(&store, &[(busy, state)], users, started, Duration::from_secs(3600)).await[0];
                done.store(true, Ordering::Relaxed);
                seconds
            })
        };
        let flag = done.clone();
        let loaded = changes(&hub, &target, "latency", "busy", o.changes * 100, move || {
            !flag.load(Ordering::Relaxed)
        })
        .await;
        let seconds = watcher.await.expect("watcher");
        print_latency(
            &format!(
                "d. change to target while another app provisions {} users ({:.0} users/s, {seconds:.1} s)",
                o.users,
                o.users as f64 / seconds
            ),
            loaded,
        );
        println!(
            "   (the second target holds {} users; changes stop when its provisioning ends)",
            second.users()
        );
        (second.stop)();
        (target.stop)();
    }
    if let Some((_, target)) = fast_app {
        (target.stop)();
    }
    if o.runs('b') {
        slow(&o, &hub, &store, "slow", 1, o.slow_users).await;
    }
    if o.runs('c') {
        slow(&o, &hub, &store, "slowapps", o.slow_apps, o.slow_apps_users).await;
    }
    hub.stop();
    store.close().await;

    // Scenario a again on PostgreSQL.
    if o.runs('a') {
        match &o.postgres {
            Some(url) => {
                let database = Database::postgres(url).await;
                let store = provisio::server::open_store(&database.config)
                    .await
                    .expect("open store");
                println!("seeding the {} store", database.kind());
                seed(&store, "bench", "user", o.users).await;
                let hub = Hub::start(&database, &o.serve_flags).await;
                let (_, target) = fast(&o, &hub, &store, "PostgreSQL", raw).await;
                (target.stop)();
                hub.stop();
                store.close().await;
                database.drop_database().await;
            }
            None => println!(
                "a. PostgreSQL: skipped (pass --postgres postgres://user@host/postgres or set PROVISIO_TEST_POSTGRES_URL)"
            ),
        }
    }
    println!("provision benchmark done in {:.0} s", begun.elapsed().as_secs_f64());
}
