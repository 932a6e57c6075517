//! The console's "Import & reconcile" pages against a real hub and a real SCIM target
//! (scim2-server) pre-filled by hand, on SQLite and PostgreSQL: the import refused while the
//! feature is off (the service's words on the page), the settings form saved and bad values shown
//! beside their fields, a dry-run and a real import queued from the buttons and followed to their
//! run pages, the conflict queue with a refused and an accepted link, the schedule, and an auditor
//! who sees everything and changes nothing; in a real browser, a run page whose status part
//! refreshes itself until the run ends.

mod common;

use common::browser::Browser;
use common::console::{ConsoleClient, PASSWORD, account, log_in};
use common::referee::ScimTarget;
use common::{Backend, TestHub, eventually};
use provisio::domain::admin::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

backend_tests!(import_and_conflicts_through_the_console);

/// The `id` of a resource.
fn id(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_owned()
}

/// A directory user, through the JSON API; returns their id.
async fn user(hub: &TestHub, username: &str, email: &str) -> String {
    let body = json!({"username": username, "email": email, "given_name": username, "family_name": "Test"});
    id(&hub.post("/api/v1/users", body).await)
}

/// An account made by hand in the target; returns its id there.
async fn target_account(target: &ScimTarget, username: &str, email: &str) -> String {
    let created = target
        .create_user(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": username,
                            "emails": [{"value": email, "type": "work", "primary": true}], "active": true}),
        )
        .await;
    id(&created)
}

/// The table row of `html` whose opening tag holds `marker` (panics when there is none).
fn row<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no row with {marker} in:\n{html}"));
    let start = html[..at].rfind("<tr").expect("the row's start");
    let end = at + html[at..].find("</tr>").expect("the row's end");
    &html[start..end]
}

/// The text inside the element whose opening tag holds `marker`, up to the first closing tag
/// (tags in between dropped).
fn text_of(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("nothing with {marker} in:\n{html}"));
    let inner_start = at + html[at..].find('>').expect("the tag's end") + 1;
    let inner_end = html[inner_start..].find("</").map_or(html.len(), |i| inner_start + i);
    html[inner_start..inner_end]
        .split('<')
        .map(|part| part.split_once('>').map_or(part, |(_, text)| text))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Asserts that `html` holds `needle`, showing the page when it does not.
#[track_caller]
fn has(html: &str, needle: &str) {
    assert!(html.contains(needle), "{needle} is missing from:\n{html}");
}

/// Asserts that `html` does not hold `needle`.
#[track_caller]
fn lacks(html: &str, needle: &str) {
    assert!(!html.contains(needle), "{needle} should not be in:\n{html}");
}

/// A console visitor on one app's pages.
struct AppPages {
    client: ConsoleClient,
    /// `/console/apps/{id}`.
    base: String,
}

impl AppPages {
    async fn log_in(hub: &TestHub, username: &str, app_id: &str) -> Self {
        let mut client = ConsoleClient::new(hub);
        assert_eq!(client.log_in(username, PASSWORD).await.0, StatusCode::SEE_OTHER);
        Self {
            client,
            base: format!("/console/apps/{app_id}"),
        }
    }

    /// GETs a page under the app (or an absolute path); it must answer 200.
    async fn get(&mut self, page: &str) -> String {
        let under_app = || format!("{}/{page}", self.base);
        let path = page.strip_prefix('/').map_or_else(under_app, |_| page.to_owned());
        let (status, _, html) = self.client.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        html
    }

    /// POSTs `form` (`a=1&b=2`, as a browser encodes it) to a page under the app.
    async fn post(&mut self, page: &str, form: &str) -> (StatusCode, Option<String>, String) {
        let fields: Vec<(&str, &str)> = form
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .collect();
        self.client.post(&format!("{}/{page}", self.base), &fields).await
    }

