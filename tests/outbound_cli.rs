//! The outbound commands of the real binary (`apps`, `policies`, `provision`, `sync`), and a
//! `provisio serve` process whose logs and files must never contain an app's bearer token.

mod common;

use common::referee::ScimTarget;
use common::{Backend, TestHub, eventually, ok};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

backend_tests!(cli_provisioning);

async fn cli_provisioning(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", target.token)).unwrap();
    for name in ["title", "language", "timezone"] {
        ok(hub.cli(&["attributes", "create", name, "--type", "string"]));
    }
    let presets = ok(hub.cli(&["apps", "presets"]));
    assert!(
        presets.contains("monday") && presets.contains("title, language, timezone"),
        "{presets}"
    );
    ok(hub.cli(&[
        "apps",
        "create",
        "Monday",
        "--url",
        &target.base_url,
        "--token-file",
        &token_file.display().to_string(),
        "--preset",
        "monday",
    ]));
    let tested = ok(hub.cli(&["apps", "test", "Monday"]));
    assert!(
        tested
            .lines()
            .any(|l| l.starts_with("connection ") && l.trim_end().ends_with(" ok")),
        "{tested}"
    );
    assert!(!tested.contains(&target.token));

    ok(hub.cli(&["groups", "create", "Staff"]));
    ok(hub.cli(&["policies", "create", "--app", "Monday", "--group", "Staff"]));
    let policies = ok(hub.cli(&["policies", "list", "--app", "Monday"]));
    assert!(policies.contains("Monday for Staff"), "{policies}");
    let row = policies.lines().find(|l| l.starts_with("Monday for Staff")).unwrap();
    let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(&cells[1..3], ["Monday", "Staff"], "app and group by name: {policies}");
    ok(hub.cli(&[
        "users",
        "add",
        "Alice",
        "--email",
        "Alice@Example.com",
        "--display-name",
        "Alice Smith",
        "--attr",
        "title=CTO",
    ]));
    let preview: Value = serde_json::from_str(&ok(hub.cli(&["apps", "preview", "Monday", "alice"]))).unwrap();
    assert_eq!(preview["userName"], "alice");
    assert_eq!(preview["title"], "CTO");

    // Provisioning a user the engine already provisioned finds nothing to do.
    let app_id = hub.get("/api/v1/apps/Monday").await["id"].as_str().unwrap().to_owned();
    ok(hub.cli(&["groups", "add-member", "Staff", "alice"]));
    hub.settle(&app_id).await;
    let provisioned = ok(hub.cli(&["provision", "--app", "Monday", "--user", "alice"]));
    assert!(provisioned.contains("nothing to do"), "{provisioned}");
    assert!(target.user("alice").await.is_some());

    // A change while the app is disabled shows in the dry run with its diff, then a sync applies it.
    ok(hub.cli(&["apps", "update", "Monday", "--enabled", "false"]));
    ok(hub.cli(&["users", "update", "alice", "--attr", "title=CEO"]));
    let plan = ok(hub.cli(&["sync", "--app", "Monday", "--dry-run"]));
    assert!(
        plan.contains("update") && plan.contains("title: \"CTO\" -> \"CEO\""),
        "{plan}"
    );
    assert_eq!(
        target.user("alice").await.unwrap()["title"],
        "CTO",
        "a dry run changes nothing"
    );
    let planned = hub.get("/api/v1/reports?user=alice&outcome=dry_run").await;
    assert_eq!(
        planned["items"][0]["operation"], "update",
        "the plan is on record: {planned}"
    );
    assert_eq!(
        planned["items"][0]["diff"]["title"],
        json!({"old": "CTO", "new": "CEO"})
    );
    ok(hub.cli(&["apps", "update", "Monday", "--enabled", "true"]));
    let synced = ok(hub.cli(&["sync", "--app", "Monday"]));
    // alice, and the Staff team (the Monday.com preset pushes teams).
    assert!(synced.contains("2 done, 0 failed"), "{synced}");
    eventually(20, "the new title to arrive", || async {
        (target.user("alice").await?["title"] == "CEO").then_some(())
    })
    .await;
    let accounts = ok(hub.cli(&["apps", "accounts", "Monday"]));
    assert!(accounts.contains("alice") && accounts.contains("active"), "{accounts}");

    // Errors: unknown app, unreadable mapping, no token and no terminal.
    assert_eq!(hub.cli(&["apps", "show", "Nope"]).status.code(), Some(4));
    assert_eq!(
        hub.cli(&["apps", "update", "Monday", "--mapping-file", "/nonexistent.json"])
            .status
            .code(),
        Some(2)
    );
    let no_token = hub.cli(&["apps", "create", "Other", "--url", &target.base_url]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("--token-file"));

    // A policy is deleted by name; an app only with --yes off a terminal.
    ok(hub.cli(&["policies", "delete", "monday for staff"]));
    assert!(!ok(hub.cli(&["policies", "list"])).contains("Monday for Staff"));
    let refused = hub.cli(&["apps", "delete", "Monday"]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("Remove app 'Monday'") && said.contains("accounts stay in the app"),
        "{said}"
    );
    ok(hub.cli(&["apps", "delete", "Monday", "--yes"]));
    assert_eq!(hub.cli(&["apps", "show", "Monday"]).status.code(), Some(4));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tokens_stay_out_of_logs_and_files() {
    let target = ScimTarget::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::tied_to_test(&mut Command::new(env!("CARGO_BIN_EXE_provisio")))
        .args([
            "serve",
            "--data-dir",
            &data.path().display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "trace",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = common::drain(child.stderr.take().unwrap());
    let _stdout = common::drain(child.stdout.take().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(30, "serve to answer", || async {
        http.get(format!("{base}/healthz")).send().await.ok()
    })
    .await;
    let admin = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["admin-token", "--data-dir", &data.path().display().to_string()])
        .output()
        .unwrap();
    let admin = String::from_utf8_lossy(&admin.stdout).trim().to_owned();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    call(
        reqwest::Method::POST,
        "/api/v1/apps",
        json!({"name": "T", "base_url": target.base_url, "token": target.token}),
    )
    .await
    .unwrap();
    // A second app whose token the target refuses: the refusal is logged and reported, the token is not.
    call(
        reqwest::Method::POST,
        "/api/v1/apps",
        json!({"name": "Bad", "base_url": target.base_url, "token": "sekrit-wrong-token-4711"}),
    )
    .await
    .unwrap();
    call(reqwest::Method::POST, "/api/v1/groups", json!({"name": "G"}))
        .await
        .unwrap();
    call(reqwest::Method::POST, "/api/v1/users", json!({"username": "u1"}))
        .await
        .unwrap();
    call(reqwest::Method::PUT, "/api/v1/groups/G/members/u1", json!(null))
        .await
        .unwrap();
    call(
        reqwest::Method::POST,
        "/api/v1/policies",
        json!({"app": "T", "group": "G"}),
    )
    .await
    .unwrap();
    call(
        reqwest::Method::POST,
        "/api/v1/policies",
        json!({"app": "Bad", "group": "G"}),
    )
    .await
    .unwrap();
    eventually(30, "u1 to be provisioned", || async { target.user("u1").await }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let logs = stderr.join().unwrap();
    assert!(logs.contains("provisio"), "logs were written");
    for secret in [target.token.as_str(), "sekrit-wrong-token-4711"] {
        assert!(!logs.contains(secret), "a token is in the log");
        let hits = common::files_containing(data.path(), secret);
        assert!(hits.is_empty(), "a token is in {hits:?}");
    }
}
