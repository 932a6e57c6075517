//! The store refusing writes: a SQLite data directory on a small file system that fills up while
//! the admin API, the SCIM server and the engine write, and a PostgreSQL server whose connections
//! are cut and which is restarted during provisioning. Real `provisio serve` processes, a real
//! SCIM target (scim2-server); nothing acknowledged may be lost, nothing refused may be stored,
//! and the hub must recover without a restart.

mod common;

use common::disk::SmallDisk;
use common::postgres::PrivatePostgres;
use common::referee::ScimTarget;
use common::{HubProcess, TestDatabase, drained, eventually};
use provisio::store::SqlStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One write and how the hub answered it.
#[derive(Debug, Clone)]
struct Answer {
    username: String,
    scim: bool,
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// Drives one hub over HTTP with an admin token and a SCIM token.
struct Client {
    http: reqwest::Client,
    base: String,
    admin: String,
    scim: String,
}

impl Client {
    async fn admin_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the hub answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a user through the admin API or the SCIM server and records the answer.
    async fn create(&self, username: &str, scim: bool) -> Answer {
        let request = if scim {
            self.http
                .post(format!("{}/scim/v2/Users", self.base))
                .bearer_auth(&self.scim)
                .header("Content-Type", "application/scim+json")
                .body(
                    json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": username,
                        "name": {"familyName": username},
                        "emails": [{"value": format!("{username}@example.com"), "primary": true}]
                    })
                    .to_string(),
                )
        } else {
            self.http
                .post(format!("{}/api/v1/users", self.base))
                .bearer_auth(&self.admin)
                .json(
                    &json!({"username": username, "family_name": username, "email": format!("{username}@example.com")}),
                )
        };
        let response = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("the hub answers every write");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            username: username.to_owned(),
            scim,
            status,
            retry_after,
            body,
        }
    }

    async fn ready(&self) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("readyz answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The storage error counter for `cause` in `/metrics`.
    async fn storage_errors(&self, cause: &str) -> f64 {
        let series = format!("provisio_storage_errors_total{{cause=\"{cause}\"}}");
        common::metric(&self.http, &self.base, &series).await.unwrap_or(0.0)
    }
}

/// Writers that create users until stopped, half through the admin API and half over SCIM.
struct Writers {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(client: &Arc<Client>, prefix: &str, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..count)
            .map(|writer| {
                let (client, stop, answers) = (client.clone(), stop.clone(), answers.clone());
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    let scim = writer % 2 == 1;
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("{prefix}{}{writer}-{i:05}", if scim { "s" } else { "a" });
                        let answer = client.create(&name, scim).await;
                        answers.lock().unwrap().push(answer);
                        i += 1;
                    }
                })
            })
            .collect();
        Writers { stop, answers, tasks }
    }

    fn count(&self, status: u16) -> usize {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.status == status)
            .count()
    }

    fn len(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Acknowledged writes among those answered after the first `from`, through the API and over SCIM.
    fn acknowledged_since(&self, from: usize) -> (usize, usize) {
        let answers = self.answers.lock().unwrap();
        let ok = answers[from.min(answers.len())..].iter().filter(|a| a.status == 201);
        ok.fold(
            (0, 0),
            |(api, scim), a| {
                if a.scim { (api, scim + 1) } else { (api + 1, scim) }
            },
        )
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("writer");
        }
        Arc::try_unwrap(self.answers)
            .expect("writers done")
            .into_inner()
            .unwrap()
    }
}

/// Every answer is a success or an honest refusal that names the full database.
fn assert_honest_answers(answers: &[Answer]) {
    for answer in answers {
        match answer.status {
            201 => {}
            503 => {
                assert_eq!(
                    answer.retry_after.as_deref(),
                    Some("5"),
                    "503 with Retry-After: {answer:?}"
                );
                let message = if answer.scim {
                    assert_eq!(answer.body["status"], "503", "a SCIM error body: {answer:?}");
                    assert_eq!(
                        answer.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
                        "{answer:?}"
                    );
                    answer.body["detail"].as_str()
                } else {
                    assert_eq!(answer.body["error"]["code"], "storage_unavailable", "{answer:?}");
                    answer.body["error"]["message"].as_str()
                };
                assert!(
                    message.is_some_and(|m| m.contains("the database is full")),
                    "the refusal names the cause: {answer:?}"
                );
            }
            _ => panic!("a write was answered neither 201 nor 503: {answer:?}"),
        }
    }
}

