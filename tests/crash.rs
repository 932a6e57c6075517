//! Crashes and several nodes: real `provisio serve` processes killed with SIGKILL mid-run (also
//! while finished jobs are being stored in batches and directory writes share transactions), and
//! three nodes sharing one PostgreSQL database, against scim2-server.

mod common;

use common::referee::ScimTarget;
use common::{Backend, HubProcess, TestDatabase, drained, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

backend_tests!(
    killed_mid_run_converges_exactly,
    killed_while_finishing_jobs_and_taking_writes
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_one_dying() {
    three_nodes(Backend::Postgres).await;
}

/// The hub's directory write transactions and the writes they held, from `/metrics`.
async fn write_batches(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let read = |name: &'static str| async move {
        let value = common::metric(http, base, name).await;
        value.unwrap_or_else(|| panic!("{name} in /metrics")) as u64
    };
    (
        read("provisio_directory_write_batches_total").await,
        read("provisio_directory_writes_total").await,
    )
}

struct Admin {
    http: reqwest::Client,
    token: String,
}

impl Admin {
    async fn call(&self, base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Admin {
    /// Like `call`, but a request the server never answered (it was killed) is `None`.
    async fn try_call(&self, base: &str, method: reqwest::Method, path: &str, body: Value) -> Option<StatusCode> {
        let response = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = StatusCode::from_u16(response.status().as_u16()).ok()?;
        // The answer is complete only once its body has arrived.
        response.bytes().await.ok()?;
        Some(status)
    }
}

/// Creates the app, a group and `count` members through one node's API.
async fn seed(admin: &Arc<Admin>, base: &str, target: &ScimTarget, count: usize) -> String {
    let (status, app) = admin
        .call(
            base,
            reqwest::Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "App", "base_url": target.base_url, "token": target.token})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().unwrap().to_owned();
    eventually(30, "the connection check", || async {
        let (_, app) = admin
            .call(base, reqwest::Method::GET, &format!("/api/v1/apps/{app_id}"), None)
            .await;
        (app["connection_status"] == "ok").then_some(())
    })
    .await;
    admin
        .call(
            base,
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Staff"})),
        )
        .await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (admin, base) = (admin.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(8) {
                let name = format!("c{i:05}");
                let (status, body) = admin
                    .call(
                        &base,
                        reqwest::Method::POST,
                        "/api/v1/users",
                        Some(json!({"username": name, "family_name": name, "email": format!("{name}@example.com")})),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let (status, _) = admin
                    .call(
                        &base,
                        reqwest::Method::PUT,
                        &format!("/api/v1/groups/Staff/members/{name}"),
                        None,
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.expect("seeding");
    }
    app_id
}

async fn assert_exact(target: &ScimTarget, count: usize, active: bool) {
    let users = target.users().await;
    assert_eq!(users.len(), count, "exactly the desired users");
    let mut names: Vec<&str> = users.iter().map(|u| u["userName"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "no duplicates");
    for user in &users {
        let name = user["userName"].as_str().unwrap();
        assert_eq!(user["name"]["familyName"], name);
        assert_eq!(user["emails"][0]["value"], format!("{name}@example.com"));
        assert_eq!(user["active"], active, "{user}");
    }
}

/// Kills `hub` with SIGKILL after a pseudo-random delay, three times, restarting it each time.
async fn kill_three_times(mut hub: HubProcess, db: &TestDatabase, key: &std::path::Path, seed: &mut u64) -> HubProcess {
    for _ in 0..3 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(600 + (*seed >> 33) % 2000);
        tokio::time::sleep(delay).await;
        hub.kill();
        hub = HubProcess::spawn(&db.flags(), key, &["--job-lease", "2"]).await;
    }
    hub
}

async fn killed_mid_run_converges_exactly(backend: Backend) {
    let target = ScimTarget::start().await;
    let db = TestDatabase::new(backend).await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("secret.key");
    let hub = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    let admin = Arc::new(Admin {
        http: reqwest::Client::new(),
        token: db.admin_token(),
    });
    let count = 2000;
    let app_id = seed(&admin, &hub.base_url, &target, count).await;
    let store = db.store().await;
    let mut seed_value = 0x2545_f491_4f6c_dd1d_u64;

    // Provisioning, killed three times at random points.
    admin
        .call(
            &hub.base_url,
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "App", "group": "Staff"})),
        )
        .await;
    let hub = kill_three_times(hub, &db, &key, &mut seed_value).await;
    drained(&store, &app_id, 300).await;
    assert_exact(&target, count, true).await;
    let created = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}' AND state = 'active'"
        ))
        .await
        .unwrap();
    assert_eq!(created, i64::try_from(count).unwrap());

    // Mass deprovisioning, killed three times too.
    let (_, policies) = admin
        .call(&hub.base_url, reqwest::Method::GET, "/api/v1/policies", None)
        .await;
    let policy = policies[0]["id"].as_str().unwrap().to_owned();
    admin
        .call(
            &hub.base_url,
            reqwest::Method::DELETE,
            &format!("/api/v1/policies/{policy}"),
            None,
        )
        .await;
    let hub = kill_three_times(hub, &db, &key, &mut seed_value).await;
    drained(&store, &app_id, 300).await;
    assert_exact(&target, count, false).await;
    assert!(hub.stop().success());
}

