//! The provisioning report: the records the engine writes during the product guide's walkthrough,
//! searching them by every filter, paging, malformed searches, retention, and secrets kept out.

mod common;

use common::referee::{Faults, Proxy, ScimTarget};
use common::{Backend, TestHub};
use provisio::domain::job::{Operation, Outcome, Report, SubjectKind};
use provisio::store::ReportStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

backend_tests!(
    no_secret_in_any_record_or_export,
    records_of_the_walkthrough,
    search_filters_and_paging,
    malformed_searches_are_refused,
    retention_deletes_in_batches,
    cli_reports_and_timeline
);

fn summary(records: &[Value]) -> Vec<(String, String, i64)> {
    records
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r["attempt"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A user's records, oldest first.
async fn records_of(hub: &TestHub, user: &str) -> Vec<Value> {
    let page = hub
        .get(&format!("/api/v1/reports?user={user}&kind=user&limit=1000"))
        .await;
    let mut items = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

async fn records_of_the_walkthrough(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    for name in ["title", "language", "timezone"] {
        hub.post("/api/v1/attributes", json!({"name": name, "type": "string"}))
            .await;
    }
    let app = hub
        // Teams are pushed only from the step that switches group push on.
        .connect_app(
            json!({"name": "Monday", "base_url": proxy.base_url, "token": target.token, "preset": "monday",
                            "features": {"push_groups": false}}),
        )
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "Monday", "group": "Staff"}))
        .await;
    let alice = hub
        .post(
            "/api/v1/users",
            json!({"username": "alice", "email": "alice@example.com", "attributes": {"title": "Eng"}}),
        )
        .await;
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/alice", None).await;
    hub.settle(&app_id).await;

    // The target fails the next request; the engine retries and succeeds.
    proxy.set(Faults {
        fail_next: 1,
        fail_detail: "the accounts database is on fire".into(),
        ..Default::default()
    });
    hub.call(
        Method::PATCH,
        "/api/v1/users/alice",
        Some(json!({"attributes": {"title": "Lead"}})),
    )
    .await;
    hub.settle(&app_id).await;
    hub.call(Method::DELETE, "/api/v1/groups/Staff/members/alice", None)
        .await;
    hub.settle(&app_id).await;
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/alice", None).await;
    hub.settle(&app_id).await;
    hub.call(
        Method::PATCH,
        &format!("/api/v1/apps/{app_id}"),
        Some(json!({"deprovision": "delete", "features": {"push_groups": true}})),
    )
    .await;
    hub.settle(&app_id).await;
    hub.call(Method::DELETE, "/api/v1/users/alice", None).await;
    hub.settle(&app_id).await;

    let records = records_of(&hub, "alice").await;
    assert_eq!(
        summary(&records),
        [
            ("create".into(), "success".into(), 1),
            ("update".into(), "retrying".into(), 1),
            ("update".into(), "success".into(), 2),
            ("deactivate".into(), "success".into(), 1),
            ("reactivate".into(), "success".into(), 1),
            ("delete".into(), "success".into(), 1),
        ]
    );
    // Every record names the user, the app and the request.
    for record in &records {
        assert_eq!(record["username"], "alice");
        assert_eq!(record["email"], "alice@example.com");
        assert_eq!(record["subject_id"], alice_id.as_str());
        assert_eq!(record["app_name"], "Monday");
        assert!(record["target_id"].is_string());
        assert!(record["http_method"].is_string() && record["http_path"].is_string());
        assert!(record["cause"].as_str().unwrap().starts_with("change:"));
    }
    // The failure carries the target's own words; the retry shares its correlation id and cause.
    assert_eq!(records[1]["http_status"], 500);
    assert!(
        records[1]["message"]
            .as_str()
            .unwrap()
            .contains("the accounts database is on fire"),
        "{}",
        records[1]
    );
    assert_eq!(records[1]["correlation_id"], records[2]["correlation_id"]);
    assert_ne!(records[0]["correlation_id"], records[1]["correlation_id"]);
    assert_eq!(records[1]["cause"], records[2]["cause"]);
    // The cause is the change that made it: alice's update in the change log.
    let seq: i64 = records[1]["cause"]
        .as_str()
        .unwrap()
        .trim_start_matches("change:")
        .parse()
        .unwrap();
    let change = hub.get(&format!("/api/v1/changes?after={}&limit=1", seq - 1)).await[0].clone();
    assert_eq!(
        (change["entity_id"].as_str(), change["operation"].as_str()),
        (Some(alice_id.as_str()), Some("updated"))
    );
    // The pushed diff names the attribute with its old and new value; the body sent is kept.
    assert_eq!(records[2]["diff"]["title"], json!({"old": "Eng", "new": "Lead"}));
    assert!(records[2]["request_body"].as_str().unwrap().contains("Lead"));
    assert_eq!(records[0]["diff"]["userName"], json!({"old": null, "new": "alice"}));
    // The group's own records.
    let groups = hub.get("/api/v1/reports?kind=group&limit=100").await;
    let operations: Vec<&str> = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["group_create", "membership_remove"]);
    hub.stop().await;
}

