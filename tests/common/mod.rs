//! Shared test harness: a real hub (the library's server on a loopback port) over a fresh
//! database per test, SQLite or PostgreSQL, and an HTTP client to drive it.

#![allow(dead_code)]

pub mod browser;
pub mod console;
pub mod disk;
pub mod postgres;
pub mod referee;
pub mod runs;
pub mod slapd;

use provisio::config::{Config, DatabaseConfig, LogFormat};
use provisio::service::AuthService;
use provisio::store::SqlStore;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Makes a child process die with the test process, so that no referee or hub outlives a failed test.
pub fn tied_to_test(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
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

/// Reads a child's output on a thread, so that a chatty child never blocks on a full pipe.
pub fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("PROVISIO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDatabase {
    pub config: DatabaseConfig,
    pub data_dir: Option<tempfile::TempDir>,
    pub url: String,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        provisio::install_crypto_provider();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path: PathBuf = dir.path().to_owned();
                TestDatabase {
                    url: provisio::store::sqlite_url(&path),
                    config: DatabaseConfig::Sqlite { data_dir: path },
                    data_dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("provisio_test_{}", uuid::Uuid::now_v7().simple());
                let admin = SqlStore::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required for the test suite and is not reachable at {admin_url}: {e}. Start it (scripts/test does) or set PROVISIO_TEST_POSTGRES_URL.")
                });
                admin
                    .execute_raw(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .expect("database URL with a path");
                let url = format!("{base}/{name}");
                TestDatabase {
                    config: DatabaseConfig::Url(SecretString::from(url.clone())),
                    data_dir: None,
                    url,
                }
            }
        }
    }

    /// Opens and migrates the store.
    pub async fn store(&self) -> SqlStore {
        provisio::server::open_store(&self.config).await.expect("open store")
    }
}

/// A running hub on a loopback port with an admin token.
pub struct TestHub {
    pub backend: Backend,
    pub db: TestDatabase,
    pub store: SqlStore,
    pub base_url: String,
    pub token: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<provisio::domain::Result<()>>>,
    _key_dir: tempfile::TempDir,
}

impl TestHub {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with_limit(backend, 1024 * 1024).await
    }

    pub async fn start_with_limit(backend: Backend, max_body_bytes: usize) -> Self {
        Self::start_configured(backend, |config| config.max_body_bytes = max_body_bytes).await
    }

    /// Starts a hub whose test configuration `adjust` may change.
    pub async fn start_configured(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::new(backend).await;
        let store = db.store().await;
        let token = AuthService::new(store.clone())
            .create_token("test", &provisio::domain::admin::Principal::system())
            .await
            .expect("token")
            .secret
            .expose_secret()
            .to_owned();
        let key_dir = tempfile::tempdir().expect("key directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Config {
            backups: None,
            network: provisio::config::NetworkConfig::default(),
            listen: listener.local_addr().expect("addr"),
            database: db.config.clone(),
            log_format: LogFormat::Human,
            log_level: "warn".into(),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            secret_key_file: key_dir.path().join("secret.key"),
            request_timeout: Duration::from_secs(5),
            engine: provisio::outbound::EngineConfig {
                max_attempts: 8,
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(2),
                keep_bodies: true,
                quarantine_after: 20,
                probe_delay: Duration::from_millis(300),
                ..Default::default()
            },
            report_retention: time::Duration::days(180),
            secure_cookies: false,
            sessions: Default::default(),
            login_throttle: Default::default(),
            workers: provisio::outbound::WorkerConfig {
                max_in_flight: provisio::outbound::worker::DEFAULT_MAX_IN_FLIGHT,
                poll: Duration::from_millis(50),
                ..Default::default()
            },
        };
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let server_store = store.clone();
        let stop = shutdown.clone();
        let handle = tokio::spawn(async move { provisio::server::run(server_store, listener, &config, stop).await });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        TestHub {
            backend,
            db,
            store,
            base_url,
            token,
            http,
            shutdown,
            handle: Some(handle),
            _key_dir: key_dir,
        }
    }

    /// Sends a JSON request with the admin token; returns status and parsed body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, path, body, Some(&self.token)).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{}", self.base_url, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// All change-log events.
    pub async fn changes(&self) -> Vec<Value> {
        let body = self.get("/api/v1/changes?limit=10000").await;
        body.as_array().cloned().expect("array")
    }

    /// Runs the real `provisio` binary against this hub.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
            .args(args)
            .env("PROVISIO_SERVER", &self.base_url)
            .env("PROVISIO_TOKEN", &self.token)
            .env("PROVISIO_CLI_CONFIG", "/nonexistent/provisio-cli.toml")
            .output()
            .expect("run provisio")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("join").expect("server stopped cleanly");
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Declares one test per backend: `backend_tests!(name)` runs `async fn name(Backend)` on SQLite and PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// Polls `check` until it returns `Some`, or panics after `seconds` with `what`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestHub {
    /// Connects an app to `base_url` and waits until its connection check passed.
    pub async fn connect_app(&self, body: Value) -> Value {
        let (status, app) = self.call(Method::POST, "/api/v1/apps", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        let id = app["id"].as_str().expect("id").to_owned();
        eventually(30, "the app's connection check", || async {
            let app = self.get(&format!("/api/v1/apps/{id}")).await;
            match app["connection_status"].as_str() {
                Some("ok") => Some(app),
                Some("failed") => panic!("connection check failed: {app}"),
                _ => None,
            }
        })
        .await
    }

    /// Waits until no job of the app is pending or running.
    pub async fn settle(&self, app: &str) {
        self.settle_within(app, 60).await;
    }

    /// Waits up to `seconds` until no job of the app is pending or running.
    pub async fn settle_within(&self, app: &str, seconds: u64) {
        eventually(seconds, "the queue to drain", || async {
            // First the change log, then the jobs: jobs are created when events are dispatched.
            let undispatched = self.store.query_scalar(
                "SELECT COUNT(*) FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound')",
            ).await.expect("count");
            let pending = self.store.query_scalar(&format!(
                "SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app}' AND status IN ('pending', 'running')"
            )).await.expect("count");
            (pending == 0 && undispatched == 0).then_some(())
        })
        .await;
    }
}

