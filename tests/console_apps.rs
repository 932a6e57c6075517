//! The console's apps and policies pages in a real browser against a real hub and a real SCIM
//! target (scim2-server): adding an app from the Monday.com preset (a refused URL shown beside its
//! field, the typed name kept, the token never echoed), the connection check's result, settings
//! stored, mapping rows added, moved and removed with the live preview following, a policy, the
//! dry-run plan, Sync now until done with the user in the target, Pause and Resume, dead letters
//! retried and discarded, and an auditor who sees no forms and changes nothing.

mod common;

use common::browser::Browser;
use common::console::{ConsoleClient, PASSWORD, account, assert_no_secret, log_in};
use common::referee::{Faults, Proxy, ScimTarget};
use common::{Backend, TestHub, eventually};
use provisio::domain::admin::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// The page source now, checked to hold no app token.
async fn source(browser: &Browser, page: &str, secrets: &[&str]) -> String {
    let html = browser.page_source().await;
    assert_no_secret(page, &html, secrets);
    html
}

async fn monday_attributes(hub: &TestHub) {
    for name in ["title", "language", "timezone"] {
        hub.post("/api/v1/attributes", json!({"name": name, "type": "string"}))
            .await;
    }
}

/// A user in a group, through the JSON API.
async fn member(hub: &TestHub, username: &str, group: &str, family: &str) {
    hub.post(
        "/api/v1/users",
        json!({"username": username, "given_name": "Alice", "family_name": family, "display_name": format!("Alice {family}"),
               "email": format!("{username}@example.com"), "attributes": {"title": "Engineer", "language": "en", "timezone": "Europe/Paris"}}),
    )
    .await;
    let (status, body) = hub
        .call(Method::PUT, &format!("/api/v1/groups/{group}/members/{username}"), None)
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn mapping_targets(hub: &TestHub, app: &str) -> Vec<String> {
    hub.get(&format!("/api/v1/apps/{app}/mapping"))
        .await
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["target"].as_str().expect("target").to_owned())
        .collect()
}

