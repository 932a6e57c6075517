//! The console's directory pages in a real browser against a real hub (and a real scim2-server
//! for the app an account lives in): custom attributes, adding users with field errors, search,
//! editing, deactivating, groups with the member picker, the user's page with app accounts and
//! timeline, deleting a user through the confirmation page that names the app, and what the
//! store holds afterwards (read through the JSON API). An auditor sees no write controls and
//! cannot create a user with a hand-made POST.

mod common;

use common::browser::Browser;
use common::console::{ConsoleClient, PASSWORD, account, attribute_after, log_in};
use common::referee::ScimTarget;
use common::{Backend, TestHub, eventually};
use provisio::domain::admin::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The `value` property of the input matching `css`.
async fn value_of(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .await
        .prop("value")
        .await
        .expect("value property")
        .unwrap_or_default()
}

/// Waits until the page's HTML satisfies `check`.
async fn until_page(browser: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    eventually(10, what, || async {
        let html = browser.page_source().await;
        check(&html).then_some(html)
    })
    .await
}

/// Opens the Actions menu of a row and clicks one of its actions.
async fn row_action(browser: &Browser, row: &str, action: &str) {
    browser.click(&format!("{row} details.menu > summary")).await;
    browser.click(&format!("{row} [data-action=\"{action}\"]")).await;
}

async fn user_json(hub: &TestHub, username: &str) -> Value {
    hub.get(&format!("/api/v1/users/{username}")).await
}