/// The log holds exactly one line for the start of the outage and one for its end.
fn assert_one_line_each(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).expect("hub log");
    let started = text
        .lines()
        .filter(|l| l.contains("requests get 503 and provisioning waits"))
        .count();
    let ended = text
        .lines()
        .filter(|l| l.contains("the store takes writes again"))
        .count();
    assert_eq!(
        (started, ended),
        (1, 1),
        "one line when the outage starts and one when it ends:\n{text}"
    );
    assert!(
        text.contains("the database is full"),
        "the log names the cause:\n{text}"
    );
    let per_request = text.lines().filter(|l| l.contains("request failed")).count();
    assert_eq!(per_request, 0, "no error line per refused request:\n{text}");
}

async fn start_hub(
    disk: &SmallDisk,
    keys: &tempfile::TempDir,
    log: &std::path::Path,
) -> (TestDatabase, HubProcess, Arc<Client>) {
    provisio::install_crypto_provider();
    let db = TestDatabase {
        url: provisio::store::sqlite_url(disk.path()),
        config: provisio::config::DatabaseConfig::Sqlite {
            data_dir: disk.path().to_owned(),
        },
        data_dir: None,
    };
    let flags = vec!["--data-dir".to_owned(), disk.path().display().to_string()];
    let admin = {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
            .arg("admin-token")
            .args(&flags)
            .output()
            .expect("admin-token");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let hub = HubProcess::spawn_logging(&flags, &keys.path().join("secret.key"), &[], log).await;
    let mut client = Client {
        http: reqwest::Client::new(),
        base: hub.base_url.clone(),
        admin,
        scim: String::new(),
    };
    let (status, token) = client
        .admin_call(
            reqwest::Method::POST,
            "/api/v1/scim-tokens",
            Some(json!({"name": "idp"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    client.scim = token["secret"].as_str().expect("SCIM token").to_owned();
    (db, hub, Arc::new(client))
}

/// Usernames in the store, their ids, and the ids of the change log's user events (in these
/// tests only creations happen, so each stored user must appear exactly once).
async fn stored_users(store: &SqlStore) -> (BTreeSet<String>, Vec<String>, Vec<String>) {
    let names: BTreeSet<String> = store
        .query_texts("SELECT username FROM users")
        .await
        .expect("users")
        .into_iter()
        .collect();
    let mut ids = store.query_texts("SELECT id FROM users").await.expect("user ids");
    ids.sort();
    let mut created = store
        .query_texts("SELECT entity_id FROM change_log WHERE entity = 'user'")
        .await
        .expect("change log");
    created.sort();
    (names, ids, created)
}

/// Connects scim2-server as the app "App" (waiting for its connection check) and puts `count`
/// users (`u00000`, ...) in the group "Staff", 8 at a time; no policy yet. Returns the app's id.
async fn staff_with_an_app(client: &Arc<Client>, target: &ScimTarget, count: usize) -> String {
    let (status, app) = client
        .admin_call(
            reqwest::Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "App", "base_url": target.base_url, "token": target.token})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().expect("app id").to_owned();
    eventually(30, "the connection check", || async {
        let (_, app) = client
            .admin_call(reqwest::Method::GET, &format!("/api/v1/apps/{app_id}"), None)
            .await;
        (app["connection_status"] == "ok").then_some(())
    })
    .await;
    let (status, body) = client
        .admin_call(reqwest::Method::POST, "/api/v1/groups", Some(json!({"name": "Staff"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut seeding = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        seeding.push(tokio::spawn(async move {
            for i in (worker..count).step_by(8) {
                let name = format!("u{i:05}");
                assert_eq!(client.create(&name, false).await.status, 201);
                let (status, _) = client
                    .admin_call(
                        reqwest::Method::PUT,
                        &format!("/api/v1/groups/Staff/members/{name}"),
                        None,
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for task in seeding {
        task.await.expect("seeding");
    }
    app_id
}

/// Gives Staff access to App: provisioning starts.
async fn start_provisioning(client: &Client) {
    let (status, body) = client
        .admin_call(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "App", "group": "Staff"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Waits until the target holds at least `users` accounts: provisioning is under way.
async fn provisioned_at_least(target: &ScimTarget, users: usize) {
    eventually(60, "provisioning to be under way", || async {
        (target.users().await.len() >= users).then_some(())
    })
    .await;
}

/// The target holds exactly the `count` assigned users, none twice, and no job is a dead letter.
async fn assert_provisioned_exactly(target: &ScimTarget, store: &SqlStore, count: usize) {
    let users = target.users().await;
    let names: BTreeSet<&str> = users.iter().filter_map(|u| u["userName"].as_str()).collect();
    assert_eq!(users.len(), count, "exactly the assigned users");
    assert_eq!(names.len(), count, "no duplicates");
    let failed = store
        .query_scalar("SELECT COUNT(*) FROM sync_jobs WHERE status = 'failed'")
        .await
        .expect("count");
    assert_eq!(failed, 0, "no job became a dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_loses_no_acknowledged_write_and_recovers() {
    let disk = SmallDisk::mount(16);
    let keys = tempfile::tempdir().expect("key dir");
    let log = keys.path().join("hub.log");
    let (db, hub, client) = start_hub(&disk, &keys, &log).await;
    let writers = Writers::start(&client, "u", 8);

    eventually(60, "writes before the disk fills", || async {
        (writers.count(201) >= 80).then_some(())
    })
    .await;
    disk.fill();
    assert_eq!(disk.available(), 0, "the file system is full");
    eventually(60, "writes refused on the full disk", || async {
        (writers.count(503) >= 40).then_some(())
    })
    .await;
    let (status, text) = eventually(60, "readyz to report not ready", || async {
        let (status, text) = client.ready().await;
        (status == 503).then_some((status, text))
    })
    .await;
    assert_eq!(status, 503);
    assert!(text.contains("the database is full"), "{text}");

    disk.free();
    let freed_at = writers.len();
    eventually(60, "writes through the API and SCIM to succeed again", || async {
        let (api, scim) = writers.acknowledged_since(freed_at);
        (api >= 20 && scim >= 20).then_some(())
    })
    .await;
    eventually(30, "readyz to report ready", || async {
        (client.ready().await.0 == 200).then_some(())
    })
    .await;
    let answers = writers.finish().await;
    assert!(
        client.storage_errors("full").await >= 40.0,
        "the metric counts storage errors"
    );
    assert_honest_answers(&answers);
    assert!(hub.stop().success(), "the hub stops cleanly");
    assert_one_line_each(&log);

    // What is on disk after the hub stopped: exactly the acknowledged users, each created once.
    let store = SqlStore::connect(&db.url).await.expect("open the store");
    let (stored, ids, created) = stored_users(&store).await;
    let acknowledged: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.username.clone())
        .collect();
    let refused: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.username.clone())
        .collect();
    assert!(refused.len() >= 40, "the test refused writes: {}", refused.len());
    assert_eq!(
        stored, acknowledged,
        "every acknowledged write is stored, and no refused one"
    );
    assert_eq!(
        created, ids,
        "the change log holds one event per stored user, and no other"
    );
    let operations = store
        .query_texts("SELECT DISTINCT operation FROM change_log WHERE entity = 'user'")
        .await
        .expect("operations");
    assert_eq!(operations, vec!["created"], "every user event is its creation");
    assert_eq!(
        store.query_texts("PRAGMA integrity_check").await.expect("check"),
        vec!["ok"]
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_during_provisioning_waits_without_spending_attempts() {
    let target = ScimTarget::start().await;
    let disk = SmallDisk::mount(16);
    let keys = tempfile::tempdir().expect("key dir");
    let log = keys.path().join("hub.log");
    let (db, hub, client) = start_hub(&disk, &keys, &log).await;
    let count = 400;
    let app_id = staff_with_an_app(&client, &target, count).await;
    start_provisioning(&client).await;

    // The disk fills in the middle of provisioning and stays full for a while.
    provisioned_at_least(&target, 60).await;
    disk.fill();
    eventually(30, "readyz to report not ready", || async {
        (client.ready().await.0 == 503).then_some(())
    })
    .await;
    let during = target.users().await.len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    disk.free();

    let store = SqlStore::connect(&db.url).await.expect("open the store");
    drained(&store, &app_id, 120).await;
    eventually(30, "readyz to report ready", || async {
        (client.ready().await.0 == 200).then_some(())
    })
    .await;
    assert!(
        during < count,
        "the disk filled before provisioning ended ({during} of {count})"
    );
    let errors = client.storage_errors("full").await;
    assert!(errors > 0.0, "the engine met the full store");
    eprintln!("provisioning: disk full at {during} of {count} users; {errors} storage errors");

    assert_provisioned_exactly(&target, &store, count).await;
    let most = store
        .query_scalar("SELECT MAX(attempts) FROM sync_jobs WHERE subject_kind = 'user'")
        .await
        .expect("attempts");
    assert_eq!(most, 1, "the full store spent no job's attempt");
    let failures = store
        .query_scalar(&format!("SELECT consecutive_failures FROM apps WHERE id = '{app_id}'"))
        .await
        .expect("app");
    assert_eq!(failures, 0, "the full store counted no failure against the app");
    let (_, app) = client
        .admin_call(reqwest::Method::GET, &format!("/api/v1/apps/{app_id}"), None)
        .await;
    assert_eq!(app["state"], "active", "{app}");
    let accounts = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}' AND state = 'active'"
        ))
        .await
        .expect("accounts");
    assert_eq!(accounts, i64::try_from(count).unwrap());
    store.close().await;
    assert!(hub.stop().success());
    assert_one_line_each(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_and_restarted_during_provisioning() {
    provisio::install_crypto_provider();
    let target = ScimTarget::start().await;
    let server = PrivatePostgres::start();
    let admin_store = SqlStore::connect(&server.url("postgres")).await.expect("connect");
    admin_store
        .execute_raw("CREATE DATABASE provisio")
        .await
        .expect("create database");
    admin_store.close().await;
    let url = server.url("provisio");
    let flags = vec!["--database-url".to_owned(), url.clone()];
    let keys = tempfile::tempdir().expect("key dir");
    let log = keys.path().join("hub.log");
    let db = TestDatabase {
        url: url.clone(),
        config: provisio::config::DatabaseConfig::Url(secrecy::SecretString::from(url.clone())),
        data_dir: None,
    };
    let admin = db.admin_token();
    let hub = HubProcess::spawn_logging(&flags, &keys.path().join("secret.key"), &[], &log).await;
    let client = Arc::new(Client {
        http: reqwest::Client::new(),
        base: hub.base_url.clone(),
        admin,
        scim: String::new(),
    });
    let count = 1000;
    let app_id = staff_with_an_app(&client, &target, count).await;
    start_provisioning(&client).await;

    // The hub's server connections are terminated while it provisions.
    provisioned_at_least(&target, 100).await;
    let cutter = SqlStore::connect(&server.url("postgres")).await.expect("connect");
    let cut = cutter
        .query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
             WHERE datname = 'provisio' AND pid <> pg_backend_pid()) t WHERE done",
        )
        .await
        .expect("terminate");
    assert!(cut > 0, "the hub had server connections to cut");
    cutter.close().await;

    // Then the server restarts while provisioning goes on.
    eventually(60, "provisioning to go on after the cut", || async {
        (target.users().await.len() >= 350).then_some(())
    })
    .await;
    server.stop_server();
    let (status, body) = client
        .admin_call(reqwest::Method::GET, "/api/v1/users?limit=1", None)
        .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "an honest answer while the database is down: {body}"
    );
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    assert_eq!(client.ready().await.0, 503, "not ready while the database is down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.start_server();

    eventually(60, "the API to answer again", || async {
        let (status, _) = client
            .admin_call(reqwest::Method::GET, "/api/v1/users?limit=1", None)
            .await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        client.create("after-restart", false).await.status,
        201,
        "writes work again"
    );
    let store = SqlStore::connect(&url).await.expect("open the store");
    drained(&store, &app_id, 180).await;
    assert_provisioned_exactly(&target, &store, count).await;
    // Recovery is declared after a quiet spell without failures (StoreHealth::QUIET), which a
    // fast drain can finish inside of: readiness must come back, not at once.
    eventually(15, "ready again", || async {
        (client.ready().await.0 == 200).then_some(())
    })
    .await;
    assert!(
        client.storage_errors("unreachable").await > 0.0,
        "the metric counts the outage"
    );
    store.close().await;
    assert!(hub.stop().success());
    // The cut and the restart are separate outages (or one, when they come close together):
    // each is logged once when it starts and once when it ends.
    let text = std::fs::read_to_string(&log).expect("hub log");
    let started = text.matches("the database cannot be reached").count();
    let ended = text.matches("the store takes writes again").count();
    assert!(
        started >= 1 && started == ended,
        "one line per outage start and end:\n{text}"
    );
}
