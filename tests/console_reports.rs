//! The console's dashboard, Provisioning Reports, identity providers, administrators, audit log
//! and API documentation, in a real headless Chromium against a real hub, with report records
//! produced by provisioning a user into a real SCIM server (scim2-server). The report pages run
//! once more on PostgreSQL through the cookie-keeping form client.

mod common;

use common::browser::Browser;
use common::console::{ConsoleClient, PASSWORD, account, assert_no_secret, log_in};
use common::referee::ScimTarget;
use common::{Backend, TestHub};
use provisio::domain::admin::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

/// An app on a real SCIM server, with alice provisioned into it through a group policy; returns
/// the app's id.
async fn provision_alice(hub: &TestHub, target: &ScimTarget) -> String {
    let app = hub
        .connect_app(json!({"name": "Wiki", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().expect("id").to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "Wiki", "group": "Staff"}))
        .await;
    hub.post(
        "/api/v1/users",
        json!({"username": "alice", "email": "alice@example.com", "given_name": "Alice", "family_name": "Liddell"}),
    )
    .await;
    let (status, _) = hub.call(Method::PUT, "/api/v1/groups/Staff/members/alice", None).await;
    assert!(status.is_success(), "{status}");
    hub.settle(&app_id).await;
    assert!(target.user("alice").await.is_some(), "alice reached the target");
    app_id
}

/// The API's report records matching `query`, newest first.
async fn records(hub: &TestHub, query: &str) -> Vec<Value> {
    let page = hub.get(&format!("/api/v1/reports?limit=1000&{query}")).await;
    page["items"].as_array().expect("items").clone()
}

/// Successes and failures (retried or not) among records, as the dashboard counts them.
fn outcomes(records: &[Value]) -> (usize, usize) {
    let of = |wanted: &[&str]| {
        records
            .iter()
            .filter(|r| wanted.contains(&r["outcome"].as_str().unwrap_or("")))
            .count()
    };
    (of(&["success"]), of(&["failure", "retrying"]))
}

/// A `datetime-local` value (UTC).
fn local(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day]T[hour]:[minute]"))
        .expect("format")
}