fn record(app: (Uuid, &str), user: usize, at: OffsetDateTime, operation: Operation, outcome: Outcome) -> Report {
    Report {
        id: Uuid::now_v7(),
        started_at: at,
        duration_ms: 5,
        app_id: app.0,
        app_name: app.1.to_owned(),
        subject_kind: SubjectKind::User,
        subject_id: format!("00000000-0000-0000-0000-{user:012}"),
        username: Some(format!("User{user:03}")),
        email: Some(format!("user{user:03}@Example.com")),
        target_id: Some(format!("t-{user}")),
        operation,
        outcome,
        attempt: 1,
        http_method: Some("POST".into()),
        http_path: Some("/Users".into()),
        http_status: Some(201),
        diff: None,
        message: None,
        request_body: None,
        response_body: None,
        correlation_id: Uuid::now_v7().to_string(),
        cause: "test".into(),
    }
}

/// Two apps (their failing connection checks add two records of kind `connection`, which the
/// searches below leave out with `kind=user`); 20 users; one record per user, app and day for ten days.
async fn seeded(hub: &TestHub) -> (Uuid, Uuid, OffsetDateTime) {
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta"] {
        let (status, app) = hub
            .call(
                Method::POST,
                "/api/v1/apps",
                Some(json!({"name": name, "base_url": "http://127.0.0.1:9/v2", "token": "t", "enabled": false})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        ids.push(Uuid::parse_str(app["id"].as_str().unwrap()).unwrap());
    }
    let now = provisio::domain::now();
    for day in 0..10 {
        for user in 0..20 {
            for (i, app) in [(ids[0], "Alpha"), (ids[1], "Beta")].into_iter().enumerate() {
                let outcome = if user % 5 == 0 && i == 1 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                let operation = if day == 9 { Operation::Create } else { Operation::Update };
                let at = now - Duration::days(day) - Duration::minutes(i64::try_from(user * 2 + i).unwrap() + 1);
                hub.store
                    .insert_report(&record(app, user, at, operation, outcome))
                    .await
                    .unwrap();
            }
        }
    }
    (ids[0], ids[1], now)
}

async fn count_all(hub: &TestHub, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/reports?kind=user&{query}&limit=7&cursor={c}"),
            None => format!("/api/v1/reports?kind=user&{query}&limit=7"),
        };
        let page = hub.get(&path).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

async fn search_filters_and_paging(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (alpha, _beta, now) = seeded(&hub).await;
    // No filter: everything, newest first, each record once across pages.
    let all = count_all(&hub, "since=365d").await;
    assert_eq!(all.len(), 400);
    let times: Vec<&str> = all.iter().map(|r| r["started_at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400, "no record twice");
    // Time spans.
    assert_eq!(count_all(&hub, "since=24h").await.len(), 40);
    assert_eq!(count_all(&hub, "since=3d").await.len(), 120);
    let from = (now - Duration::days(5) - Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let to = (now - Duration::days(3) - Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(count_all(&hub, &format!("from={from}&to={to}")).await.len(), 80);
    // User identifiers: username and email regardless of case, directory id, target id; exact and prefix.
    assert_eq!(count_all(&hub, "user=user007").await.len(), 20);
    assert_eq!(count_all(&hub, "user=USER007%40example.com").await.len(), 20);
    assert_eq!(
        count_all(&hub, "user=00000000-0000-0000-0000-000000000007").await.len(),
        20
    );
    assert_eq!(count_all(&hub, "user=t-7").await.len(), 20);
    assert_eq!(count_all(&hub, "user=user00&match=prefix").await.len(), 200);
    assert_eq!(count_all(&hub, "user=user0").await.len(), 0, "exact by default");
    // App, outcome, operation and their combination.
    assert_eq!(count_all(&hub, "app=alpha").await.len(), 200);
    assert_eq!(count_all(&hub, &format!("app={alpha}")).await.len(), 200);
    assert_eq!(count_all(&hub, "outcome=failure").await.len(), 40);
    assert_eq!(count_all(&hub, "operation=create").await.len(), 40);
    let combined = count_all(&hub, "user=user005&app=Beta&since=30d&outcome=failure").await;
    assert_eq!(combined.len(), 10);
    assert!(
        combined
            .iter()
            .all(|r| r["username"] == "User005" && r["app_name"] == "Beta" && r["outcome"] == "failure")
    );
    assert_eq!(count_all(&hub, "user=user005&app=Alpha&since=24h").await.len(), 1);
    hub.stop().await;
}

async fn malformed_searches_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    seeded(&hub).await;
    for query in [
        "from=yesterday",
        "to=2026-13-40T00:00:00Z",
        "since=7w",
        "since=-1d",
        "app=NoSuchApp",
        "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
        "since=7d&from=2026-11-01T00:00:00Z",
        "outcome=exploded",
        "operation=teleport",
        "kind=robot",
        "match=fuzzy&user=x",
        "user=",
        "cursor=not-a-cursor",
        "limit=lots",
        "colour=blue",
    ] {
        let (status, body) = hub.call(Method::GET, &format!("/api/v1/reports?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body.get("items").is_none(), "no results with an error");
    }
    hub.stop().await;
}

async fn retention_deletes_in_batches(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let app = (Uuid::now_v7(), "Old");
    let now = provisio::domain::now();
    for i in 0..25 {
        hub.store
            .insert_report(&record(
                app,
                i,
                now - Duration::days(200) - Duration::minutes(i as i64),
                Operation::Create,
                Outcome::Success,
            ))
            .await
            .unwrap();
    }
    for i in 0..5 {
        hub.store
            .insert_report(&record(
                app,
                i,
                now - Duration::days(10),
                Operation::Update,
                Outcome::Success,
            ))
            .await
            .unwrap();
    }
    let reports = provisio::service::ReportService::new(hub.store.clone());
    let deleted = reports.enforce_retention(Duration::days(180), 7).await.unwrap();
    assert_eq!(deleted, 25);
    assert_eq!(
        hub.store
            .query_scalar("SELECT COUNT(*) FROM provisioning_reports")
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        hub.store
            .delete_reports_before(now - Duration::days(180), 7)
            .await
            .unwrap(),
        0
    );
    hub.stop().await;
}

async fn cli_reports_and_timeline(backend: Backend) {
    let hub = TestHub::start(backend).await;
    seeded(&hub).await;
    let table = hub.cli(&["reports", "--user", "user003", "--app", "Alpha", "--since", "30d"]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(text.lines().count(), 11, "header and ten records: {text}");
    let csv = hub.cli(&["reports", "--user", "user003", "--csv", "--all", "--limit", "3"]);
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(csv.starts_with("started_at,duration_ms,app,"));
    assert_eq!(csv.lines().count(), 21);
    let json = hub.cli(&["reports", "--outcome", "failure", "--kind", "user", "--json", "--all"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 40);
    let bad = hub.cli(&["reports", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(3));

    // A user's timeline: directory changes, then what the apps were sent.
    hub.post("/api/v1/users", json!({"username": "tim"})).await;
    hub.call(Method::PATCH, "/api/v1/users/tim", Some(json!({"given_name": "Tim"})))
        .await;
    let timeline = hub.get("/api/v1/users/tim/timeline").await;
    let kinds: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated"]);
    let out = hub.cli(&["users", "timeline", "tim"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("user updated"));
    hub.stop().await;
}

/// Everything the store holds, as text: the raw files for SQLite, every row of every table for PostgreSQL.
async fn everything_stored(hub: &TestHub) -> String {
    let mut text = String::new();
    match &hub.db.data_dir {
        Some(dir) => {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                }
            }
        }
        None => {
            let tables = hub
                .store
                .query_texts("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .await
                .unwrap();
            assert!(tables.len() > 10, "{tables:?}");
            for table in tables {
                for row in hub
                    .store
                    .query_texts(&format!("SELECT t::text FROM \"{table}\" t"))
                    .await
                    .unwrap()
                {
                    text.push_str(&row);
                    text.push('\n');
                }
            }
        }
    }
    text
}

async fn no_secret_in_any_record_or_export(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    // Recognisable secrets: the app's bearer token (the target accepts any token through this
    // proxy path? no: use the real one, which is recognisable), a wrong token, the first admin's
    // passwords, an API token, and a password the mapping sends to the app.
    let first = provisio::service::AuthService::new(hub.store.clone())
        .bootstrap()
        .await
        .unwrap()
        .unwrap();
    let one_time = secrecy::ExposeSecret::expose_secret(&first.password).to_owned();
    let new_password = "new-admin-passphrase-SECRET-77";
    let (status, login) = hub
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": one_time, "new_password": new_password})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let api_secret = login["secret"].as_str().unwrap().to_owned();
    let app = hub
        .connect_app(
            json!({"name": "App", "base_url": proxy.base_url, "token": target.token, "mapping": [
            {"target": "userName", "source": {"attribute": "username"}},
            {"target": "password", "source": {"constant": "initial-password-SECRET-42"}},
            {"target": "active", "source": {"attribute": "active"}}]}),
        )
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post(
        "/api/v1/apps",
        json!({"name": "Wrong", "base_url": proxy.base_url, "token": "wrong-token-SECRET-13"}),
    )
    .await;
    hub.post("/api/v1/groups", json!({"name": "G"})).await;
    hub.post("/api/v1/policies", json!({"app": "App", "group": "G"})).await;
    hub.post("/api/v1/policies", json!({"app": "Wrong", "group": "G"}))
        .await;
    hub.post("/api/v1/users", json!({"username": "sam"})).await;
    hub.call(Method::PUT, "/api/v1/groups/G/members/sam", None).await;
    hub.settle(&app_id).await;
    common::eventually(20, "the wrong token to be refused", || async {
        (hub.get("/api/v1/apps/Wrong").await["connection_status"] == "failed").then_some(())
    })
    .await;
    assert!(target.user("sam").await.is_some());
    let records = hub.get("/api/v1/reports?limit=1000").await.to_string();
    assert!(
        records.contains("[redacted]"),
        "the password attribute is in the request body, redacted: {records}"
    );

    let exports = [
        records,
        String::from_utf8_lossy(&hub.cli(&["reports", "--all", "--csv"]).stdout).into_owned(),
        String::from_utf8_lossy(&hub.cli(&["reports", "--all", "--json"]).stdout).into_owned(),
        String::from_utf8_lossy(&hub.cli(&["users", "timeline", "sam", "--json"]).stdout).into_owned(),
        hub.get("/api/v1/changes?limit=10000").await.to_string(),
        hub.get("/api/v1/apps").await.to_string(),
    ];
    let stored = everything_stored(&hub).await;
    for secret in [
        target.token.as_str(),
        "wrong-token-SECRET-13",
        one_time.as_str(),
        new_password,
        api_secret.as_str(),
    ] {
        assert!(!stored.contains(secret), "a secret is stored in clear");
        for export in &exports {
            assert!(!export.contains(secret), "a secret is in an answer or export");
        }
    }
    // The mapping's constant is configuration (stored with the app), never part of a record or export.
    let report_rows = hub.store.query_texts("SELECT COALESCE(request_body, '') || COALESCE(response_body, '') || COALESCE(message, '') || COALESCE(diff, '') FROM provisioning_reports").await.unwrap();
    assert!(report_rows.iter().all(|r| !r.contains("initial-password-SECRET-42")));
    for export in &exports[..4] {
        assert!(!export.contains("initial-password-SECRET-42"));
    }
    hub.stop().await;
}
