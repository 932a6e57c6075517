//! The seed guide's walkthrough, click by click, in a real headless Chromium against a real hub
//! and a real SCIM target (scim2-server standing in for Monday.com): step 2, the app from the
//! Monday.com preset with its SCIM base URL and bearer token; step 3, its attribute mapping and
//! provisioning features; step 4, a group; step 5, a policy; step 6, users; step 7, assigning them
//! (they appear in the target); step 8, editing a user from the Actions menu (the target follows);
//! step 9, deleting a user from the Actions menu after the confirmation (gone from the target);
//! then Provisioning Reports: each action found by user, by app, by time span, and with no filter.

mod common;

use common::browser::Browser;
use common::console::{PASSWORD, account, assert_no_secret, log_in};
use common::referee::ScimTarget;
use common::{Backend, TestHub, eventually};
use provisio::domain::admin::Role;
use serde_json::Value;
use std::time::Duration;

async fn rows_for(browser: &Browser, selector: &str) -> usize {
    browser
        .client()
        .find_all(fantoccini::Locator::Css(selector))
        .await
        .expect("find rows")
        .len()
}

async fn add_user(browser: &Browser, base: &str, fields: &[(&str, &str)]) {
    browser.goto(&format!("{base}/console/users")).await;
    browser.click("#add-user").await;
    for (field, value) in fields {
        browser.fill(field, value).await;
    }
    browser.click("#save-user").await;
    browser.wait_for_text("#notice", "was added").await;
}