impl TestHub {
    /// Waits until the dispatcher has read the whole change log.
    pub async fn settle_dispatch(&self) {
        eventually(30, "the change log to be dispatched", || async {
            let undispatched = self.store.query_scalar(
                "SELECT COUNT(*) FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound')",
            ).await.expect("count");
            (undispatched == 0).then_some(())
        })
        .await;
    }
}

/// A `provisio serve` process of the real binary.
pub struct HubProcess {
    child: std::process::Child,
    /// Its base URL.
    pub base_url: String,
}

impl HubProcess {
    /// Starts `provisio serve` on a free port over the given store and key file, and waits until it answers.
    pub async fn spawn(store_flags: &[String], key_file: &std::path::Path, extra: &[&str]) -> Self {
        Self::start(store_flags, key_file, extra, None, None).await
    }

    /// Like [`HubProcess::spawn`], with the process's open-file limit (soft and hard) set to
    /// `open_files` before it starts.
    pub async fn spawn_with_file_limit(
        store_flags: &[String],
        key_file: &std::path::Path,
        extra: &[&str],
        open_files: u64,
    ) -> Self {
        Self::start(store_flags, key_file, extra, None, Some(open_files)).await
    }

    /// Like [`HubProcess::spawn`], with the log (info level) written to `log_file`.
    pub async fn spawn_logging(
        store_flags: &[String],
        key_file: &std::path::Path,
        extra: &[&str],
        log_file: &std::path::Path,
    ) -> Self {
        Self::start(store_flags, key_file, extra, Some(log_file), None).await
    }

    async fn start(
        store_flags: &[String],
        key_file: &std::path::Path,
        extra: &[&str],
        log_file: Option<&std::path::Path>,
        open_files: Option<u64>,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"));
        let stderr = match log_file {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).expect("log file")),
            None => std::process::Stdio::null(),
        };
        tied_to_test(&mut command)
            .arg("serve")
            .args(store_flags)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--secret-key-file",
                &key_file.display().to_string(),
                "--log-level",
                if log_file.is_some() { "info" } else { "warn" },
                // Tests drive the hub with one token far beyond the default rate limit
                // (tests/network.rs tests the limit).
                "--rate-limit",
                "0",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        if let Some(open_files) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit only, between fork and exec; it allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: open_files,
                        rlim_max: open_files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().expect("start provisio serve");
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(30, "provisio serve to answer", || async {
            http.get(format!("{base_url}/healthz")).send().await.ok()
        })
        .await;
        HubProcess { child, base_url }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL: no shutdown, no cleanup.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestDatabase {
    /// The `serve` flags that open this database.
    pub fn flags(&self) -> Vec<String> {
        match &self.data_dir {
            Some(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            None => vec!["--database-url".into(), self.url.clone()],
        }
    }

    /// An admin API token created offline with `provisio admin-token`.
    pub fn admin_token(&self) -> String {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
            .arg("admin-token")
            .args(self.flags())
            .output()
            .expect("admin-token");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// Waits until every change is dispatched and every job of the app is finished (read straight
/// from the store, so it works while the hub runs in another process).
pub async fn drained(store: &SqlStore, app_id: &str, seconds: u64) {
    eventually(seconds, "the queue to drain", || async {
        let undispatched = store
            .query_scalar("SELECT COUNT(*) FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound')")
            .await
            .ok()?;
        let open = store
            .query_scalar(&format!("SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app_id}' AND status <> 'done'"))
            .await
            .ok()?;
        (undispatched == 0 && open == 0).then_some(())
    })
    .await;
}

/// The standard output of a CLI run that must have succeeded (else the test fails, showing both streams).
pub fn ok(output: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The files below `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// The value of the sample `series` (a metric name with its labels, as `/metrics` writes it) in
/// the hub's Prometheus text at `base`; `None` when the hub does not show it.
pub async fn metric(http: &reqwest::Client, base: &str, series: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
