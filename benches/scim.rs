//! SCIM server benchmark: throughput and latency of the hub's own SCIM 2.0 service provider
//! (`/scim/v2`, on its embedded SQLite store), next to scim2-server (the in-memory Python referee)
//! on the same workload, in the same run.
//!
//! Run with `cargo bench --bench scim -- [--users N] [--clients C] [--target both|provisio|scim2]`
//! (defaults: 2,000 users, 8 clients, both; also `PROVISIO_BENCH_USERS`, `PROVISIO_BENCH_CLIENTS`,
//! `PROVISIO_BENCH_TARGET`). scim2-server comes from the referee venv (`scripts/setup-referees`,
//! or `PROVISIO_REFEREE_VENV`).
//!
//! The hub runs in-process (`provisio::server::run`) on a 127.0.0.1 port over a fresh SQLite data
//! directory, authenticated with a SCIM token. Each phase runs C concurrent client tasks, each with
//! its own HTTP/1.1 keep-alive connection, splitting the N users between them:
//! 1. create: `POST /Users` (userName, name, emails, active, an enterprise department), 201;
//! 2. filter: `GET /Users?filter=userName eq "<name>"`, 200 with exactly the created user;
//! 3. patch: `PATCH /Users/{id}` (PatchOp: replace `name.givenName`, `active` false), 200 or 204;
//! 4. delete: `DELETE /Users/{id}`, 204.
//!
//! Every request is timed with `Instant` (send to the end of the body); a phase reports
//! requests/s over its wall time and p50/p99 from the sorted samples. Any unexpected answer counts
//! as an error, and the benchmark fails (exit 1) when a phase has one. scim2-server speaks HTTP/1.0
//! and closes every connection, so its clients reconnect per request; that is part of its numbers.

mod common;

use provisio::config::{Config, DatabaseConfig, LogFormat};
use provisio::outbound::scim::{encode_query, eq_filter};
use provisio::outbound::{EngineConfig, WorkerConfig};
use provisio::service::AuthService;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Both,
    Provisio,
    Scim2,
}

struct Options {
    users: usize,
    clients: usize,
    target: Which,
}