async fn walkthrough(backend: Backend, screenshots: bool) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    account(&hub, "ada", Role::Administrator).await;
    let mut browser = Browser::start().await;
    browser.timeout = Duration::from_secs(30);
    let base = hub.base_url.clone();
    let url = |path: &str| format!("{base}{path}");
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    log_in(&browser, &hub, "ada", PASSWORD).await;

    // Step 2: Apps > add Monday.com with the SCIM base URL and the bearer token.
    browser.goto(&url("/console/apps/new")).await;
    browser.select("#preset", "monday").await;
    browser.fill("#name", "Monday.com").await;
    browser.fill("#base_url", &target.base_url).await;
    browser.fill("#token", &target.token).await;
    browser.click("#create-app").await;
    browser.wait_for_text("#notice", "was added").await;
    browser.wait_for_text("#connection-state", "Connected").await;
    let app = hub.get("/api/v1/apps/Monday.com").await;
    let app_id = app["id"].as_str().expect("app id").to_owned();

    // Step 3: the attribute mapping the guide lists comes with the preset; the provisioning
    // features are switched on; deleting a user deletes the account (the guide's step 9).
    browser.goto(&url(&format!("/console/apps/{app_id}/mapping"))).await;
    for target_attribute in [
        "userName",
        "name.givenName",
        "name.familyName",
        "title",
        "preferredLanguage",
        "timezone",
        "active",
    ] {
        browser
            .wait_for(&format!("#mapping tr[data-target=\"{target_attribute}\"]"))
            .await;
    }
    if screenshots {
        browser.screenshot("walkthrough-3-mapping").await;
    }
    browser.goto(&url(&format!("/console/apps/{app_id}"))).await;
    browser.select("#on_delete", "delete").await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#notice", "were saved").await;
    let app = hub.get("/api/v1/apps/Monday.com").await;
    for feature in ["create_users", "update_users", "deactivate_users", "delete_users"] {
        assert_eq!(app["features"][feature], true, "{feature}: {app}");
    }
    assert_eq!(app["deprovision"]["on_delete"], "delete", "{app}");

    // Step 4: Groups > Create Group.
    browser.goto(&url("/console/groups")).await;
    browser.fill("#group-name", "Monday Users").await;
    browser.click("#create-group-submit").await;
    browser.wait_for_text("#group-heading", "Monday Users").await;
    let group_id = hub.get("/api/v1/groups/Monday%20Users").await["id"]
        .as_str()
        .expect("group id")
        .to_owned();

    // Step 5: Policies > Add Policy: the app, the group, a name.
    browser.goto(&url("/console/policies")).await;
    browser.select("#policy-app", &app_id).await;
    browser.select("#policy-group", &group_id).await;
    browser.fill("#policy-name", "Monday for Monday Users").await;
    browser.click("#save-policy").await;
    browser.wait_for("#policies tr[data-policy]").await;
    let policies = hub.get("/api/v1/policies").await;
    assert_eq!(policies.as_array().map(Vec::len), Some(1), "{policies}");
    if screenshots {
        browser.screenshot("walkthrough-5-policy").await;
    }

    // Step 6: Users > Add User.
    for (username, given, family, title) in [
        ("grace", "Grace", "Hopper", "Rear admiral"),
        ("linus", "Linus", "Torvalds", "Maintainer"),
    ] {
        add_user(
            &browser,
            &base,
            &[
                ("#username", username),
                ("#given_name", given),
                ("#family_name", family),
                ("#display_name", &format!("{given} {family}")),
                ("#email", &format!("{username}@example.com")),
                ("#attr-title", title),
                ("#attr-language", "en"),
                ("#attr-timezone", "Europe/Paris"),
            ],
        )
        .await;
    }

    // Step 7: Groups > assign the users to the group; they appear in Monday.com.
    browser.goto(&url(&format!("/console/groups/{group_id}"))).await;
    for (typed, pick) in [("gra", "grace"), ("lin", "linus")] {
        browser.fill("#member-username", typed).await;
        browser.click(&format!("#member-picker [data-pick=\"{pick}\"]")).await;
        browser.click("#add-member-submit").await;
        browser.wait_for(&format!("tr[data-member=\"{pick}\"]")).await;
    }
    if screenshots {
        browser.screenshot("walkthrough-7-group").await;
    }
    for username in ["grace", "linus"] {
        let account = eventually(60, &format!("{username} in the target"), || async {
            target.user(username).await
        })
        .await;
        assert_eq!(account["active"], true, "{account}");
    }
    let grace = target.user("grace").await.expect("grace");
    assert_eq!(grace["name"]["familyName"], "Hopper", "{grace}");
    assert_eq!(grace["title"], "Rear admiral", "{grace}");

    // Step 8: Users > User List > Actions > Edit > Save; the target follows.
    browser.goto(&url("/console/users")).await;
    browser.click("tr[data-user=\"grace\"] details.menu > summary").await;
    browser.click("tr[data-user=\"grace\"] [data-action=\"edit\"]").await;
    browser.fill("#family_name", "Hopper-Murray").await;
    browser.fill("#attr-title", "Commodore").await;
    browser.click("#save-user").await;
    browser.wait_for_text("#notice", "was saved").await;
    let updated = eventually(60, "grace updated in the target", || async {
        target
            .user("grace")
            .await
            .filter(|u| u["title"] == "Commodore" && u["name"]["familyName"] == "Hopper-Murray")
    })
    .await;
    assert_eq!(updated["name"]["givenName"], "Grace", "{updated}");

    // Step 9: Users > User List > Actions > Delete, confirmed; gone from Monday.com.
    browser.goto(&url("/console/users")).await;
    browser.click("tr[data-user=\"linus\"] details.menu > summary").await;
    browser.click("tr[data-user=\"linus\"] [data-action=\"delete\"]").await;
    browser.wait_for("#deprovision-apps li[data-app]").await;
    let impact = browser.text("#deprovision-apps").await;
    assert!(impact.contains("Monday.com"), "{impact}");
    if screenshots {
        browser.screenshot("walkthrough-9-delete").await;
    }
    browser.click("#confirm-delete").await;
    assert!(browser.accept_confirm().await.contains("linus"));
    browser.wait_for_text("#notice", "deleted").await;
    eventually(60, "linus deleted from the target", || async {
        target.user("linus").await.is_none().then_some(())
    })
    .await;
    assert!(target.user("grace").await.is_some());

    // Provisioning Reports: every action, by user, by app, by time span, and with no filter.
    let search = |query: String| {
        let browser = &browser;
        let url = url(&format!("/console/reports{query}"));
        async move {
            browser.goto(&url).await;
            browser.wait_for("#report-filters").await;
            browser.page_source().await
        }
    };
    let all = eventually(30, "the delete in the report", || async {
        let html = search(String::new()).await;
        html.contains("data-user=\"linus\"").then_some(html)
    })
    .await;
    assert!(all.contains("data-user=\"grace\""), "no filter lists every action");
    // The Search button with no filter, as the guide says.
    browser.goto(&url("/console/reports")).await;
    browser.click("#search").await;
    browser.wait_for("#report-results tr[data-report]").await;
    assert!(rows_for(&browser, "#report-results tr[data-user=\"linus\"]").await > 0);

    // By end-user identifier, typed into the form.
    browser.fill("#user", "grace").await;
    browser.click("#search").await;
    browser.wait_for("#report-results tr[data-report]").await;
    // The click leaves the unfiltered page in place until the filtered one has loaded: wait for
    // the new page (its rows all grace's), for at most 10 s, then compare.
    for _ in 0..100 {
        let rows = rows_for(&browser, "#report-results tr[data-report]").await;
        if rows > 0 && rows == rows_for(&browser, "#report-results tr[data-user=\"grace\"]").await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let grace_rows = rows_for(&browser, "#report-results tr[data-report]").await;
    assert_eq!(
        grace_rows,
        rows_for(&browser, "#report-results tr[data-user=\"grace\"]").await,
        "the user filter shows only grace's records"
    );
    let html = browser.page_source().await;
    for operation in ["create", "update"] {
        assert!(html.contains(operation), "grace's {operation} is in the report");
    }
    if screenshots {
        browser.screenshot("walkthrough-reports-user").await;
    }
    // By application, and by time span.
    let by_app = search(format!("?app={app_id}")).await;
    assert!(by_app.contains("data-user=\"grace\"") && by_app.contains("data-user=\"linus\""));
    let from = started
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .expect("from");
    let recent = search(format!("?user=linus&since=&from={from}")).await;
    assert!(
        recent.contains("data-user=\"linus\""),
        "the span since the test began holds linus's records"
    );
    assert!(recent.contains("delete"), "linus's delete is in the span");
    let past = search("?from=2020-01-01T00:00&to=2020-01-02T00:00".to_owned()).await;
    assert!(!past.contains("data-report="), "a span in the past holds nothing");
    let one_hour = search(format!("?user=linus&app={app_id}&since=1h")).await;
    assert!(one_hour.contains("data-user=\"linus\""));
    assert_no_secret("the reports", &one_hour, &[target.token.as_str()]);

    // What the pages showed is what the hub holds.
    let users: Value = hub.get("/api/v1/users").await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["grace"], "{users}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_guide_walkthrough_on_sqlite() {
    walkthrough(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_guide_walkthrough_on_postgres() {
    walkthrough(Backend::Postgres, false).await;
}
