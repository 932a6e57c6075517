//! The hub the benchmarks measure: the real `provisio serve` binary started as a child process
//! over a fresh store (a SQLite data directory or a new PostgreSQL database), with an admin API
//! client.

use super::target::Target;
use super::{die_with_bench, free_port};
use provisio::config::DatabaseConfig;
use provisio::store::SqlStore;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A store for one hub: a SQLite data directory or a fresh PostgreSQL database.
pub struct Database {
    /// How the bench opens the store itself.
    pub config: DatabaseConfig,
    /// The `provisio` flags that name the store.
    pub flags: Vec<String>,
    _dir: Option<tempfile::TempDir>,
    /// The server's admin URL and the database's name, to drop it afterwards.
    postgres: Option<(String, String)>,
}

impl Database {
    pub fn sqlite() -> Self {
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

    pub async fn postgres(admin_url: &str) -> Self {
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

    pub fn kind(&self) -> &'static str {
        if self.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    pub async fn drop_database(&self) {
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
pub struct Hub {
    /// The `provisio serve` process.
    pub child: Child,
    /// Its base URL.
    pub url: String,
    /// An admin API token.
    pub token: String,
    /// The client that talks to it.
    pub http: reqwest::Client,
    _key_dir: tempfile::TempDir,
}

impl Hub {
    pub async fn start(database: &Database, serve_flags: &[String]) -> Self {
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
        // The hub logs warnings only, unless PROVISIO_BENCH_LOG names a filter (for example
        // `warn,sqlx::query=debug` to see every statement and its time).
        let log_level = std::env::var("PROVISIO_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned());
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
                &log_level,
                // One token drives the hub far beyond the default 1,000 requests a second.
                "--rate-limit",
                "0",
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

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
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

    pub async fn expect(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// Creates an app on `target` with `concurrency` requests in flight and waits until its
    /// connection check passed; returns its id.
    pub async fn connect_app(&self, name: &str, target: &Target, concurrency: usize) -> String {
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

    pub async fn link(&self, app: &str, group: &str) {
        self.expect(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": app, "group": group})),
        )
        .await;
    }

    /// Links `group` to each of `apps` with concurrent requests (the policies are created at once).
    pub async fn link_all(&self, apps: &[String], group: &str) {
        let mut requests = tokio::task::JoinSet::new();
        for app in apps {
            let request = self
                .http
                .post(format!("{}/api/v1/policies", self.url))
                .bearer_auth(&self.token)
                .json(&json!({"app": app, "group": group}));
            requests.spawn(async move {
                let response = request.send().await.expect("admin API request");
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(status.is_success(), "POST /api/v1/policies: {status} {text}");
            });
        }
        while let Some(done) = requests.join_next().await {
            done.expect("policy request");
        }
    }

    pub fn stop(mut self) {
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