fn parse_target(text: &str) -> Result<Which, String> {
    match text {
        "both" => Ok(Which::Both),
        "provisio" => Ok(Which::Provisio),
        "scim2" | "scim2-server" => Ok(Which::Scim2),
        other => Err(format!("--target must be both, provisio or scim2, not {other}")),
    }
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("scim")? else {
        return Ok(None);
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut options = Options {
        users: 2_000,
        clients: 8,
        target: Which::Both,
    };
    if let Some(v) = env("PROVISIO_BENCH_USERS") {
        options.users = common::positive("PROVISIO_BENCH_USERS", &v)?;
    }
    if let Some(v) = env("PROVISIO_BENCH_CLIENTS") {
        options.clients = common::positive("PROVISIO_BENCH_CLIENTS", &v)?;
    }
    if let Some(v) = env("PROVISIO_BENCH_TARGET") {
        options.target = parse_target(&v)?;
    }
    for (flag, value) in flags {
        match flag.as_str() {
            "--users" => options.users = common::positive(&flag, &value)?,
            "--clients" => options.clients = common::positive(&flag, &value)?,
            "--target" => options.target = parse_target(&value)?,
            other => common::unknown(other)?,
        }
    }
    Ok(Some(options))
}

// ------------------------------------------------------------------ the two servers

/// A running SCIM service provider: its base URL and bearer token.
struct Server {
    name: &'static str,
    base_url: String,
    token: String,
}

/// How to stop a server.
enum Stop {
    Hub {
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<provisio::domain::Result<()>>,
        _dir: tempfile::TempDir,
    },
    Child(Child),
}

impl Stop {
    async fn stop(self) {
        match self {
            Stop::Hub { shutdown, task, _dir } => {
                shutdown.cancel();
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("the hub stopped with an error: {e}"),
                    Err(e) => eprintln!("the hub task failed: {e}"),
                }
            }
            Stop::Child(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The hub, in-process, over a fresh SQLite data directory, with a SCIM token.
async fn start_provisio() -> (Server, Stop) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = DatabaseConfig::Sqlite {
        data_dir: dir.path().to_owned(),
    };
    let store = provisio::server::open_store(&database).await.expect("open store");
    let token = AuthService::new(store.clone())
        .create_scim_token("bench", &provisio::domain::admin::Principal::system())
        .await
        .expect("SCIM token")
        .secret
        .expose_secret()
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let config = Config {
        backups: None,
        network: provisio::config::NetworkConfig::default(),
        listen: address,
        database,
        log_format: LogFormat::Human,
        log_level: "warn".into(),
        max_body_bytes: provisio::config::DEFAULT_MAX_BODY_BYTES,
        shutdown_timeout: Duration::from_secs(10),
        secret_key_file: dir.path().join("secret.key"),
        request_timeout: Duration::from_secs(30),
        engine: EngineConfig::default(),
        report_retention: time::Duration::days(180),
        secure_cookies: false,
        sessions: Default::default(),
        login_throttle: Default::default(),
        workers: WorkerConfig::default(),
    };
    let shutdown = CancellationToken::new();
    let hub = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { provisio::server::run(store, listener, &config, shutdown).await })
    };
    let server = Server {
        name: "Provisio",
        base_url: format!("http://{address}/scim/v2"),
        token,
    };
    wait_ready(&server).await;
    let stop = Stop::Hub {
        shutdown,
        task: hub,
        _dir: dir,
    };
    (server, stop)
}

/// scim2-server from the referee venv on a free loopback port (it dies with this process).
async fn start_scim2() -> (Server, Stop) {
    let venv = std::env::var("PROVISIO_REFEREE_VENV")
        .unwrap_or_else(|_| format!("{}/.venv-referees", env!("CARGO_MANIFEST_DIR")));
    let port = common::free_port();
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
    common::die_with_bench(&mut command);
    let child: Child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start scim2-server from {venv} ({e}): run scripts/setup-referees"));
    let server = Server {
        name: "scim2-server",
        base_url: format!("http://127.0.0.1:{port}/v2"),
        token,
    };
    wait_ready(&server).await;
    (server, Stop::Child(child))
}

/// Waits until the server answers `GET /ServiceProviderConfig` with 200.
async fn wait_ready(server: &Server) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http
            .get(format!("{}/ServiceProviderConfig", server.base_url))
            .bearer_auth(&server.token)
            .send()
            .await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} did not start", server.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ the workload

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Create,
    Filter,
    Patch,
    Delete,
}

const PHASES: [Phase; 4] = [Phase::Create, Phase::Filter, Phase::Patch, Phase::Delete];

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Create => "POST /Users",
            Phase::Filter => "GET filter userName eq",
            Phase::Patch => "PATCH /Users/{id}",
            Phase::Delete => "DELETE /Users/{id}",
        }
    }
}

fn username(i: usize) -> String {
    format!("bench.user{i:06}")
}

fn new_user(i: usize) -> Value {
    let name = username(i);
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": format!("User{i:06}")},
        "emails": [{"value": format!("{name}@bench.example"), "type": "work", "primary": true}],
        "active": true,
        ENTERPRISE_SCHEMA: {"department": format!("Department {}", i % 10)}
    })
}

fn patch_body() -> Value {
    json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {"op": "replace", "path": "name.givenName", "value": "Patched"},
            {"op": "replace", "path": "active", "value": false}
        ]
    })
}

/// What one client task measured.
#[derive(Default)]
struct Measured {
    samples: Vec<f64>,
    errors: Vec<String>,
    /// (user index, id) of the users created (create phase).
    created: Vec<(usize, String)>,
}