/// The guide's walkthrough in the console: add the app, check its connection, set it up, map,
/// add a policy, plan, sync, and see the user in the target.
async fn walkthrough(backend: Backend, screenshots: bool) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    account(&hub, "ada", Role::Administrator).await;
    let mut browser = Browser::start().await;
    browser.timeout = Duration::from_secs(20);
    log_in(&browser, &hub, "ada", PASSWORD).await;
    let secrets = [target.token.as_str()];
    let shot = |name: &'static str| {
        let browser = &browser;
        async move {
            if screenshots {
                browser.screenshot(name).await;
            }
        }
    };

    // Add app: the Monday.com preset, a link-local URL refused beside its field, the name kept,
    // the token not echoed.
    browser.goto(&format!("{}/console/apps", hub.base_url)).await;
    browser.wait_for("#no-apps").await;
    browser.click("#add-app").await;
    browser.select("#preset", "monday").await;
    browser.fill("#name", "Monday").await;
    browser.fill("#base_url", "http://169.254.169.254/scim/v2").await;
    browser.fill("#token", &target.token).await;
    browser.click("#create-app").await;
    let error = browser.wait_for_text("#base_url-error", "link-local").await;
    assert!(error.contains("169.254.169.254"), "{error}");
    let html = source(&browser, "the refused form", &secrets).await;
    assert!(html.contains("value=\"Monday\""), "the typed name is kept");
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"base_url-error\""));
    let token_value = browser.find("#token").await.prop("value").await.expect("value");
    assert_eq!(token_value.as_deref(), Some(""), "the token is not kept");
    shot("console-app-new").await;
    assert!(hub.get("/api/v1/apps").await.as_array().expect("apps").is_empty());

    browser.fill("#base_url", &target.base_url).await;
    browser.fill("#token", &target.token).await;
    browser.click("#create-app").await;
    browser.wait_for_text("#notice", "was added").await;
    // The connection check is queued; the page shows its result when it arrives.
    browser.wait_for_text("#connection-state", "Connected").await;
    let app = hub.get("/api/v1/apps/Monday").await;
    let app_id = app["id"].as_str().expect("id").to_owned();
    assert_eq!(app["connection_status"], "ok");
    source(&browser, "the app page", &secrets).await;

    // Test connection again: queued, then the new result replaces "Checking".
    let checked_before = app["connection_checked_at"].clone();
    browser.click("#test-connection").await;
    browser.wait_for_text("#notice", "connection check is queued").await;
    browser.wait_for("#connection-state[data-status=\"ok\"]").await;
    assert_ne!(
        hub.get("/api/v1/apps/Monday").await["connection_checked_at"],
        checked_before,
        "a new check ran"
    );

    // Settings: a feature switched off and a deprovisioning choice, stored.
    browser.click("#feature-push_groups").await;
    browser.select("#on_unassign", "delete").await;
    browser.fill("#delete_after_days", "30").await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#notice", "were saved").await;
    let app = hub.get("/api/v1/apps/Monday").await;
    assert_eq!(app["features"]["push_groups"], false, "{app}");
    assert_eq!(app["features"]["create_users"], true, "{app}");
    assert_eq!(app["deprovision"]["on_unassign"], "delete");
    assert_eq!(app["deprovision"]["on_deactivate"], "deactivate");
    assert_eq!(app["deprovision"]["delete_deactivated_after_days"], 30);
    // A bad number of days is shown beside its field, and nothing changes.
    browser.fill("#delete_after_days", "soon").await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#delete_after_days-error", "whole number").await;
    assert_eq!(
        hub.get("/api/v1/apps/Monday").await["deprovision"]["delete_deactivated_after_days"],
        30
    );
    browser.goto(&format!("{}/console/apps/{app_id}", hub.base_url)).await;
    shot("console-app-settings").await;
    source(&browser, "the settings", &secrets).await;

    // A user in a group, through the JSON API; the custom attributes were defined with the app.
    hub.post("/api/v1/groups", json!({"name": "Engineering"})).await;
    member(&hub, "alice", "Engineering", "Smith").await;

    // Mapping: the preview follows rows added, moved and removed.
    browser
        .goto(&format!("{}/console/apps/{app_id}/mapping", hub.base_url))
        .await;
    browser.fill("#preview-user", "alice").await;
    let preview = browser.wait_for_text("#preview-json", "\"userName\": \"alice\"").await;
    assert!(!preview.contains("nickName"), "{preview}");
    let resource: Value = serde_json::from_str(&preview).expect("the preview is JSON");
    assert_eq!(resource["title"], "Engineer");
    browser.fill("#target", "id").await;
    browser.select("#source", "attribute:email").await;
    browser.click("#save-row").await;
    browser.wait_for_text("#target-error", "read-only").await;
    browser.fill("#target", "nickName").await;
    browser.select("#source", "constant").await;
    browser.fill("#value", "Ace").await;
    browser.click("#save-row").await;
    browser.wait_for_text("#notice", "nickName was saved").await;
    assert_eq!(
        mapping_targets(&hub, "Monday").await.last().map(String::as_str),
        Some("nickName")
    );
    browser.fill("#preview-user", "alice").await;
    let preview = browser.wait_for_text("#preview-json", "\"nickName\": \"Ace\"").await;
    serde_json::from_str::<Value>(&preview).expect("JSON");
    browser
        .click("tr[data-target=\"displayName\"] button[aria-label=\"Move displayName up\"]")
        .await;
    browser.wait_for_text("#notice", "moved up").await;
    assert_eq!(mapping_targets(&hub, "Monday").await[..2], ["displayName", "userName"]);
    browser.fill("#preview-user", "alice").await;
    browser.wait_for_text("#preview-json", "nickName").await;
    shot("console-app-mapping").await;
    browser.click("tr[data-target=\"nickName\"] .remove-row").await;
    assert_eq!(browser.accept_confirm().await, "Remove the rule for nickName?");
    browser.wait_for_text("#notice", "nickName was removed").await;
    assert!(!mapping_targets(&hub, "Monday").await.contains(&"nickName".to_owned()));
    browser.fill("#preview-user", "alice").await;
    let preview = browser.wait_for_text("#preview-json", "\"userName\": \"alice\"").await;
    assert!(!preview.contains("nickName"), "{preview}");
    source(&browser, "the mapping", &secrets).await;

    // Pause: the policy's work waits, and the dry run plans the account.
    browser.goto(&format!("{}/console/apps/{app_id}", hub.base_url)).await;
    browser.click("#pause").await;
    browser.wait_for("#app-state[data-state=\"paused\"]").await;
    assert_eq!(hub.get("/api/v1/apps/Monday").await["state"], "paused");

    // Policies: app x group.
    browser.goto(&format!("{}/console/policies", hub.base_url)).await;
    browser.wait_for("#no-policies").await;
    let group_id = hub.get("/api/v1/groups/Engineering").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    browser.select("#policy-app", &app_id).await;
    browser.select("#policy-group", &group_id).await;
    browser.click("#save-policy").await;
    browser.wait_for("tr[data-policy=\"Monday for Engineering\"]").await;
    let policies = hub.get("/api/v1/policies").await;
    assert_eq!(policies[0]["app_name"], "Monday", "{policies}");
    assert_eq!(policies[0]["group_name"], "Engineering");
    // The same policy again is refused beside the group.
    browser.select("#policy-app", &app_id).await;
    browser.select("#policy-group", &group_id).await;
    browser.click("#save-policy").await;
    browser.wait_for("#group-error").await;
    shot("console-policies").await;

    browser
        .goto(&format!("{}/console/apps/{app_id}/sync", hub.base_url))
        .await;
    browser.click("#dry-run").await;
    browser
        .wait_for("#plan tr[data-name=\"alice\"][data-action=\"create\"]")
        .await;
    assert!(browser.text("#plan-summary").await.starts_with("1 to create"));
    assert!(target.user("alice").await.is_none(), "a dry run sends nothing");

    // Resume: the waiting work runs; then Sync now reconciles everyone, with its progress.
    browser.goto(&format!("{}/console/apps/{app_id}", hub.base_url)).await;
    browser.click("#resume").await;
    browser.wait_for("#app-state[data-state=\"active\"]").await;
    assert_eq!(hub.get("/api/v1/apps/Monday").await["state"], "active");
    hub.settle(&app_id).await;
    browser
        .goto(&format!("{}/console/apps/{app_id}/sync", hub.base_url))
        .await;
    browser.click("#sync-now").await;
    browser.wait_for_text("#notice", "synchronisation").await;
    assert!(browser.url().await.contains("?run=run-"));
    let done = browser
        .wait_for_text("#sync-state[data-state=\"done\"]", "1 of 1 done")
        .await;
    assert!(!done.contains("failed"), "{done}");
    shot("console-app-sync").await;
    let provisioned = target.user("alice").await.expect("alice is in the target");
    assert_eq!(provisioned["title"], "Engineer", "{provisioned}");
    assert_eq!(provisioned["active"], true);

    // The list: state, connection, one account.
    browser.goto(&format!("{}/console/apps", hub.base_url)).await;
    let row = browser.text("tr[data-app=\"Monday\"]").await;
    assert!(
        row.contains("active") && row.contains("Connected") && row.contains("Monday.com"),
        "{row}"
    );
    assert!(row.ends_with('1'), "one account: {row}");
    shot("console-apps").await;
    source(&browser, "the apps list", &secrets).await;

    // At phone width the app's pages still fit: the less important columns are hidden.
    browser.set_window_size(400, 850).await;
    browser
        .goto(&format!("{}/console/apps/{app_id}/mapping", hub.base_url))
        .await;
    browser.wait_for("#add-row").await;
    let narrow = browser
        .client()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(
        narrow,
        json!(true),
        "no horizontal scrolling of the page at phone width"
    );
    shot("console-app-mapping-narrow").await;
    browser.set_window_size(1280, 900).await;

    // Delete: the page says what happens to the accounts.
    browser
        .goto(&format!("{}/console/apps/{app_id}/delete", hub.base_url))
        .await;
    let page = browser.text("main").await;
    assert!(page.contains("left as they are"), "{page}");
    browser.click("#delete-app").await;
    browser.accept_confirm().await;
    browser.wait_for_text("#notice", "was deleted").await;
    let (status, _) = hub.call(Method::GET, "/api/v1/apps/Monday", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(target.user("alice").await.is_some(), "accounts in the app stay");

    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_walkthrough_sqlite() {
    walkthrough(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_walkthrough_postgres() {
    walkthrough(Backend::Postgres, false).await;
}

/// Dead letters from a target that refuses one user: retried, then discarded with a confirmation;
/// an auditor sees the pages without forms and a post of theirs changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_and_auditor() {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    proxy.set(Faults {
        reject_body_containing: Some("bad-value-9".into()),
        ..Default::default()
    });
    let hub = TestHub::start(Backend::Sqlite).await;
    monday_attributes(&hub).await;
    let app = hub
        .connect_app(json!({"name": "Strict", "base_url": proxy.base_url, "token": target.token, "preset": "generic"}))
        .await;
    let app_id = app["id"].as_str().expect("id").to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "Strict", "group": "Staff"}))
        .await;
    member(&hub, "rejected", "Staff", "bad-value-9").await;
    hub.settle(&app_id).await;
    assert_eq!(
        hub.get("/api/v1/apps/Strict/dead-letters")
            .await
            .as_array()
            .expect("list")
            .len(),
        1
    );

    account(&hub, "ada", Role::Administrator).await;
    let browser = Browser::start().await;
    log_in(&browser, &hub, "ada", PASSWORD).await;
    let secrets = [target.token.as_str()];
    let letters = format!("{}/console/apps/{app_id}/dead-letters", hub.base_url);
    browser.goto(&letters).await;
    let row = browser.text("tr[data-name=\"rejected\"]").await;
    assert!(row.contains("bad-value-9") && row.contains("create"), "{row}");
    source(&browser, "the dead letters", &secrets).await;

    // Retry all: queued again, sent again, refused again by the target.
    let refusals = || proxy.seen().iter().filter(|seen| seen.status == 400).count();
    let before = refusals();
    assert!(before >= 1);
    browser.click("#retry-all").await;
    browser.wait_for_text("#notice", "1 dead letter was queued again").await;
    eventually(30, "the retried job to fail again", || async {
        let dead = hub.get("/api/v1/apps/Strict/dead-letters").await;
        (refusals() > before && dead.as_array().is_some_and(|d| d.len() == 1)).then_some(())
    })
    .await;

    // Discard the selected one, after a confirmation that can be declined.
    browser.goto(&letters).await;
    let job = hub.get("/api/v1/apps/Strict/dead-letters").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    browser.click(&format!("#job-{job}")).await;
    browser.click("#discard-selected").await;
    browser.dismiss_confirm().await;
    assert_eq!(
        hub.get("/api/v1/apps/Strict/dead-letters")
            .await
            .as_array()
            .expect("list")
            .len(),
        1,
        "declined: nothing discarded"
    );
    browser.click("#discard-selected").await;
    let question = browser.accept_confirm().await;
    assert!(question.starts_with("Discard the selected"), "{question}");
    browser.wait_for_text("#notice", "1 dead letter was discarded").await;
    browser.wait_for("#no-dead-letters").await;
    assert!(
        hub.get("/api/v1/apps/Strict/dead-letters")
            .await
            .as_array()
            .expect("list")
            .is_empty()
    );
    browser.close().await;

    // An auditor: the pages without forms; a post is refused and changes nothing.
    account(&hub, "audrey", Role::Auditor).await;
    let mut auditor = ConsoleClient::new(&hub);
    let (status, _, _) = auditor.log_in("audrey", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    for page in ["", "/mapping", "/sync", "/dead-letters"] {
        let (status, _, html) = auditor.get(&format!("/console/apps/{app_id}{page}")).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        assert!(html.contains("Strict"), "{page}");
        assert!(
            !html.contains("action=\"/console/apps"),
            "{page} has no forms for an auditor"
        );
        assert!(!html.contains("type=\"password\""), "{page}");
        assert_no_secret(page, &html, &secrets);
    }
    let (_, _, html) = auditor.get("/console/policies").await;
    assert!(html.contains("Strict for Staff") && !html.contains("id=\"add-policy\""));
    let (_, _, html) = auditor.get("/console/apps").await;
    assert!(!html.contains("id=\"add-app\""));
    let before = hub.get("/api/v1/apps/Strict").await;
    let (status, _, _) = auditor
        .post(
            &format!("/console/apps/{app_id}/settings"),
            &[
                ("name", "Strict"),
                ("base_url", "https://evil.example.com/scim"),
                ("on_unassign", "delete"),
                ("on_deactivate", "delete"),
                ("on_delete", "delete"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in ["/pause", "/delete", "/test"] {
        let (status, _, _) = auditor.post(&format!("/console/apps/{app_id}{path}"), &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let after = hub.get("/api/v1/apps/Strict").await;
    assert_eq!(after, before, "nothing changed");
    hub.stop().await;
}