async fn three_nodes(backend: Backend) {
    let target = ScimTarget::start().await;
    let db = TestDatabase::new(backend).await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("secret.key");
    let first = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    let admin = Arc::new(Admin {
        http: reqwest::Client::new(),
        token: db.admin_token(),
    });
    let count = 3000;
    let app_id = seed(&admin, &first.base_url, &target, count).await;
    let second = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    let third = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    let store = db.store().await;
    admin
        .call(
            &second.base_url,
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "App", "group": "Staff"})),
        )
        .await;
    // Let all three work, then kill one mid-run.
    eventually(60, "provisioning to be under way", || async {
        let done = store
            .query_scalar(&format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app_id}'"))
            .await
            .ok()?;
        (done > 300).then_some(())
    })
    .await;
    second.kill();
    drained(&store, &app_id, 300).await;
    assert_exact(&target, count, true).await;
    // Each user was created once: never two creates for one user, whatever node did it.
    let twice = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT subject_id FROM provisioning_reports WHERE app_id = '{app_id}' AND operation = 'create' \
             AND outcome = 'success' GROUP BY subject_id HAVING COUNT(*) > 1) doubled"
        ))
        .await
        .unwrap();
    assert_eq!(twice, 0);
    let linked = store
        .query_scalar(&format!(
            "SELECT COUNT(DISTINCT subject_id) FROM provisioning_reports WHERE app_id = '{app_id}' AND operation IN ('create', 'adopt') AND outcome = 'success'"
        ))
        .await
        .unwrap();
    assert_eq!(
        linked,
        i64::try_from(count).unwrap(),
        "every account's creation (or adoption after a lost answer) is on record"
    );
    // The work was shared: jobs were finished by all three nodes (a finished job keeps its owner).
    let nodes = store
        .query_scalar(&format!(
            "SELECT COUNT(DISTINCT substr(lease_owner, 1, 37)) FROM sync_jobs WHERE app_id = '{app_id}' AND subject_kind = 'user'"
        ))
        .await
        .unwrap();
    assert_eq!(nodes, 3, "jobs finished by each node");
    assert!(first.stop().success());
    assert!(third.stop().success());
}

/// SIGKILL while the engine stores finished jobs in batches (jobs are running when the hub dies)
/// and while four writers create users through the API: every user whose create was answered
/// 201 is stored with exactly one change event, the target ends exact, and no user was created
/// in the target twice.
async fn killed_while_finishing_jobs_and_taking_writes(backend: Backend) {
    let target = ScimTarget::start().await;
    let db = TestDatabase::new(backend).await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("secret.key");
    let hub = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    let admin = Arc::new(Admin {
        http: reqwest::Client::new(),
        token: db.admin_token(),
    });
    let count = 1000;
    let app_id = seed(&admin, &hub.base_url, &target, count).await;
    let store = db.store().await;
    admin
        .call(
            &hub.base_url,
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "App", "group": "Staff"})),
        )
        .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (admin, base, stop) = (admin.clone(), hub.base_url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let name = format!("w{writer}-{i:05}");
                i += 1;
                let answer = admin
                    .try_call(&base, reqwest::Method::POST, "/api/v1/users", json!({"username": name}))
                    .await;
                match answer {
                    Some(StatusCode::CREATED) => acknowledged.push(name),
                    Some(other) => panic!("a create was answered {other}"),
                    None => break,
                }
            }
            acknowledged
        }));
    }
    // Kill while provisioning is under way: some jobs done, some running.
    eventually(120, "provisioning under way", || async {
        let done = store
            .query_scalar(&format!(
                "SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app_id}' AND status = 'done' AND subject_kind = 'user'"
            ))
            .await
            .ok()?;
        let running = store
            .query_scalar(&format!(
                "SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app_id}' AND status = 'running'"
            ))
            .await
            .ok()?;
        (done >= 100 && running > 0).then_some(())
    })
    .await;
    // The writers' creates are sharing transactions (group commit) when the hub is killed.
    let (batches, writes) = write_batches(&admin.http, &hub.base_url).await;
    assert!(writes > batches, "{writes} directory writes in {batches} transactions");
    hub.kill();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    assert!(!acknowledged.is_empty(), "the writers were answered before the kill");
    let hub = HubProcess::spawn(&db.flags(), &key, &["--job-lease", "2"]).await;
    for name in &acknowledged {
        let (status, _) = admin
            .call(
                &hub.base_url,
                reqwest::Method::GET,
                &format!("/api/v1/users/{name}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name} was acknowledged, so it is stored");
    }
    let users = store.query_scalar("SELECT COUNT(*) FROM users").await.unwrap();
    let created_events = store
        .query_scalar("SELECT COUNT(*) FROM change_log WHERE entity = 'user' AND operation = 'created'")
        .await
        .unwrap();
    assert_eq!(
        created_events, users,
        "one change event per stored user, none for a lost one"
    );
    let events = store.query_scalar("SELECT COUNT(*) FROM change_log").await.unwrap();
    let last = store.query_scalar("SELECT MAX(seq) FROM change_log").await.unwrap();
    assert_eq!(events, last, "the change sequence has no gap after the kill");
    drained(&store, &app_id, 300).await;
    assert_exact(&target, count, true).await;
    let twice = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT subject_id FROM provisioning_reports WHERE app_id = '{app_id}' \
             AND operation = 'create' AND outcome = 'success' GROUP BY subject_id HAVING COUNT(*) > 1) t"
        ))
        .await
        .unwrap();
    assert_eq!(twice, 0, "no user was created in the target twice");
    assert!(hub.stop().success());
}