/// The `data-report` ids of the result rows in a page.
fn result_ids(html: &str) -> Vec<String> {
    html.split("<tr data-report=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_reports_in_a_browser() {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let app_id = provision_alice(&hub, &target).await;
    account(&hub, "root", Role::Administrator).await;
    let all = records(&hub, "").await;
    let alice = records(&hub, "user=alice").await;
    assert!(!alice.is_empty());
    let create = alice
        .iter()
        .find(|r| r["operation"] == "create")
        .expect("alice's create record")
        .clone();

    let browser = Browser::start().await;
    log_in(&browser, &hub, "root", PASSWORD).await;

    // The dashboard: the app with its one account, nothing pending, and both charts with the
    // numbers of the report records.
    browser.goto(&format!("{}/console/", hub.base_url)).await;
    assert_eq!(browser.text(r#"tr[data-app="Wiki"] [data-accounts]"#).await, "1");
    assert_eq!(browser.text(r#"tr[data-app="Wiki"] [data-pending]"#).await, "0");
    assert_eq!(browser.text(r#"tr[data-app="Wiki"] [data-state]"#).await, "active");
    let link = browser.find(r#"tr[data-app="Wiki"] a"#).await;
    assert_eq!(
        link.attr("href").await.expect("href").as_deref(),
        Some(format!("/console/apps/{app_id}").as_str())
    );
    let (succeeded, failed) = outcomes(&all);
    assert!(succeeded >= 2, "a connection check and a create: {all:?}");
    for chart in ["chart-hours", "chart-days"] {
        browser.find(&format!("svg#{chart}[role=img]")).await;
        let summary = browser.text(&format!("#{chart}-summary")).await;
        assert!(
            summary.contains(&format!("{succeeded} succeeded, {failed} failed")),
            "{chart}: {summary}"
        );
    }
    let source = browser.page_source().await;
    assert!(source.contains(r#"class="ok""#) && !source.contains("style="));
    browser.screenshot("console-dashboard").await;

    // Reports: Search with no filter lists every record.
    browser.goto(&format!("{}/console/reports", hub.base_url)).await;
    browser.click("#search").await;
    // The search is a GET: its page is the one whose URL carries the form's fields.
    browser.wait_for_url("/console/reports?").await;
    browser.wait_for("#report-results").await;
    let mut listed = result_ids(&browser.page_source().await);
    let mut expected: Vec<String> = all.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, expected, "newest first, as the API lists them");

    // By the user's identifier (typed in the form), by app (chosen), by a span.
    browser.fill("#user", "alice").await;
    browser.click("#search").await;
    browser
        .wait_for_text("#result-count", &format!("{} record", alice.len()))
        .await;
    assert!(browser.url().await.contains("user=alice"), "the search is a link");
    listed = result_ids(&browser.page_source().await);
    expected = alice.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, expected);
    browser.select("#app", &app_id).await;
    browser.select("#since", "1h").await;
    browser.click("#search").await;
    browser
        .wait_for_text("#result-count", &format!("{} record", alice.len()))
        .await;
    assert_eq!(result_ids(&browser.page_source().await), expected);
    browser.screenshot("console-reports").await;
    let now = OffsetDateTime::now_utc();
    let around = format!(
        "{}/console/reports?user=alice&from={}&to={}",
        hub.base_url,
        local(now - Duration::hours(1)),
        local(now + Duration::hours(1))
    );
    browser.goto(&around).await;
    assert_eq!(result_ids(&browser.page_source().await), expected);
    browser
        .goto(&format!(
            "{}/console/reports?from=2020-01-01T00:00&to=2020-01-02T00:00",
            hub.base_url
        ))
        .await;
    browser.wait_for_text("#result-count", "No record matches").await;
    let from = browser.find("#from").await;
    assert_eq!(
        from.prop("value").await.expect("value").as_deref(),
        Some("2020-01-01T00:00")
    );
    // An inverted span is a field error, answered 422 with what was typed.
    browser
        .goto(&format!(
            "{}/console/reports?from=2020-01-02T00:00&to=2020-01-01T00:00",
            hub.base_url
        ))
        .await;
    browser.wait_for_text("#to-error", "before").await;

    // A record's detail: the attribute changes, the correlation id, its attempts.
    browser
        .goto(&format!("{}/console/reports?user=alice", hub.base_url))
        .await;
    let id = create["id"].as_str().unwrap();
    browser.click(&format!(r#"tr[data-report="{id}"] a"#)).await;
    browser.wait_for("#report-record").await;
    assert_eq!(
        browser.text("#correlation-id").await,
        create["correlation_id"].as_str().unwrap()
    );
    let diff = browser.text("#report-diff").await;
    assert!(diff.contains("userName") && diff.contains("alice"), "{diff}");
    browser
        .find(&format!(r#"#report-attempts tr[data-report="{id}"]"#))
        .await;
    browser.screenshot("console-report-detail").await;
    browser.close().await;

    // The CSV export of a search, with the session cookie.
    let mut client = ConsoleClient::new(&hub);
    client.log_in("root", PASSWORD).await;
    let cookie = format!(
        "provisio_session={}",
        client.cookie("provisio_session").expect("session")
    );
    let answer = reqwest::Client::new()
        .get(format!("{}/console/reports.csv?user=alice&app={app_id}", hub.base_url))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("export");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = answer.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"provisioning-report-"),
        "{disposition}"
    );
    let csv = answer.text().await.expect("body");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("time,user,email,app,operation,outcome"), "{csv}");
    assert_eq!(lines.len(), 1 + alice.len(), "{csv}");
    for record in &alice {
        let line = lines
            .iter()
            .find(|l| l.ends_with(record["id"].as_str().unwrap()))
            .expect("the record's line");
        assert!(line.contains(",alice,alice@example.com,Wiki,"), "{line}");
        assert!(line.contains(record["correlation_id"].as_str().unwrap()));
    }
    // Without a session: to the login page, no data.
    let (status, location, _) = ConsoleClient::new(&hub).get("/console/reports.csv").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.unwrap_or_default().starts_with("/console/login"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_tokens_for_identity_providers() {
    let hub = TestHub::start(Backend::Sqlite).await;
    account(&hub, "root", Role::Administrator).await;
    let browser = Browser::start().await;
    log_in(&browser, &hub, "root", PASSWORD).await;
    let page = format!("{}/console/identity-providers", hub.base_url);
    browser.goto(&page).await;
    let base = browser.find("#scim-base-url").await;
    assert_eq!(
        base.prop("value").await.expect("value"),
        Some(format!("{}/scim/v2", hub.base_url))
    );
    browser.wait_for("#no-tokens").await;

    // A name is required (422, beside the field).
    browser.click("#add-token").await;
    browser.wait_for("#name-error").await;
    browser.fill("#token-name", "okta").await;
    browser.click("#add-token").await;
    let secret = browser.text("#new-token-secret").await;
    assert!(secret.len() > 30, "{secret}");
    browser.find(r#"tr[data-token="okta"]"#).await;
    browser.screenshot("console-identity-providers").await;

    // Shown once: a reload has it nowhere, not even its full prefix beyond the first characters.
    browser.goto(&page).await;
    browser.find(r#"tr[data-token="okta"]"#).await;
    let source = browser.page_source().await;
    assert_no_secret("the identity providers page", &source, &[&secret]);
    assert!(!source.contains("new-token-secret"));

    // It works against the SCIM server, as the identity provider would use it.
    let scim = |token: String| {
        let url = format!("{}/scim/v2/Users", hub.base_url);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("SCIM call")
                .status()
        }
    };
    assert_eq!(scim(secret.clone()).await, StatusCode::OK);
    browser.goto(&page).await;
    let used = browser.text(r#"tr[data-token="okta"]"#).await;
    assert!(!used.contains("never"), "last use shown: {used}");

    // Revoked (after a confirmation): it opens nothing any more.
    browser.click(r#"button[data-revoke="okta"]"#).await;
    assert!(browser.accept_confirm().await.contains("Revoke the SCIM token 'okta'"));
    browser.wait_for_text("#notice", "was revoked").await;
    assert!(browser.text(r#"tr[data-token="okta"]"#).await.contains("revoked"));
    assert_eq!(scim(secret.clone()).await, StatusCode::UNAUTHORIZED);
    let tokens = hub.get("/api/v1/scim-tokens").await;
    let okta = tokens
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "okta"))
        .expect("the token in the store");
    assert!(
        okta["revoked_at"].is_string() && okta["last_used_at"].is_string(),
        "{okta}"
    );
    browser.close().await;

    // An auditor reaches none of the access pages and changes nothing; the API docs are open.
    account(&hub, "audit", Role::Auditor).await;
    let mut auditor = ConsoleClient::new(&hub);
    auditor.log_in("audit", PASSWORD).await;
    for path in ["/console/identity-providers", "/console/admins", "/console/audit"] {
        let (status, _, body) = auditor.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            !body.contains("scim-tokens") && !body.contains("new-username"),
            "{path}"
        );
    }
    let (status, _, _) = auditor.post("/console/identity-providers", &[("name", "sneaky")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = auditor
        .post("/console/admins", &[("username", "mallory"), ("role", "administrator")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, menu) = auditor.get("/console/api-docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!menu.contains("/console/admins\"") && !menu.contains("/console/identity-providers\""));
    let admins = hub.get("/api/v1/admins").await;
    assert!(!admins.to_string().contains("mallory"), "{admins}");
    assert!(!hub.get("/api/v1/scim-tokens").await.to_string().contains("sneaky"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_audit_log_and_api_docs() {
    let hub = TestHub::start(Backend::Sqlite).await;
    account(&hub, "root", Role::Administrator).await;
    // A failed login, then a good one, from the form client.
    let mut client = ConsoleClient::new(&hub);
    let (status, _, _) = client.log_in("root", "not the password").await;
    assert_ne!(status, StatusCode::SEE_OTHER);
    let browser = Browser::start().await;
    log_in(&browser, &hub, "root", PASSWORD).await;

    // Create an auditor: the one-time password is shown once and works.
    browser.goto(&format!("{}/console/admins", hub.base_url)).await;
    browser.click("#add-admin").await;
    browser.wait_for("#username-error").await;
    browser.fill("#new-username", "audrey").await;
    browser.select("#new-role", "auditor").await;
    browser.click("#add-admin").await;
    let first = browser.text("#one-time-password-value").await;
    assert_eq!(browser.text(r#"tr[data-admin="audrey"] [data-role]"#).await, "auditor");
    let mut audrey = ConsoleClient::new(&hub);
    let (status, location, _) = audrey.log_in("audrey", &first).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/console/password"))
    );

    // Reset the password (confirmed): a new one-time password; the old one no longer works.
    browser.goto(&format!("{}/console/admins", hub.base_url)).await;
    browser.click(r#"tr[data-admin="audrey"] details.menu summary"#).await;
    browser
        .click(r#"tr[data-admin="audrey"] button[data-action="reset"]"#)
        .await;
    assert!(browser.accept_confirm().await.contains("Reset the password of audrey"));
    let second = browser.text("#one-time-password-value").await;
    assert_ne!(first, second);
    browser.goto(&format!("{}/console/admins", hub.base_url)).await;
    assert_no_secret(
        "the administrators page",
        &browser.page_source().await,
        &[&first, &second],
    );
    let (status, _, _) = ConsoleClient::new(&hub).log_in("audrey", &first).await;
    assert_ne!(status, StatusCode::SEE_OTHER);

    // Disable (confirmed): the state shows it and the password opens nothing.
    browser.click(r#"tr[data-admin="audrey"] details.menu summary"#).await;
    browser
        .click(r#"tr[data-admin="audrey"] button[data-action="disable"]"#)
        .await;
    browser.accept_confirm().await;
    browser.wait_for_text("#notice", "audrey was disabled").await;
    assert_eq!(
        browser.text(r#"tr[data-admin="audrey"] [data-state]"#).await,
        "disabled"
    );
    let (status, _, _) = ConsoleClient::new(&hub).log_in("audrey", &second).await;
    assert_ne!(status, StatusCode::SEE_OTHER);
    let admins = hub.get("/api/v1/admins").await;
    let stored = admins
        .as_array()
        .and_then(|a| a.iter().find(|a| a["username"] == "audrey"))
        .expect("audrey in the store");
    assert_eq!(stored["role"], "auditor");
    assert!(stored["disabled_at"].is_string(), "{stored}");

    // Refused: disabling yourself is a Conflict shown on the list, nothing changed.
    browser.click(r#"tr[data-admin="root"] details.menu summary"#).await;
    browser
        .click(r#"tr[data-admin="root"] button[data-action="disable"]"#)
        .await;
    browser.accept_confirm().await;
    browser
        .wait_for_text("#admin-error", "cannot disable your own account")
        .await;
    assert_eq!(browser.text(r#"tr[data-admin="root"] [data-state]"#).await, "active");
    browser.screenshot("console-admins").await;

    // The audit log: the logins, the failed one, the account changes.
    browser.goto(&format!("{}/console/audit", hub.base_url)).await;
    browser.find("#audit-log").await;
    for event in [
        "login_failed",
        "login_succeeded",
        "admin_created",
        "password_reset",
        "admin_disabled",
    ] {
        browser.find(&format!(r#"tr[data-event="{event}"]"#)).await;
    }
    let failed = browser
        .text(r#"tr[data-event="login_failed"][data-username="root"]"#)
        .await;
    assert!(failed.contains("root"), "{failed}");
    browser.screenshot("console-audit").await;

    // The API documentation, rendered from the OpenAPI document.
    browser.goto(&format!("{}/console/api-docs", hub.base_url)).await;
    let users = browser
        .find(r#"details[data-path="/api/v1/users"][data-method="POST"]"#)
        .await;
    // The summary is what opens it (a click on the whole element lands wherever its middle is,
    // which may be the page's edge).
    browser
        .find(r#"details[data-path="/api/v1/users"][data-method="POST"] > summary"#)
        .await
        .click()
        .await
        .expect("open the operation");
    let shown = users.text().await.expect("text");
    assert!(shown.contains("Responses") && shown.contains("201"), "{shown}");
    let raw = browser.find("#openapi-json").await;
    assert_eq!(
        raw.attr("href").await.expect("href").as_deref(),
        Some("/api/v1/openapi.json")
    );
    browser.screenshot("console-api-docs").await;
    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_pages_on_postgres() {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(Backend::Postgres).await;
    let app_id = provision_alice(&hub, &target).await;
    account(&hub, "root", Role::Administrator).await;
    let all = records(&hub, "").await;
    let alice = records(&hub, "user=alice").await;
    let mut client = ConsoleClient::new(&hub);
    client.log_in("root", PASSWORD).await;

    // The dashboard's aggregate queries on PostgreSQL.
    let (status, _, page) = client.get("/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<span data-accounts="1">"#), "{page}");
    let (succeeded, failed) = outcomes(&all);
    assert_eq!(
        page.matches(&format!(r#"data-succeeded="{succeeded}""#)).count(),
        2,
        "{page}"
    );
    assert_eq!(page.matches(&format!(r#"data-failed="{failed}""#)).count(), 2);

    // Searches: none, by user, by app and a span around now, and a span in the past.
    let ids =
        |records: &[Value]| -> Vec<String> { records.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect() };
    let (_, _, page) = client.get("/console/reports").await;
    assert_eq!(result_ids(&page), ids(&all));
    let now = OffsetDateTime::now_utc();
    let query = format!(
        "/console/reports?user=alice&app={app_id}&from={}&to={}",
        local(now - Duration::hours(1)),
        local(now + Duration::hours(1))
    );
    let (_, _, page) = client.get(&query).await;
    assert_eq!(result_ids(&page), ids(&alice));
    let (_, _, page) = client
        .get("/console/reports?user=alice&from=2020-01-01T00:00&to=2020-01-02T00:00")
        .await;
    assert!(result_ids(&page).is_empty() && page.contains("No record matches"));
    let (status, _, page) = client.get("/console/reports?app=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(r#"id="app-error""#), "{page}");

    // A record and its attempts.
    let record = &alice[0];
    let (status, _, page) = client
        .get(&format!("/console/reports/{}", record["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(record["correlation_id"].as_str().unwrap()));
    let (status, _, _) = client.get("/console/reports/not-a-record").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The export.
    let (status, _, csv) = client.get("/console/reports.csv?user=alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 1 + alice.len(), "{csv}");
    hub.stop().await;
}
