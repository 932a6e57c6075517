//! Backups and restores with the real binary: a backup taken while 1,000 users are being
//! provisioned into scim2-server (SQLite and PostgreSQL) is restored into a fresh store; the
//! restored hub holds what the backup held, resumes the pending jobs, and the target ends exact.
//! Also: what a restore refuses, and scheduled backups that keep the newest few.

mod common;

use common::referee::ScimTarget;
use common::{Backend, HubProcess, TestDatabase, drained, eventually};
use provisio::store::SqlStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

backend_tests!(a_backup_taken_while_provisioning_restores_and_resumes);

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Runs the real binary with `args`; returns (success, stdout, stderr).
fn provisio(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(args)
        .output()
        .expect("run provisio");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn with_flags<'a>(command: &[&'a str], flags: &'a [String]) -> Vec<&'a str> {
    command
        .iter()
        .copied()
        .chain(flags.iter().map(String::as_str))
        .collect()
}

/// The sorted ids of a table's rows.
async fn ids(store: &SqlStore, table: &str, column: &str) -> Vec<String> {
    store
        .query_texts(&format!("SELECT CAST({column} AS TEXT) FROM {table} ORDER BY {column}"))
        .await
        .expect("ids")
}

const COUNT: usize = 1000;

async fn a_backup_taken_while_provisioning_restores_and_resumes(backend: Backend) {
    let target = ScimTarget::start().await;
    let db = TestDatabase::new(backend).await;
    let keys = tempfile::tempdir().expect("key directory");
    let key = keys.path().join("secret.key");
    let hub = HubProcess::spawn(&db.flags(), &key, &[]).await;
    let admin = Arc::new(Admin {
        http: reqwest::Client::new(),
        base: hub.base_url.clone(),
        token: db.admin_token(),
    });
    // 200 requests a second: provisioning 1,000 users takes several seconds, long enough to
    // take the backup in the middle of it.
    let (status, app) = admin
        .call(
            Method::POST,
            "/api/v1/apps",
            Some(
                json!({"name": "App", "base_url": target.base_url, "token": target.token,
                        "flow": {"concurrency": 4, "requests_per_second": 200}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().expect("app id").to_owned();
    eventually(30, "the connection check", || async {
        let (_, app) = admin.call(Method::GET, &format!("/api/v1/apps/{app_id}"), None).await;
        (app["connection_status"] == "ok").then_some(())
    })
    .await;
    admin
        .call(Method::POST, "/api/v1/groups", Some(json!({"name": "Staff"})))
        .await;
    let mut seeding = Vec::new();
    for worker in 0..8 {
        let admin = admin.clone();
        seeding.push(tokio::spawn(async move {
            for i in (worker..COUNT).step_by(8) {
                let name = format!("b{i:04}");
                let (status, body) = admin
                    .call(
                        Method::POST,
                        "/api/v1/users",
                        Some(json!({"username": name, "family_name": name, "email": format!("{name}@example.com")})),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let (status, _) = admin
                    .call(Method::PUT, &format!("/api/v1/groups/Staff/members/{name}"), None)
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for task in seeding {
        task.await.expect("seeding");
    }
    let (status, policy) = admin
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "App", "group": "Staff"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let store = db.store().await;
    eventually(60, "provisioning to be under way", || async {
        let done = store
            .query_scalar(&format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}'"))
            .await
            .ok()?;
        (done >= 100).then_some(())
    })
    .await;

    // The backup, while the hub provisions.
    let backups = tempfile::tempdir().expect("backup directory");
    let file = backups.path().join("hub.backup");
    let file_arg = file.display().to_string();
    let flags = db.flags();
    let (ok, out, err) = provisio(&with_flags(&["backup", "--to", &file_arg], &flags));
    assert!(ok, "backup: {out}{err}");
    assert!(out.contains("secret key file"), "the key is named: {out}");
    // A second backup to the same file is refused: a backup never overwrites.
    let (ok, _, err) = provisio(&with_flags(&["backup", "--to", &file_arg], &flags));
    assert!(!ok && err.contains("exists already"), "{err}");
    // A restore over the running hub's store is refused.
    let (ok, _, err) = provisio(&with_flags(&["restore", "--from", &file_arg, "--replace"], &flags));
    assert!(!ok, "a restore over a running hub must be refused");
    assert!(
        err.contains("is running on") || err.contains("holds tables already"),
        "{err}"
    );

    drained(&store, &app_id, 300).await;
    assert_exact(&target).await;
    assert!(hub.stop().success());

    // Restored into a fresh store.
    let fresh = TestDatabase::new(backend).await;
    let fresh_flags = fresh.flags();
    let (ok, out, err) = provisio(&with_flags(&["restore", "--from", &file_arg], &fresh_flags));
    assert!(ok, "restore: {out}{err}");
    let restored = fresh.store().await;
    // What the backup held: every user, the app, the policy; and, since it was taken mid-run,
    // some accounts, each with the report record of its creation, and jobs still to do.
    assert_eq!(ids(&restored, "users", "username").await.len(), COUNT);
    assert_eq!(ids(&restored, "apps", "id").await, vec![app_id.clone()]);
    assert_eq!(ids(&restored, "policies", "id").await.len(), 1);
    let accounts = restored
        .query_scalar(&format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}'"))
        .await
        .expect("accounts");
    assert!(
        accounts >= 100 && accounts < COUNT as i64,
        "taken mid-run: {accounts} accounts"
    );
    let unreported = restored
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM app_accounts a WHERE a.app_id = '{app_id}' AND NOT EXISTS \
             (SELECT 1 FROM provisioning_reports r WHERE r.app_id = a.app_id AND r.subject_id = a.user_id \
              AND r.operation IN ('create', 'adopt') AND r.outcome = 'success')"
        ))
        .await
        .expect("unreported accounts");
    assert_eq!(unreported, 0, "every account of the backup has its report record");
    let running = restored
        .query_scalar("SELECT COUNT(*) FROM sync_jobs WHERE status = 'running'")
        .await
        .expect("running jobs");
    assert_eq!(running, 0, "a restore gives back the claims of the hub it came from");
    let pending = restored
        .query_scalar("SELECT COUNT(*) FROM sync_jobs WHERE status = 'pending'")
        .await
        .expect("pending jobs");
    let undispatched = restored
        .query_scalar(
            "SELECT COUNT(*) FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound')",
        )
        .await
        .expect("undispatched changes");
    assert!(pending + undispatched > 0, "work was left to do at the backup");
    eprintln!(
        "{backend:?}: the backup held {accounts} accounts, {pending} pending jobs, {undispatched} changes to dispatch"
    );
    if backend == Backend::Sqlite {
        assert_same_rows(&file, &restored).await;
    }

    // The restored hub, with the key file kept beside the backup, resumes and ends exact: the
    // users the first hub created after the backup are adopted, not duplicated.
    let hub = HubProcess::spawn(&fresh_flags, &key, &[]).await;
    drained(&restored, &app_id, 300).await;
    assert_exact(&target).await;
    let active = restored
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}' AND state = 'active'"
        ))
        .await
        .expect("accounts");
    assert_eq!(active, COUNT as i64);
    assert!(hub.stop().success());
}

/// The restored store holds exactly the rows of the backup file (read from a copy of it).
async fn assert_same_rows(backup: &Path, restored: &SqlStore) {
    let dir = tempfile::tempdir().expect("copy directory");
    std::fs::copy(backup, dir.path().join("provisio.db")).expect("copy the backup");
    let copy = SqlStore::open_data_dir(dir.path()).await.expect("open the copy");
    for (table, column) in [
        ("users", "id"),
        ("groups", "id"),
        ("group_members", "user_id"),
        ("apps", "id"),
        ("policies", "id"),
        ("app_accounts", "user_id"),
        ("provisioning_reports", "id"),
        ("change_log", "seq"),
    ] {
        assert_eq!(
            ids(&copy, table, column).await,
            ids(restored, table, column).await,
            "{table} as in the backup"
        );
    }
    copy.close().await;
}

async fn assert_exact(target: &ScimTarget) {
    let users = target.users().await;
    let mut names: Vec<String> = users
        .iter()
        .map(|u| u["userName"].as_str().expect("userName").to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(users.len(), COUNT, "exactly the desired users");
    assert_eq!(names.len(), COUNT, "no duplicates");
    for user in &users {
        let name = user["userName"].as_str().expect("userName");
        assert_eq!(user["emails"][0]["value"], format!("{name}@example.com"));
    }
}

/// A restore refuses a store in place (without `--replace`), a backup with a newer schema and a
/// file that is no backup, and changes nothing when it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_refuses_what_it_must_and_changes_nothing() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    db.store().await.close().await;
    let flags = db.flags();
    let dir = tempfile::tempdir().expect("backup directory");
    let file = dir.path().join("hub.db");
    let file_arg = file.display().to_string();
    let (ok, out, err) = provisio(&with_flags(&["backup", "--to", &file_arg], &flags));
    assert!(ok, "{out}{err}");

    // A store in place stays unless --replace is given.
    let (ok, _, err) = provisio(&with_flags(&["restore", "--from", &file_arg], &flags));
    assert!(!ok && err.contains("--replace"), "{err}");

    // A backup whose schema is newer than this binary.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&file, &newer).expect("copy");
    let copy_dir = tempfile::tempdir().expect("copy directory");
    std::fs::copy(&newer, copy_dir.path().join("provisio.db")).expect("copy");
    let copy = SqlStore::open_data_dir(copy_dir.path()).await.expect("open");
    copy.execute_raw(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (9999, 'from the future', '2030-01-01 00:00:00', 1, X'00', 0)",
    )
    .await
    .expect("a future migration");
    copy.close().await;
    std::fs::remove_file(&newer).expect("remove");
    let (ok, out, err) = provisio(&[
        "backup",
        "--to",
        &newer.display().to_string(),
        "--data-dir",
        &copy_dir.path().display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let empty = tempfile::tempdir().expect("empty data directory");
    let empty_arg = empty.path().display().to_string();
    let (ok, _, err) = provisio(&[
        "restore",
        "--from",
        &newer.display().to_string(),
        "--data-dir",
        &empty_arg,
    ]);
    assert!(!ok && err.contains("newer than this binary"), "{err}");
    assert!(
        !empty.path().join("provisio.db").exists(),
        "a refused restore leaves no store"
    );

    // A file that is no backup.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a backup at all").expect("write");
    let (ok, _, err) = provisio(&[
        "restore",
        "--from",
        &junk.display().to_string(),
        "--data-dir",
        &empty_arg,
    ]);
    assert!(!ok && err.contains("is not a Provisio backup"), "{err}");
    assert!(!empty.path().join("provisio.db").exists());

    // With --replace, the store in place is replaced by the backup.
    let (ok, out, err) = provisio(&with_flags(&["restore", "--from", &file_arg, "--replace"], &flags));
    assert!(ok, "{out}{err}");
}

/// `serve --backup-dir` takes backups on its schedule and keeps the newest `--backup-keep`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let keys = tempfile::tempdir().expect("key directory");
    let backups = tempfile::tempdir().expect("backup directory");
    let dir_arg = backups.path().display().to_string();
    let hub = HubProcess::spawn(
        &db.flags(),
        &keys.path().join("secret.key"),
        &["--backup-dir", &dir_arg, "--backup-interval", "1", "--backup-keep", "2"],
    )
    .await;
    let listed = || {
        let mut names: Vec<String> = std::fs::read_dir(backups.path())
            .expect("read")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("provisio-") && n.ends_with(".db"))
            .collect();
        names.sort();
        names
    };
    let first = eventually(30, "two scheduled backups", || async {
        let names = listed();
        (names.len() == 2).then_some(names)
    })
    .await;
    let later = eventually(30, "a newer backup replacing the oldest", || async {
        let names = listed();
        (names.len() == 2 && names[0] != first[0]).then_some(names)
    })
    .await;
    assert!(!later.contains(&first[0]), "the oldest went: {later:?}");
    assert_eq!(later.len(), 2, "only the newest two are kept");
    assert!(hub.stop().success());
    // Each is a whole store a restore accepts.
    let restored = tempfile::tempdir().expect("restore directory");
    let (ok, out, err) = provisio(&[
        "restore",
        "--from",
        &backups.path().join(&later[1]).display().to_string(),
        "--data-dir",
        &restored.path().display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
}
