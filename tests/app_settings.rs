//! An app's configuration as an administrator edits it: features switched one at a time (API
//! PATCH and `--enable`/`--disable`), the attribute mapping edited row by row (API and
//! `apps mapping`), and the Monday.com preset (teams pushed and renamed in scim2-server,
//! `--create-attributes`). Both databases.

mod common;

use common::referee::ScimTarget;
use common::{Backend, TestHub, ok};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    features_change_one_at_a_time,
    mapping_rows_set_replace_and_remove,
    cli_features_and_mapping_rows,
    monday_preset_pushes_and_renames_teams,
);

/// Whether `apps show` printed `key` with `value`, whatever the alignment.
fn has_field(shown: &str, key: &str, value: &str) -> bool {
    shown.lines().any(|line| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(' ') && rest.trim() == value)
    })
}

/// An app on an address nothing answers: configuration only.
async fn offline_app(hub: &TestHub, name: &str) -> Value {
    hub.post(
        "/api/v1/apps",
        json!({"name": name, "base_url": "http://127.0.0.1:9/scim/v2", "token": "t0ken-for-tests"}),
    )
    .await
}

async fn features_change_one_at_a_time(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let app = offline_app(&hub, "Slack").await;
    assert_eq!(
        app["features"],
        json!({"create_users": true, "update_users": true, "deactivate_users": true, "delete_users": true, "push_groups": false, "import_users": false})
    );
    let (status, changed) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/Slack",
            Some(json!({"features": {"push_groups": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["features"],
        json!({"create_users": true, "update_users": true, "deactivate_users": true, "delete_users": true, "push_groups": true, "import_users": false}),
        "naming one feature leaves the others"
    );
    let (_, changed) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/Slack",
            Some(json!({"features": {"delete_users": false}})),
        )
        .await;
    assert_eq!(changed["features"]["push_groups"], true, "group push stays on");
    assert_eq!(changed["features"]["delete_users"], false);
    // Creating with some features names only those.
    let (status, created) = hub
        .call(
            Method::POST,
            "/api/v1/apps",
            Some(
                json!({"name": "GitHub", "base_url": "http://127.0.0.1:9/scim/v2", "token": "t0ken-for-tests",
                        "features": {"update_users": false}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["features"]["update_users"], false);
    assert_eq!(created["features"]["create_users"], true);
    // An unknown feature is refused and changes nothing.
    let before = hub.get("/api/v1/apps/Slack").await;
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/Slack",
            Some(json!({"features": {"teleport": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The configuration (not the connection check running beside it) is as it was.
    let after = hub.get("/api/v1/apps/Slack").await;
    for field in ["version", "features", "deprovision", "mapping", "updated_at"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    hub.stop().await;
}

async fn mapping_rows_set_replace_and_remove(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    offline_app(&hub, "Slack").await;
    let rows = hub.get("/api/v1/apps/Slack/mapping").await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0]["target"], "userName");
    assert_eq!(rows[0]["source"], "username");
    assert_eq!(rows[0]["required"], true);
    let count = rows.len();

    // Add a row, replace one (target named in another letter case), remove one.
    let put = |rule: Value| hub.call(Method::PUT, "/api/v1/apps/Slack/mapping/rules", Some(rule));
    let (status, app) = put(json!({"target": "title", "source": {"attribute": "title"}})).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["mapping"].as_array().unwrap().len(), count + 1);
    let (status, app) = put(json!({"target": "DISPLAYNAME", "source": {"upper": {"attribute": "display_name"}}})).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    let rows = hub.get("/api/v1/apps/Slack/mapping").await;
    let display = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == "DISPLAYNAME")
        .expect("replaced in place");
    assert_eq!(
        (display["source"].clone(), display["transform"].clone()),
        (json!("display_name"), json!("upper"))
    );
    assert_eq!(rows.as_array().unwrap().len(), count + 1, "replaced, not added");
    let (status, app) = hub
        .call(
            Method::DELETE,
            "/api/v1/apps/Slack/mapping/rules?target=name.formatted",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["mapping"].as_array().unwrap().len(), count);

    // Bad rows are refused with the reason; the mapping stays as it was.
    let before = hub.get("/api/v1/apps/Slack/mapping").await;
    for (rule, reason) in [
        (
            json!({"target": "nickName", "source": {"attribute": "shoe_size"}}),
            "shoe_size",
        ),
        (
            json!({"target": "emails[type eq \"work\"", "source": {"attribute": "email"}}),
            "target",
        ),
        (json!({"target": "emails", "source": {"attribute": "email"}}), "emails"),
    ] {
        let (status, body) = put(rule.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{rule}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{rule}: {body}"
        );
    }
    let (status, body) = hub
        .call(Method::DELETE, "/api/v1/apps/Slack/mapping/rules?target=userName", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("userName"),
        "{body}"
    );
    let (status, _) = hub
        .call(Method::DELETE, "/api/v1/apps/Slack/mapping/rules?target=nickName", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.get("/api/v1/apps/Slack/mapping").await,
        before,
        "refused rows change nothing"
    );
    hub.stop().await;
}

async fn cli_features_and_mapping_rows(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken-for-tests\n").unwrap();
    let shown = ok(hub.cli(&[
        "apps",
        "create",
        "Slack",
        "--url",
        "http://127.0.0.1:9/scim/v2",
        "--token-file",
        &token_file.display().to_string(),
        "--enable",
        "push_groups",
        "--disable",
        "delete",
        "--on-unassign",
        "nothing",
    ]));
    for (key, value) in [
        ("feature create", "on"),
        ("feature update", "on"),
        ("feature deactivate", "on"),
        ("feature delete", "off"),
        ("feature push_groups", "on"),
        ("on_unassign", "nothing"),
        ("on_delete", "deactivate"),
    ] {
        assert!(has_field(&shown, key, value), "{key} {value} in\n{shown}");
    }
    let shown = ok(hub.cli(&[
        "apps",
        "update",
        "Slack",
        "--disable",
        "push_groups",
        "--enable",
        "delete",
    ]));
    assert!(has_field(&shown, "feature push_groups", "off"), "{shown}");
    assert!(has_field(&shown, "feature delete", "on"), "{shown}");
    assert!(has_field(&shown, "feature create", "on"), "{shown}");
    assert!(
        has_field(&shown, "on_unassign", "nothing"),
        "deprovisioning untouched:\n{shown}"
    );
    let bad = hub.cli(&["apps", "update", "Slack", "--enable", "teleport"]);
    assert_eq!(bad.status.code(), Some(2), "an unknown feature is a usage error");

    let table = ok(hub.cli(&["apps", "mapping", "Slack"]));
    assert!(table.starts_with("TARGET"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("userName") && l.ends_with("yes")),
        "{table}"
    );
    let table = ok(hub.cli(&["apps", "mapping", "Slack", "set", "title", "constant:Engineer"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("title") && l.contains("constant:\"Engineer\"")),
        "{table}"
    );
    let table = ok(hub.cli(&[
        "apps",
        "mapping",
        "Slack",
        "set",
        "displayName",
        "display_name",
        "--transform",
        "lower",
    ]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("displayName") && l.contains("display_name") && l.contains("lower")),
        "{table}"
    );
    let table = ok(hub.cli(&["apps", "mapping", "Slack", "remove", "title"]));
    assert!(!table.lines().any(|l| l.starts_with("title")), "{table}");
    let before = hub.get("/api/v1/apps/Slack/mapping").await;
    let refused = hub.cli(&["apps", "mapping", "Slack", "set", "nickName", "shoe_size"]);
    assert_eq!(refused.status.code(), Some(3), "a bad row is refused as invalid");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("shoe_size"));
    assert_eq!(hub.get("/api/v1/apps/Slack/mapping").await, before);
    hub.stop().await;
}

async fn monday_preset_pushes_and_renames_teams(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    // Without the custom attributes the preset reads, the app is refused and names the way out.
    let body = json!({"name": "Monday", "base_url": target.base_url, "token": target.token, "preset": "monday"});
    let (status, refused) = hub.call(Method::POST, "/api/v1/apps", Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create-attributes"),
        "{refused}"
    );
    assert!(hub.get("/api/v1/attributes").await.as_array().unwrap().is_empty());
    let mut with_create = body.clone();
    with_create["create_attributes"] = json!(true);
    let app = hub.connect_app(with_create).await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    let attributes: Vec<String> = hub
        .get("/api/v1/attributes")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(attributes.len(), 3, "{attributes:?}");
    for name in ["title", "language", "timezone"] {
        assert!(attributes.iter().any(|a| a == name), "{name} defined");
    }
    assert_eq!(app["features"]["push_groups"], true);

    hub.post("/api/v1/groups", json!({"name": "Design"})).await;
    hub.post(
        "/api/v1/users",
        json!({"username": "ada", "email": "ada@example.com", "attributes": {"title": "Lead"}}),
    )
    .await;
    hub.call(Method::PUT, "/api/v1/groups/Design/members/ada", None).await;
    hub.post("/api/v1/policies", json!({"app": "Monday", "group": "Design"}))
        .await;
    hub.settle(&app_id).await;
    let teams = target.groups().await;
    assert_eq!(teams.len(), 1, "{teams:?}");
    assert_eq!(teams[0]["displayName"], "Design");
    let ada = target.user("ada").await.expect("ada provisioned");
    assert_eq!(ada["title"], "Lead");
    assert_eq!(teams[0]["members"][0]["value"], ada["id"]);
    hub.call(
        Method::PATCH,
        "/api/v1/groups/Design",
        Some(json!({"name": "Product Design"})),
    )
    .await;
    hub.settle(&app_id).await;
    let teams = target.groups().await;
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0]["displayName"], "Product Design", "the rename reached the team");
    hub.stop().await;
}