    /// Queues a run from its button; returns the run page it leads to (after its notice).
    async fn start(&mut self, kind: &str, mode: &str) -> String {
        let (status, location, html) = self.post("imports/run", &format!("kind={kind}&mode={mode}")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        let location = location.expect("the run page");
        assert!(location.starts_with(&format!("{}/runs/", self.base)), "{location}");
        let first = self.get(&location).await;
        assert!(text_of(&first, "id=\"notice\"").contains("queued"), "{first}");
        location
    }

    /// Loads a run page until its run has ended; returns the page (the run must be done).
    async fn finished(&mut self, run_page: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let html = self.get(run_page).await;
            if html.contains("data-state=\"done\"") || html.contains("data-state=\"failed\"") {
                has(&html, "id=\"run-state\" data-state=\"done\"");
                return html;
            }
            assert!(Instant::now() < deadline, "the run did not end: {html}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn import_and_conflicts_through_the_console(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    let alice = user(&hub, "alice", "alice@example.com").await;
    let eve = user(&hub, "eve", "eve@example.com").await;
    let frank = user(&hub, "frank", "frank@example.com").await;
    let alice_account = target_account(&target, "alice", "a.smith@elsewhere.example").await; // by userName
    let eve_account = target_account(&target, "eve", "frank@example.com").await; // eve by name, frank by email
    target_account(&target, "zed", "zed@nowhere.example").await; // nobody
    let group = id(&hub.post("/api/v1/groups", json!({"name": "Imported"})).await);
    let app = hub
        .connect_app(json!({"name": "Legacy", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = id(&app);
    account(&hub, "ada", Role::Administrator).await;
    let mut ada = AppPages::log_in(&hub, "ada", &app_id).await;
    let base = ada.base.clone();

    // The tab, the note that the import feature is off, nothing run or scheduled yet.
    let html = ada.get("imports").await;
    let tab = format!("href=\"{base}/imports\" aria-current=\"page\">Import &#38; reconcile");
    has(&html, &tab);
    has(&html, "id=\"import-off\"");
    has(&html, "id=\"no-runs\"");
    has(&html, "id=\"next-import\">not scheduled");
    has(&html, "id=\"open-conflicts\" data-count=\"0\"");
    // Asking for an import anyway: the service's refusal on the page, nothing queued.
    let (status, _, html) = ada.post("imports/run", "kind=import&mode=dry_run").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let refusal = text_of(&html, "id=\"run-error\"");
    has(&refusal, "import feature of app");
    has(&refusal, "is off");
    assert_eq!(hub.get("/api/v1/apps/Legacy/runs").await, json!([]));
    let feature_on = json!({"features": {"import_users": true}});
    let (status, body) = hub.call(Method::PATCH, "/api/v1/apps/Legacy", Some(feature_on)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!ada.get("imports").await.contains("id=\"import-off\""));

    // The settings form, stored as sent.
    let form = format!(
        "match_on=userName&match_on=email&assign_group={group}&reconcile=fix_drift&import_every=off&reconcile_every=off"
    );
    let (status, location, html) = ada.post("imports/settings", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location, Some(format!("{base}/imports")));
    let saved = hub.get("/api/v1/apps/Legacy").await["sync"].clone();
    let expected = json!({"import": {"match_on": ["userName", "email"], "create_users": false, "assign_group": group, "create_groups": false},
                          "reconcile": "fix_drift", "import_every": "off", "reconcile_every": "off"});
    assert_eq!(saved, expected);
    let html = ada.get("imports").await;
    has(
        &html,
        "id=\"notice\">The import and reconciliation settings of Legacy were saved.",
    );
    assert!(html.contains("value=\"userName\" checked") && html.contains("value=\"email\" checked"));
    lacks(&html, "value=\"externalId\" checked");
    has(&html, &format!("<option value=\"{group}\" selected>Imported</option>"));
    has(&html, "<option value=\"fix_drift\" selected>");
    lacks(&html, "name=\"create_users\" value=\"on\" checked");

    // No attribute to match on: the service's message beside the field, the typed values kept.
    let form = "create_users=on&assign_group=&reconcile=fix_and_deprovision&import_every=weekly&reconcile_every=off";
    let (status, _, html) = ada.post("imports/settings", form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let message = text_of(&html, "id=\"match_on-error\"");
    assert!(message.contains("at least one account attribute"), "{message}");
    has(&html, "<option value=\"fix_and_deprovision\" selected>");
    has(&html, "<option value=\"weekly\" selected>");
    has(&html, "name=\"create_users\" value=\"on\" checked");
    has(&html, "<option value=\"\" selected>No group</option>");
    // An interval the form never offers, beside its own field.
    let form = "match_on=userName&reconcile=report_only&import_every=yearly&reconcile_every=off";
    let (status, _, html) = ada.post("imports/settings", form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        text_of(&html, "id=\"import_every-error\"").contains("how often"),
        "{html}"
    );
    assert_eq!(hub.get("/api/v1/apps/Legacy").await["sync"], saved, "nothing stored");

    // A dry-run import from its button, followed to its run page: each outcome, nothing applied.
    let dry = ada.start("import", "dry_run").await;
    let html = ada.finished(&dry).await;
    has(&html, "</span> Import, dry run: nothing changed.");
    has(&html, "id=\"run-accounts-read\">3<");
    has(&html, "id=\"run-counts\">conflict 1 · linked 1 · unmatched 1<");
    lacks(&html, "data-poll");
    let linked = row(&html, "data-account=\"alice\"");
    has(linked, "data-outcome=\"linked\"");
    let user_link = format!("<a href=\"/console/users/{alice}\" data-user=\"{alice}\">alice</a>");
    assert!(linked.contains(&user_link) && linked.contains(&format!("<code>{alice_account}</code>")));
    let conflict = row(&html, "data-account=\"eve\"");
    assert!(conflict.contains("data-outcome=\"conflict\"") && conflict.contains("2 directory users match"));
    let unmatched = row(&html, "data-account=\"zed\"");
    assert!(unmatched.contains("data-outcome=\"unmatched\"") && unmatched.contains("does not create users"));
    assert!(html.matches("<td>no</td>").count() == 3 && !html.contains("<td>yes</td>"));
    let fragment = ada.get(&format!("{dry}/progress")).await;
    assert!(fragment.contains("data-state=\"done\"") && fragment.contains("id=\"show-items\""));
    lacks(&fragment, "data-poll");
    assert_eq!(hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await, json!([]));

    // The real import: alice linked, the ambiguous account queued as a conflict.
    let real = ada.start("import", "apply").await;
    assert_ne!(real, dry);
    let html = ada.finished(&real).await;
    has(&html, "</span> Import, real run.");
    let linked = row(&html, "data-account=\"alice\"");
    assert!(linked.contains("data-outcome=\"linked\"") && linked.contains("<td>yes</td>"));
    assert!(row(&html, "data-account=\"eve\"").contains("data-outcome=\"conflict\""));
    let accounts = hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    assert_eq!(accounts[0]["user_id"], alice.as_str());
    assert_eq!(accounts[0]["target_id"], alice_account.as_str());
    let html = ada.get("imports").await;
    for run in [&dry, &real] {
        let listed = row(&html, &format!("href=\"{run}\""));
        has(listed, "data-status=\"done\"");
    }
    assert!(row(&html, &format!("href=\"{dry}\"")).contains("<td>dry run</td>"));
    has(&html, "id=\"open-conflicts\" data-count=\"1\"");

    // The conflict queue: the ambiguous account with both candidates.
    let conflict_id = id(&hub.get("/api/v1/apps/Legacy/conflicts?status=open").await[0]);
    let html = ada.get("conflicts").await;
    let open = row(&html, &format!("data-conflict=\"{conflict_id}\""));
    assert!(open.contains("data-account=\"eve\"") && open.contains(&format!("<code>{eve_account}</code>")));
    for (id, name) in [(&eve, "eve"), (&frank, "frank")] {
        has(open, &format!("<option value=\"{id}\">{name}</option>"));
    }
    lacks(open, &format!("<option value=\"{alice}\""));
    has(&html, "id=\"no-resolved\"");

    // An auditor sees the pages without forms; their posts are refused and change nothing.
    account(&hub, "audrey", Role::Auditor).await;
    let mut audrey = AppPages::log_in(&hub, "audrey", &app_id).await;
    for page in ["imports", real.as_str(), "conflicts"] {
        let html = audrey.get(page).await;
        has(&html, "<h1 id=\"app-name\">Legacy");
        lacks(&html, "method=\"post\" action=\"/console/apps");
    }
    let runs_before = hub.get("/api/v1/apps/Legacy/runs").await;
    let link = format!("conflicts/{conflict_id}");
    let to_eve = format!("action=link&user={eve}");
    for (page, form) in [
        (
            "imports/settings",
            "match_on=externalId&reconcile=fix_drift&import_every=hourly&reconcile_every=hourly",
        ),
        ("imports/run", "kind=reconcile&mode=apply"),
        (link.as_str(), to_eve.as_str()),
        (link.as_str(), "action=ignore"),
    ] {
        let (status, _, _) = audrey.post(page, form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    }
    assert_eq!(hub.get("/api/v1/apps/Legacy").await["sync"], saved);
    assert_eq!(hub.get("/api/v1/apps/Legacy/runs").await, runs_before);
    let still_open = hub.get("/api/v1/apps/Legacy/conflicts?status=open").await;
    assert_eq!(still_open[0]["id"], conflict_id.as_str());

    // Linking to a user who has an account already: the service's refusal beside the conflict.
    let (status, _, html) = ada.post(&link, "action=link&user=&other_user=alice").await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    let refused = row(&html, &format!("data-conflict=\"{conflict_id}\""));
    assert!(refused.contains("id=\"conflict-error\"") && refused.contains("already has an account"));
    has(refused, "value=\"alice\"");
    // Nobody chosen.
    let (status, _, html) = ada.post(&link, "action=link&user=&other_user= ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(text_of(&html, "id=\"conflict-error\"").contains("choose one of the candidates"));
    let open = hub.get("/api/v1/apps/Legacy/conflicts?status=open").await;
    assert_eq!(open.as_array().map(Vec::len), Some(1), "still open: {open}");

    // Linked to frank, one of its candidates, through the form.
    let (status, location, html) = ada.post(&link, &format!("action=link&user={frank}&other_user=")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location, Some(format!("{base}/conflicts")));
    let accounts = hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await;
    let of_frank = accounts
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["user_id"] == frank.as_str());
    assert_eq!(
        of_frank.map(|a| a["target_id"].clone()),
        Some(json!(eve_account)),
        "{accounts}"
    );
    let conflict = &hub.get("/api/v1/apps/Legacy/conflicts").await[0];
    assert_eq!(conflict["status"], "linked", "{conflict}");
    assert_eq!(conflict["resolved_user"], frank.as_str());
    let html = ada.get("conflicts").await;
    has(&html, "id=\"notice\">The account eve was linked to frank.");
    has(&html, "id=\"no-conflicts\"");
    let resolved = row(&html, &format!("data-conflict=\"{conflict_id}\""));
    assert!(resolved.contains("data-status=\"linked\"") && resolved.contains("linked to frank"));
    has(resolved, "admin:ada");
    lacks(resolved, "<form");

    // A schedule: a weekly reconciliation runs at once and is next due a week later.
    let form =
        format!("match_on=userName&assign_group={group}&reconcile=report_only&import_every=off&reconcile_every=weekly");
    assert_eq!(ada.post("imports/settings", &form).await.0, StatusCode::SEE_OTHER);
    eventually(60, "the scheduled reconciliation", || async {
        let runs = hub.get("/api/v1/apps/Legacy/runs").await;
        let ran = runs
            .as_array()
            .is_some_and(|runs| runs.iter().any(|r| r["cause"] == "schedule" && r["status"] == "done"));
        ran.then_some(())
    })
    .await;
    let html = ada.get("imports").await;
    has(&html, "id=\"next-import\">not scheduled");
    let next = text_of(&html, "id=\"next-reconcile\"");
    assert!(next.ends_with("UTC"), "{next}");
    has(&html, "data-kind=\"reconcile\"");
    hub.stop().await;
}

/// In a real browser: a run queued while its app is paused waits on its page, whose status part
/// refreshes itself (under the console's CSP) until the run ends, then leads to the items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_page_refreshes_until_the_run_ends() {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    target_account(&target, "stranger", "stranger@example.com").await;
    let app = hub
        .connect_app(json!({"name": "Wiki", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = id(&app);
    let (status, body) = hub.call(Method::POST, "/api/v1/apps/Wiki/pause", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    account(&hub, "ada", Role::Administrator).await;
    let mut browser = Browser::start().await;
    browser.timeout = Duration::from_secs(30);
    log_in(&browser, &hub, "ada", PASSWORD).await;

    browser
        .goto(&format!("{}/console/apps/{app_id}/imports", hub.base_url))
        .await;
    browser.click("#reconcile-dry-run").await;
    browser.wait_for_url("/runs/").await;
    let state = browser
        .wait_for_text("#run-state[data-state=\"queued\"]", "queued")
        .await;
    assert!(state.contains("Reconciliation, dry run"), "{state}");
    browser.wait_for("#no-items").await;
    // Still queued a while later: the paused app holds the run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser.wait_for("#run-state[data-state=\"queued\"]").await;

    let (status, body) = hub.call(Method::POST, "/api/v1/apps/Wiki/resume", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // No reload: the polled fragment shows the end of the run.
    let done = browser.wait_for_text("#run-state[data-state=\"done\"]", "done").await;
    assert!(done.contains("dry run"), "{done}");
    assert_eq!(browser.text("#run-accounts-read").await, "1");
    assert_eq!(browser.text("#run-counts").await, "extra 1 · in step 0");
    browser.click("#show-items").await;
    let item_row = "#run-items tr[data-account=\"stranger\"][data-outcome=\"extra\"]";
    let item = browser.wait_for_text(item_row, "stranger").await;
    assert!(item.contains("found by a dry run"), "{item}");
    browser.close().await;
    hub.stop().await;
}