async fn directory_pages(backend: Backend) {
    let hub = TestHub::start(backend).await;
    account(&hub, "alice", Role::Administrator).await;
    let browser = Browser::start().await;
    log_in(&browser, &hub, "alice", PASSWORD).await;
    let url = |path: &str| format!("{}{path}", hub.base_url);

    // A custom attribute "title".
    browser.goto(&url("/console/attributes")).await;
    browser.fill("#attr-name", "title").await;
    browser.fill("#attr-display-name", "Job title").await;
    browser.select("#attr-type", "string").await;
    browser.fill("#attr-description", "What the person does").await;
    browser.click("#define-attribute-submit").await;
    browser.wait_for_text("#notice", "Attribute title was defined").await;
    browser.wait_for_text("tr[data-attribute=\"title\"]", "Job title").await;
    let title = hub.get("/api/v1/attributes/title").await;
    assert_eq!(
        (&title["display_name"], &title["type"], &title["required"]),
        (&json!("Job title"), &json!("string"), &json!(false))
    );
    // A bad name is refused beside its field, the typed values kept.
    browser.fill("#attr-name", "2fa").await;
    browser.fill("#attr-display-name", "Second factor").await;
    browser.click("#define-attribute-submit").await;
    browser
        .wait_for_text("#attr-name-error", "not a valid attribute name")
        .await;
    assert_eq!(value_of(&browser, "#attr-name").await, "2fa");
    assert_eq!(value_of(&browser, "#attr-display-name").await, "Second factor");
    browser.screenshot("console-attributes").await;

    // Add a user with a bad email: the error beside the field, everything typed kept.
    browser.goto(&url("/console/users")).await;
    browser.click("#add-user").await;
    browser.fill("#username", "bob").await;
    browser.fill("#given_name", "Bob").await;
    browser.fill("#family_name", "Builder").await;
    browser.fill("#email", "not-an-email").await;
    browser.fill("#attr-title", "Engineer").await;
    browser.click("#save-user").await;
    browser.wait_for("#email-error").await;
    assert!(!browser.text("#email-error").await.is_empty());
    assert_eq!(
        browser.find("#email").await.attr("aria-invalid").await.expect("attr"),
        Some("true".into())
    );
    for (field, typed) in [
        ("#username", "bob"),
        ("#given_name", "Bob"),
        ("#family_name", "Builder"),
        ("#email", "not-an-email"),
        ("#attr-title", "Engineer"),
    ] {
        assert_eq!(value_of(&browser, field).await, typed, "{field} keeps what was typed");
    }
    let (status, _) = hub.call(Method::GET, "/api/v1/users/bob", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    browser.fill("#email", "bob@example.com").await;
    browser.click("#save-user").await;
    browser.wait_for_text("#notice", "User bob was added").await;
    browser.wait_for_text("dd[data-attr=\"title\"]", "Engineer").await;
    let bob = user_json(&hub, "bob").await;
    assert_eq!(
        (&bob["email"], &bob["attributes"]["title"], &bob["active"]),
        (&json!("bob@example.com"), &json!("Engineer"), &json!(true))
    );

    // More users: one through the form, two through the API.
    browser.goto(&url("/console/users/new")).await;
    browser.fill("#username", "carol").await;
    browser.fill("#given_name", "Carol").await;
    browser.fill("#email", "carol@example.com").await;
    browser.fill("#attr-title", "Designer").await;
    browser.click("#save-user").await;
    browser.wait_for_text("#notice", "User carol was added").await;
    for name in ["dave", "erin"] {
        hub.post(
            "/api/v1/users",
            json!({"username": name, "email": format!("{name}@example.com")}),
        )
        .await;
    }

    // Search as you type, then the plain GET form.
    browser.goto(&url("/console/users")).await;
    browser.wait_for("tr[data-user=\"erin\"]").await;
    browser.screenshot("console-users").await;
    browser.fill("#user-search", "car").await;
    until_page(&browser, "the table to show only carol", |html| {
        html.contains("data-user=\"carol\"") && !html.contains("data-user=\"bob\"")
    })
    .await;
    browser.goto(&url("/console/users?q=dave")).await;
    let html = browser.page_source().await;
    assert!(html.contains("data-user=\"dave\"") && !html.contains("data-user=\"erin\""));
    assert_eq!(value_of(&browser, "#user-search").await, "dave");

    // Edit bob from the row's Actions menu.
    browser.goto(&url("/console/users")).await;
    row_action(&browser, "tr[data-user=\"bob\"]", "edit").await;
    assert_eq!(value_of(&browser, "#attr-title").await, "Engineer");
    browser.fill("#display_name", "Bob the Builder").await;
    browser.fill("#attr-title", "Lead engineer").await;
    browser.click("#save-user").await;
    browser.wait_for_text("#notice", "User bob was saved").await;
    browser
        .wait_for_text("dd[data-field=\"display_name\"]", "Bob the Builder")
        .await;
    let bob = user_json(&hub, "bob").await;
    assert_eq!(
        (&bob["display_name"], &bob["attributes"]["title"]),
        (&json!("Bob the Builder"), &json!("Lead engineer"))
    );

    // Deactivate bob from the list (after the confirmation).
    browser.goto(&url("/console/users")).await;
    row_action(&browser, "tr[data-user=\"bob\"]", "deactivate").await;
    assert!(browser.accept_confirm().await.contains("Deactivate bob"));
    browser.wait_for_text("#notice", "bob was deactivated").await;
    browser.wait_for_text("tr[data-user=\"bob\"]", "inactive").await;
    assert_eq!(user_json(&hub, "bob").await["active"], json!(false));

    // A group, members added with the picker, one removed.
    browser.goto(&url("/console/groups")).await;
    browser.fill("#group-name", "Staff").await;
    browser.click("#create-group-submit").await;
    browser.wait_for_text("#group-heading", "Staff").await;
    for (typed, pick) in [("car", "carol"), ("dav", "dave")] {
        browser.fill("#member-username", typed).await;
        browser.click(&format!("#member-picker [data-pick=\"{pick}\"]")).await;
        assert_eq!(value_of(&browser, "#member-username").await, pick);
        browser.click("#add-member-submit").await;
        browser
            .wait_for_text("#notice", &format!("{pick} was added to the group"))
            .await;
        browser.wait_for(&format!("tr[data-member=\"{pick}\"]")).await;
    }
    // A username nobody has: the error beside the field, the text kept.
    browser.fill("#member-username", "nobody").await;
    browser.click("#add-member-submit").await;
    browser.wait_for_text("#member-username-error", "was not found").await;
    assert_eq!(value_of(&browser, "#member-username").await, "nobody");
    browser.click("tr[data-member=\"dave\"] [data-action=\"remove\"]").await;
    assert!(browser.accept_confirm().await.contains("Remove dave from Staff"));
    browser
        .wait_for_text("#notice", "dave was removed from the group")
        .await;
    let members = hub.get("/api/v1/groups/Staff/members").await;
    let names: Vec<&str> = members["items"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["carol"]);

    // An app whose policy covers Staff: carol gets an account there.
    let target = ScimTarget::start().await;
    let app = hub
        .connect_app(json!({"name": "Wiki", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().expect("id").to_owned();
    hub.post("/api/v1/policies", json!({"app": "Wiki", "group": "Staff"}))
        .await;
    let carol_id = user_json(&hub, "carol").await["id"].as_str().expect("id").to_owned();
    eventually(30, "carol's account in Wiki", || async {
        let accounts = hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await;
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .any(|a| a["user_id"] == json!(carol_id) && a["state"] == json!("active"))
            .then_some(())
    })
    .await;
    assert!(target.user("carol").await.is_some());

    browser.goto(&url("/console/groups")).await;
    browser
        .wait_for_text("tr[data-group=\"Staff\"] td[data-members]", "1")
        .await;
    browser.wait_for_text("tr[data-group=\"Staff\"]", "Wiki").await;
    browser.screenshot("console-groups").await;
    browser.click("tr[data-group=\"Staff\"] a").await;
    browser.wait_for_text("#group-apps li[data-app=\"Wiki\"]", "Wiki").await;
    browser.screenshot("console-group").await;

    // Carol's page: profile, attribute, group, the Wiki account, the timeline.
    browser.click("tr[data-member=\"carol\"] a").await;
    browser.wait_for_text("#user-heading", "carol").await;
    browser.wait_for_text("dd[data-attr=\"title\"]", "Designer").await;
    browser.wait_for_text("#user-groups", "Staff").await;
    browser
        .wait_for_text("#user-accounts tr[data-app=\"Wiki\"]", "active")
        .await;
    let timeline = browser.text("#user-timeline").await;
    assert!(
        timeline.contains("Wiki") && timeline.contains("create") && timeline.contains("success"),
        "{timeline}"
    );
    browser.screenshot("console-user").await;
    browser.click("#provision-user").await;
    browser
        .wait_for_text("#notice", "Provisioning of carol was queued in: Wiki")
        .await;

    // Delete carol through the confirmation page, which names Wiki.
    browser.click("#delete-user").await;
    browser
        .wait_for_text("#deprovision-apps li[data-app=\"Wiki\"]", "deactivated")
        .await;
    browser.click("#confirm-delete").await;
    assert!(browser.accept_confirm().await.contains("Wiki"));
    browser.wait_for_text("#notice", "User carol was deleted").await;
    let (status, _) = hub.call(Method::GET, "/api/v1/users/carol", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    eventually(30, "carol's Wiki account to be deactivated", || async {
        let user = target.user("carol").await?;
        (user["active"] == json!(false)).then_some(())
    })
    .await;

    // The attribute bob holds a value for cannot be deleted: the page says why.
    browser.goto(&url("/console/attributes")).await;
    row_action(&browser, "tr[data-attribute=\"title\"]", "delete").await;
    browser.accept_confirm().await;
    browser
        .wait_for_text("#attribute-problem", "hold a value for 'title'")
        .await;
    hub.get("/api/v1/attributes/title").await;

    // The users list at phone width.
    browser.set_window_size(390, 844).await;
    browser.goto(&url("/console/users")).await;
    browser.wait_for("tr[data-user=\"bob\"]").await;
    let email_shown = browser
        .find("#users-table th.hide-narrow")
        .await
        .is_displayed()
        .await
        .expect("displayed");
    assert!(!email_shown, "the email column is hidden at phone width");
    browser.screenshot("console-users-phone").await;

    browser.close().await;
    hub.stop().await;
}

backend_tests!(directory_pages);

/// The href of the element with `id`, with HTML's escaped `&` undone.
fn href_of(html: &str, id: &str) -> Option<String> {
    attribute_after(html, &format!("id=\"{id}\""), "href").map(|h| h.replace("&amp;", "&").replace("&#38;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_but_changes_nothing() {
    let hub = TestHub::start(Backend::Sqlite).await;
    account(&hub, "audrey", Role::Auditor).await;
    for n in 0..27 {
        hub.post("/api/v1/users", json!({"username": format!("user{n:02}")}))
            .await;
    }
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    let mut client = ConsoleClient::new(&hub);
    let (status, _, _) = client.log_in("audrey", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The list, paged: 25 on the first page, the rest behind "Next page"; no write controls.
    let (status, _, page) = client.get("/console/users").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-user=\"user00\"") && page.contains("data-user=\"user24\""));
    assert!(!page.contains("data-user=\"user25\""));
    for control in [
        "id=\"add-user\"",
        "data-action=",
        "method=\"post\" action=\"/console/users",
    ] {
        assert!(!page.contains(control), "the auditor sees {control}");
    }
    let next = href_of(&page, "users-next").expect("a next page link");
    let (status, _, second) = client.get(&next).await;
    assert_eq!(status, StatusCode::OK, "{next}: {second}");
    assert!(
        second.contains("data-user=\"user25\"") && second.contains("data-user=\"user26\""),
        "{next}: {second}"
    );
    assert!(!second.contains("data-user=\"user00\"") && second.contains("id=\"users-first\""));

    // Read-only pages without forms; write pages and posts refused.
    let user00 = hub.get("/api/v1/users/user00").await;
    let user_page = format!("/console/users/{}", user00["id"].as_str().expect("id"));
    for path in ["/console/groups", "/console/attributes", user_page.as_str()] {
        let (status, _, html) = client.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !html.contains("<form method=\"post\" action=\"/console/groups")
                && !html.contains("<form method=\"post\" action=\"/console/attributes")
                && !html.contains("id=\"edit-user\"")
                && !html.contains("id=\"delete-user\""),
            "{path} shows write controls"
        );
    }
    let (status, _, _) = client.get("/console/users/new").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = client
        .post("/console/users", &[("username", "mallory"), ("active", "on")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = hub.call(Method::GET, "/api/v1/users/mallory", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    let (status, _, _) = client.post(&format!("{user_page}/deactivate"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(hub.get("/api/v1/users/user00").await["active"], json!(true));

    hub.stop().await;
}