/// One request of `phase` for user `i`; returns the created id (create phase) or an error.
async fn one(
    http: &reqwest::Client,
    server: &Server,
    phase: Phase,
    i: usize,
    id: Option<&str>,
) -> Result<Option<String>, String> {
    let base = &server.base_url;
    let request = match phase {
        Phase::Create => http
            .post(format!("{base}/Users"))
            .header("content-type", SCIM_JSON)
            .body(new_user(i).to_string()),
        Phase::Filter => {
            let filter = eq_filter("userName", &username(i));
            http.get(format!("{base}/Users?filter={}", encode_query(&filter)))
        }
        Phase::Patch => http
            .patch(format!("{base}/Users/{}", id.unwrap_or_default()))
            .header("content-type", SCIM_JSON)
            .body(patch_body().to_string()),
        Phase::Delete => http.delete(format!("{base}/Users/{}", id.unwrap_or_default())),
    };
    let response = request
        .bearer_auth(&server.token)
        .header("accept", SCIM_JSON)
        .send()
        .await
        .map_err(|e| format!("user {i}: request failed: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| format!("user {i}: reading the answer failed: {e}"))?;
    let body =
        || serde_json::from_str::<Value>(&text).map_err(|e| format!("user {i}: {status} answer is not JSON: {e}"));
    let unexpected = || format!("user {i}: unexpected answer {status}: {text}");
    match phase {
        Phase::Create => {
            if status != 201 {
                return Err(unexpected());
            }
            let created = body()?;
            if created["userName"] != username(i) {
                return Err(unexpected());
            }
            created["id"]
                .as_str()
                .map(|id| Some(id.to_owned()))
                .ok_or_else(unexpected)
        }
        Phase::Filter => {
            if status != 200 {
                return Err(unexpected());
            }
            let list = body()?;
            let resources = list["Resources"].as_array().map_or(0, Vec::len);
            if list["totalResults"] != 1 || resources != 1 || list["Resources"][0]["id"].as_str() != id {
                return Err(format!("user {i}: the filter did not find exactly that user: {text}"));
            }
            Ok(None)
        }
        Phase::Patch => match status {
            204 => Ok(None),
            200 => {
                let patched = body()?;
                if patched["active"] != false || patched["name"]["givenName"] != "Patched" {
                    return Err(format!("user {i}: the PATCH was not applied: {text}"));
                }
                Ok(None)
            }
            _ => Err(unexpected()),
        },
        Phase::Delete => {
            if status == 204 {
                Ok(None)
            } else {
                Err(unexpected())
            }
        }
    }
}

/// What a phase measured, over all its clients.
struct PhaseResult {
    requests: usize,
    seconds: f64,
    sorted: Vec<f64>,
    errors: Vec<String>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs one phase: `clients` tasks, task k taking users k, k + clients, ...
async fn run_phase(
    server: &Arc<Server>,
    phase: Phase,
    users: usize,
    clients: usize,
    ids: &Arc<Vec<Option<String>>>,
) -> (PhaseResult, Vec<(usize, String)>) {
    // One connection per client, built before the clock starts.
    let https: Vec<reqwest::Client> = (0..clients)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client")
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (k, http) in https.into_iter().enumerate() {
        let (server, ids) = (server.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut measured = Measured {
                samples: Vec::with_capacity(users / clients + 1),
                ..Default::default()
            };
            for i in (k..users).step_by(clients) {
                let id = ids.get(i).and_then(Option::as_deref);
                if phase != Phase::Create && id.is_none() {
                    measured.errors.push(format!("user {i}: was not created"));
                    continue;
                }
                let tick = Instant::now();
                let outcome = one(&http, &server, phase, i, id).await;
                measured.samples.push(tick.elapsed().as_secs_f64() * 1000.0);
                match outcome {
                    Ok(Some(created)) => measured.created.push((i, created)),
                    Ok(None) => {}
                    Err(e) => measured.errors.push(e),
                }
            }
            measured
        }));
    }
    let mut all = Measured::default();
    for task in tasks {
        let measured = task.await.expect("client task");
        all.samples.extend(measured.samples);
        all.errors.extend(measured.errors);
        all.created.extend(measured.created);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.samples.sort_by(f64::total_cmp);
    let result = PhaseResult {
        requests: all.samples.len(),
        seconds,
        sorted: all.samples,
        errors: all.errors,
    };
    (result, all.created)
}

/// Runs the four phases against one server; exits with 1 at the first phase with errors.
async fn run_workload((server, stop): (Server, Stop), users: usize, clients: usize) -> Vec<PhaseResult> {
    let server = Arc::new(server);
    let mut ids: Arc<Vec<Option<String>>> = Arc::new(Vec::new());
    let mut results = Vec::new();
    let mut failed = false;
    for phase in PHASES {
        let (result, created) = run_phase(&server, phase, users, clients, &ids).await;
        println!(
            "  {:<13} {:<24} {:>6} requests in {:>6.2} s: {:>7.0} req/s, p50 {:>6.2} ms, p99 {:>7.2} ms, {} errors",
            server.name,
            phase.label(),
            result.requests,
            result.seconds,
            result.rate(),
            percentile(&result.sorted, 50.0),
            percentile(&result.sorted, 99.0),
            result.errors.len()
        );
        if phase == Phase::Create {
            let mut by_user = vec![None; users];
            for (i, id) in created {
                by_user[i] = Some(id);
            }
            ids = Arc::new(by_user);
        }
        if !result.errors.is_empty() {
            eprintln!(
                "error: {} of {} {} requests to {} failed; the first ones:",
                result.errors.len(),
                result.requests,
                phase.label(),
                server.name
            );
            for e in result.errors.iter().take(5) {
                eprintln!("  {e}");
            }
            failed = true;
        }
        results.push(result);
        if failed {
            break;
        }
    }
    stop.stop().await;
    if failed {
        std::process::exit(1);
    }
    results
}

// ------------------------------------------------------------------ the table

fn cells(result: Option<&PhaseResult>) -> String {
    match result {
        Some(r) => format!(
            "{:>9.0} {:>8.2} {:>8.2}",
            r.rate(),
            percentile(&r.sorted, 50.0),
            percentile(&r.sorted, 99.0)
        ),
        None => format!("{:>9} {:>8} {:>8}", "-", "-", "-"),
    }
}

fn print_table(options: &Options, provisio: &[PhaseResult], scim2: &[PhaseResult]) {
    println!();
    println!(
        "SCIM benchmark: {} users, {} concurrent clients (HTTP/1.1 keep-alive; scim2-server closes every connection)",
        options.users, options.clients
    );
    println!(
        "{:<24} | {:^27} | {:^27} | {:>14}",
        "", "Provisio (SQLite)", "scim2-server (memory)", "Provisio /"
    );
    println!(
        "{:<24} | {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>14}",
        "phase", "req/s", "p50 ms", "p99 ms", "req/s", "p50 ms", "p99 ms", "scim2 (req/s)"
    );
    println!("{}", "-".repeat(24 + 3 + 27 + 3 + 27 + 3 + 14));
    for (n, phase) in PHASES.iter().enumerate() {
        let (p, s) = (provisio.get(n), scim2.get(n));
        let ratio = match (p, s) {
            (Some(p), Some(s)) => format!("{:.2}x", p.rate() / s.rate()),
            _ => "-".into(),
        };
        println!("{:<24} | {} | {} | {:>14}", phase.label(), cells(p), cells(s), ratio);
    }
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(options) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "scim benchmark: {} users, {} clients, target {:?}",
        options.users, options.clients, options.target
    );
    let mut provisio = Vec::new();
    let mut scim2 = Vec::new();
    if options.target != Which::Scim2 {
        provisio = run_workload(start_provisio().await, options.users, options.clients).await;
    }
    if options.target != Which::Provisio {
        scim2 = run_workload(start_scim2().await, options.users, options.clients).await;
    }
    print_table(&options, &provisio, &scim2);
}
