//! LDAP sources end to end: a hub on each database syncs a private OpenLDAP server (slapd) through
//! the admin API, an app on a real SCIM server (scim2-server) gets the accounts of a synced group,
//! and after LDAP changes (a user added, modified, renamed and moved, disabled, deleted; a
//! membership ended) the next sync brings the directory and the app in line with each. Wrong
//! settings (password, address, filter, unique id) get a clear error and change nothing.

mod common;

use common::referee::ScimTarget;
use common::slapd::{self, Slapd};
use common::{Backend, TestHub, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    directory_and_app_follow_the_source,
    incremental_syncs_read_what_changed,
    scheduled_syncs_and_deletion_after_the_grace_period,
    wrong_settings_change_nothing
);

/// Creates the source `name` over `server` (OpenLDAP preset, groups read, `employeeType:
/// disabled` marks a disabled user) with `settings` on top.
async fn create_source(
    hub: &TestHub,
    server: &Slapd,
    name: &str,
    password: &str,
    settings: Value,
) -> (StatusCode, Value) {
    let mut all = json!({
        "url": server.url(),
        "bind_dn": slapd::READER_DN,
        "user_base": slapd::BASE_DN,
        "group_base": slapd::GROUPS_DN,
        "disabled": {"kind": "attribute_equals", "attribute": "employeeType", "value": "disabled"},
        "delete_after_days": 30,
    });
    for (key, value) in settings.as_object().cloned().unwrap_or_default() {
        all[key] = value;
    }
    hub.call(
        Method::POST,
        "/api/v1/ldap-sources",
        Some(json!({"name": name, "preset": "openldap", "bind_password": password, "settings": all})),
    )
    .await
}

/// Queues a run (`syncs` or `test`) of `source` and waits for its end.
async fn run(hub: &TestHub, source: &str, what: &str) -> Value {
    let body = (what == "syncs").then(|| json!({}));
    run_with(hub, source, what, body).await
}

/// Queues an incremental sync of `source` and waits for its end.
async fn incremental(hub: &TestHub, source: &str) -> Value {
    run_with(hub, source, "syncs", Some(json!({"mode": "incremental"}))).await
}

async fn run_with(hub: &TestHub, source: &str, what: &str, body: Option<Value>) -> Value {
    let path = format!("/api/v1/ldap-sources/{source}/{what}");
    let (status, queued) = hub.call(Method::POST, &path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().expect("run id").to_owned();
    eventually(60, "the LDAP run to end", || async {
        let run = hub.get(&format!("/api/v1/ldap-runs/{id}")).await;
        matches!(run["status"].as_str(), Some("done" | "failed")).then_some(run)
    })
    .await
}

async fn user(hub: &TestHub, username: &str) -> Option<Value> {
    let (status, body) = hub.call(Method::GET, &format!("/api/v1/users/{username}"), None).await;
    (status == StatusCode::OK).then_some(body)
}

async fn member_names(hub: &TestHub, group: &str) -> Vec<String> {
    let page = hub.get(&format!("/api/v1/groups/{group}/members?limit=100")).await;
    let mut names: Vec<String> = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("members of {group}: {page}"))
        .iter()
        .filter_map(|u| u["username"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Whether the app's target holds an active account for `username` (`None`: no account).
async fn account(target: &ScimTarget, username: &str) -> Option<bool> {
    target.user(username).await.map(|u| u["active"] == json!(true))
}

async fn directory_and_app_follow_the_source(backend: Backend) {
    let server = Slapd::start();
    let staff = ["ann", "bob", "cy", "dan"].map(slapd::person_dn);
    server.add(&format!(
        "dn: ou=staff,{}\nobjectClass: organizationalUnit\nou: staff\n\n{}{}{}{}{}{}",
        slapd::BASE_DN,
        slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"),
        slapd::person_ldif("bob", "Bob", "Kim", "bob@example.org"),
        slapd::person_ldif("cy", "Cy", "Ng", "cy@example.org"),
        slapd::person_ldif("dan", "Dan", "Oh", "dan@example.org"),
        slapd::group_ldif("Staff", &staff),
        slapd::group_ldif("Sales", &[slapd::person_dn("cy")]),
    ));
    let hub = TestHub::start(backend).await;
    let (status, source) = create_source(&hub, &server, "corp", slapd::READER_PASSWORD, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert!(source.get("bind_password").is_none() && !source.to_string().contains(slapd::READER_PASSWORD));

    // A dry run plans and changes nothing.
    let (status, dry) = hub
        .call(
            Method::POST,
            "/api/v1/ldap-sources/corp/syncs",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{dry}");
    let dry_id = dry["id"].as_str().unwrap().to_owned();
    let dry = eventually(60, "the dry run", || async {
        let run = hub.get(&format!("/api/v1/ldap-runs/{dry_id}")).await;
        (run["status"] == "done").then_some(run)
    })
    .await;
    assert_eq!(dry["counts"]["users_created"], 4, "{dry}");
    assert!(user(&hub, "ann").await.is_none(), "a dry run creates nobody");
    let planned = hub.get(&format!("/api/v1/ldap-runs/{dry_id}/reports")).await;
    assert!(
        planned
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["username"] == "ann" && r["outcome"] == "dry_run"),
        "{planned}"
    );

    let first = run(&hub, "corp", "syncs").await;
    assert_eq!(first["status"], "done", "{first}");
    let counts = &first["counts"];
    assert_eq!(
        (counts["users_created"].as_u64(), counts["groups_created"].as_u64()),
        (Some(4), Some(2)),
        "{first}"
    );
    assert_eq!(counts["members_added"], 5, "{first}");
    let ann = user(&hub, "ann").await.expect("ann synced");
    assert_eq!(
        (ann["email"].as_str(), ann["source"].as_str()),
        (Some("ann@example.org"), Some("ldap"))
    );
    assert_eq!(ann["display_name"], "Ann Lee");
    assert_eq!(member_names(&hub, "Staff").await, ["ann", "bob", "cy", "dan"]);
    assert_eq!(member_names(&hub, "Sales").await, ["cy"]);
    // The change log names the source.
    let changes = hub.changes().await;
    assert!(changes.iter().any(|c| c["actor"] == "ldap:corp"), "{changes:?}");

    // What the source maps is read-only through the API; the rest is not.
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"email": "ann@elsewhere.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("email") && message.contains("LDAP source 'corp'"),
        "{body}"
    );
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"email": "ann@example.org", "formatted_name": "Ms Ann Lee"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an unchanged mapped value and an unmapped field pass: {body}"
    );
    let (status, body) = hub.call(Method::POST, "/api/v1/users/ann/deactivate", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = hub
        .call(Method::PATCH, "/api/v1/groups/Staff", Some(json!({"name": "Team"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(user(&hub, "ann").await.expect("ann")["email"], "ann@example.org");

    // Staff gets an app on scim2-server.
    let target = ScimTarget::start().await;
    let app = hub
        .connect_app(json!({"name": "App", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/policies", json!({"app": "App", "group": "Staff"}))
        .await;
    hub.settle(&app_id).await;
    for name in ["ann", "bob", "cy", "dan"] {
        assert_eq!(account(&target, name).await, Some(true), "{name} provisioned");
    }

    // The directory server changes: eve joins (and Staff), bob's email changes, ann is renamed
    // to anne and moved to ou=staff, cy is disabled, dan leaves Staff.
    server.add(&slapd::person_ldif("eve", "Eve", "Ma", "eve@example.org"));
    server.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\ndelete: member\nmember: {}\n\n\
         dn: {}\nchangetype: modify\nreplace: mail\nmail: robert@example.org\n\n\
         dn: {}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n\n\
         dn: {}\nchangetype: modrdn\nnewrdn: uid=anne\ndeleteoldrdn: 1\nnewsuperior: ou=staff,{}\n",
        slapd::group_dn("Staff"),
        slapd::person_dn("eve"),
        slapd::person_dn("dan"),
        slapd::person_dn("bob"),
        slapd::person_dn("cy"),
        slapd::person_dn("ann"),
        slapd::BASE_DN,
    ));

    let second = run(&hub, "corp", "syncs").await;
    assert_eq!(second["status"], "done", "{second}");
    // Added.
    assert!(user(&hub, "eve").await.is_some_and(|u| u["active"] == true));
    // Modified.
    assert_eq!(user(&hub, "bob").await.expect("bob")["email"], "robert@example.org");
    // Renamed and moved: the same user, under the new name.
    assert!(user(&hub, "ann").await.is_none());
    let anne = user(&hub, "anne").await.expect("ann renamed to anne");
    assert_eq!(anne["id"], ann["id"]);
    // Disabled.
    assert_eq!(user(&hub, "cy").await.expect("cy")["active"], false);
    // Membership: dan left Staff (and stays an active user), eve joined.
    assert_eq!(user(&hub, "dan").await.expect("dan")["active"], true);
    assert_eq!(member_names(&hub, "Staff").await, ["anne", "bob", "cy", "eve"]);

    // The app followed each change.
    hub.settle(&app_id).await;
    assert_eq!(account(&target, "eve").await, Some(true), "eve provisioned");
    let bob_account = target.user("bob").await.expect("bob's account");
    assert!(bob_account.to_string().contains("robert@example.org"), "{bob_account}");
    assert_eq!(
        account(&target, "anne").await,
        Some(true),
        "ann's account renamed to anne"
    );
    assert_eq!(account(&target, "ann").await, None, "no second account for anne");
    assert_eq!(account(&target, "cy").await, Some(false), "cy deactivated");
    assert_eq!(account(&target, "dan").await, Some(false), "dan deprovisioned");

    // Deleted from LDAP: deactivated in the hub, and in the app.
    server.modify(&format!("dn: {}\nchangetype: delete\n", slapd::person_dn("bob")));
    let third = run(&hub, "corp", "syncs").await;
    assert_eq!(third["counts"]["users_deactivated"], 1, "{third}");
    assert_eq!(user(&hub, "bob").await.expect("bob kept")["active"], false);
    hub.settle(&app_id).await;
    assert_eq!(account(&target, "bob").await, Some(false), "bob deactivated in the app");

    // Every run and its outcomes are in the provisioning reports, searchable by user and source.
    let reports = hub.get("/api/v1/reports?user=bob").await;
    let items = reports["items"].as_array().expect("report items");
    assert!(
        items
            .iter()
            .any(|r| r["app_name"] == "corp" && r["operation"] == "deactivate"),
        "{reports}"
    );
    let runs = hub.get("/api/v1/ldap-sources/corp/runs").await;
    assert_eq!(runs.as_array().map(Vec::len), Some(4), "{runs}");
    hub.stop().await;
}

async fn incremental_syncs_read_what_changed(backend: Backend) {
    let server = Slapd::start();
    let people: String = ["ann", "bob", "cy", "dan"]
        .iter()
        .map(|uid| slapd::person_ldif(uid, "Pat", uid, &format!("{uid}@example.org")))
        .collect();
    server.add(&people);
    // modifyTimestamp has whole seconds, and an incremental sync reads again the entries of the
    // latest second it saw (a change later in that second must not be missed): the group goes in
    // a second after the people, so that the people are not read again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.add(&slapd::group_ldif("Staff", &[slapd::person_dn("ann")]));
    let hub = TestHub::start(backend).await;
    let (status, body) = create_source(&hub, &server, "corp", slapd::READER_PASSWORD, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Before any sync an incremental sync reads everything.
    let first = incremental(&hub, "corp").await;
    assert_eq!(
        (first["status"].as_str(), first["counts"]["users_created"].as_u64()),
        (Some("done"), Some(4)),
        "{first}"
    );

    let unchanged = incremental(&hub, "corp").await;
    assert_eq!(
        unchanged["counts"]["users_read"], 0,
        "only entries changed since: {unchanged}"
    );
    assert_eq!(
        unchanged["counts"]["groups_read"], 1,
        "the group of the latest second: {unchanged}"
    );
    assert_eq!(unchanged["counts"]["users_deactivated"], 0, "{unchanged}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    server.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: robert@example.org\n\n\
         dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n\
         dn: {}\nchangetype: delete\n",
        slapd::person_dn("bob"),
        slapd::group_dn("Staff"),
        slapd::person_dn("cy"),
        slapd::person_dn("dan"),
    ));
    let changed = incremental(&hub, "corp").await;
    let counts = &changed["counts"];
    assert_eq!(changed["status"], "done", "{changed}");
    let read = counts["users_read"].as_u64().unwrap_or(0);
    assert!(
        (1..=2).contains(&read),
        "bob (and cy, whose memberOf changed): {changed}"
    );
    assert_eq!(counts["users_updated"], 1, "{changed}");
    assert_eq!(counts["users_deactivated"], 1, "dan, gone: {changed}");
    assert_eq!(counts["members_added"], 1, "{changed}");
    assert_eq!(user(&hub, "bob").await.expect("bob")["email"], "robert@example.org");
    assert_eq!(user(&hub, "dan").await.expect("dan")["active"], false);
    assert_eq!(member_names(&hub, "Staff").await, ["ann", "cy"]);
    hub.stop().await;
}

/// Waits until `source` has `count` runs queued by its schedule, the newest done; returns it.
async fn scheduled_run(hub: &TestHub, source: &str, count: usize) -> Value {
    let path = format!("/api/v1/ldap-sources/{source}/runs");
    eventually(30, "a scheduled sync", || async {
        let runs = hub.get(&path).await;
        let scheduled: Vec<Value> = runs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["cause"] == "schedule")
            .cloned()
            .collect();
        (scheduled.len() == count && scheduled[0]["status"] == "done").then(|| scheduled[0].clone())
    })
    .await
}

async fn scheduled_syncs_and_deletion_after_the_grace_period(backend: Backend) {
    let server = Slapd::start();
    server.add(&format!(
        "{}{}",
        slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"),
        slapd::person_ldif("bob", "Bob", "Kim", "bob@example.org")
    ));
    let hub = TestHub::start(backend).await;
    let (status, body) = create_source(
        &hub,
        &server,
        "corp",
        slapd::READER_PASSWORD,
        json!({"sync_every_minutes": 60, "delete_after_days": 7}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The first scheduled sync is an hour away: make it due now.
    let due = "UPDATE ldap_sources SET next_sync_at = 0";
    hub.store.execute_raw(due).await.expect("make the sync due");
    let first = scheduled_run(&hub, "corp", 1).await;
    assert_eq!(first["counts"]["users_created"], 2, "{first}");
    assert_eq!(first["mode"], "incremental", "the source has a change marker: {first}");
    // Queued once: the next one is an hour later again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let runs = hub.get("/api/v1/ldap-sources/corp/runs").await;
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");

    // bob leaves the directory: the next scheduled sync deactivates him.
    server.modify(&format!("dn: {}\nchangetype: delete\n", slapd::person_dn("bob")));
    hub.store.execute_raw(due).await.expect("make the sync due");
    let second = scheduled_run(&hub, "corp", 2).await;
    assert_eq!(second["counts"]["users_deactivated"], 1, "{second}");
    assert_eq!(user(&hub, "bob").await.expect("bob kept")["active"], false);
    let synced = run(&hub, "corp", "syncs").await;
    assert_eq!(
        synced["counts"]["users_deleted"], 0,
        "within the grace period: {synced}"
    );

    // Eight days later (the clock made short by backdating when he went missing), he is deleted.
    let eight_days = 8 * 86_400 * 1_000_000_i64;
    hub.store
        .execute_raw(&format!(
            "UPDATE ldap_links SET gone_since = gone_since - {eight_days} WHERE gone_since IS NOT NULL"
        ))
        .await
        .expect("backdate");
    let deleted = run(&hub, "corp", "syncs").await;
    assert_eq!(deleted["counts"]["users_deleted"], 1, "{deleted}");
    assert!(user(&hub, "bob").await.is_none(), "bob deleted");
    assert!(user(&hub, "ann").await.is_some_and(|u| u["active"] == true));
    hub.stop().await;
}

async fn wrong_settings_change_nothing(backend: Backend) {
    let mut server = Slapd::start();
    server.add(&slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"));
    let hub = TestHub::start(backend).await;

    // Refused when saved, with the field named.
    let (status, body) = create_source(&hub, &server, "bad-filter", "x", json!({"user_filter": "(uid=ann"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("user_filter"), "{body}");
    let (status, body) = create_source(&hub, &server, "bad-url", "x", json!({"url": "http://127.0.0.1"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = create_source(&hub, &server, "typo", "x", json!({"user_bsae": "dc=x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let sources = hub.get("/api/v1/ldap-sources").await;
    assert_eq!(sources, json!([]), "nothing stored");

    // Wrong password: the test and the sync fail with the server's reason, and nothing changes.
    let (status, _) = create_source(&hub, &server, "wrong-password", "not-it", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let test = run(&hub, "wrong-password", "test").await;
    assert_eq!(test["status"], "failed", "{test}");
    assert!(
        test["error"].as_str().unwrap_or("").contains("invalid credentials"),
        "{test}"
    );
    let sync = run(&hub, "wrong-password", "syncs").await;
    assert_eq!(sync["status"], "failed", "{sync}");

    // A unique id attribute the entries lack.
    let (status, _) = create_source(
        &hub,
        &server,
        "no-id",
        slapd::READER_PASSWORD,
        json!({"unique_id": "employeeNumber"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let sync = run(&hub, "no-id", "syncs").await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert!(
        sync["error"].as_str().unwrap_or("").contains("employeeNumber"),
        "{sync}"
    );

    // The right settings pass the test and count what they find.
    let (status, _) = create_source(&hub, &server, "good", slapd::READER_PASSWORD, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let test = run(&hub, "good", "test").await;
    assert_eq!(test["status"], "done", "{test}");
    assert_eq!(test["counts"]["users_read"], 1, "{test}");

    // The server is down.
    server.stop();
    let sync = run(&hub, "good", "syncs").await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert!(
        sync["error"].as_str().unwrap_or("").contains("refused the connection"),
        "{sync}"
    );

    assert!(user(&hub, "ann").await.is_none(), "no failed run created anyone");
    let users = hub.get("/api/v1/users").await;
    assert_eq!(users["items"], json!([]), "{users}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_tests_and_syncs_a_source() {
    let server = Slapd::start();
    server.add(&slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"));
    let hub = TestHub::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{}\n", slapd::READER_PASSWORD)).expect("password file");
    let url = server.url();
    let password = password.display().to_string();
    let created = common::ok(hub.cli(&[
        "ldap-sources",
        "create",
        "corp",
        "--preset",
        "openldap",
        "--url",
        &url,
        "--bind-dn",
        slapd::READER_DN,
        "--user-base",
        slapd::PEOPLE_DN,
        "--set",
        "page_size=100",
        "--password-file",
        &password,
    ]));
    assert!(
        created.contains("corp") && !created.contains(slapd::READER_PASSWORD),
        "{created}"
    );
    let tested = common::ok(hub.cli(&["ldap-sources", "test", "corp"]));
    assert!(tested.contains("1 users"), "{tested}");
    let planned = common::ok(hub.cli(&["ldap-sources", "sync", "corp", "--dry-run"]));
    assert!(
        planned.contains("create") && planned.contains("ann") && planned.contains("dry_run"),
        "{planned}"
    );
    assert!(user(&hub, "ann").await.is_none(), "the dry run changed nothing");
    let synced = common::ok(hub.cli(&["ldap-sources", "sync", "corp"]));
    assert!(synced.contains("1 created"), "{synced}");
    assert!(user(&hub, "ann").await.is_some());
    let listed = common::ok(hub.cli(&["ldap-sources", "list"]));
    assert!(listed.contains("corp") && listed.contains(&url), "{listed}");

    // A wrong password: the test fails with the server's reason and a non-zero exit status.
    std::fs::write(dir.path().join("wrong"), "not-it\n").expect("file");
    let wrong = dir.path().join("wrong").display().to_string();
    common::ok(hub.cli(&["ldap-sources", "update", "corp", "--password-file", &wrong]));
    let failed = hub.cli(&["ldap-sources", "test", "corp"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("invalid credentials"), "{stderr}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_adds_tests_and_syncs_a_source() {
    use common::console::{ConsoleClient, PASSWORD, account};
    use provisio::domain::admin::Role;
    let server = Slapd::start();
    server.add(&slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"));
    let hub = TestHub::start(Backend::Sqlite).await;
    account(&hub, "root", Role::Administrator).await;
    account(&hub, "audrey", Role::Auditor).await;
    let mut console = ConsoleClient::new(&hub);
    console.log_in("root", PASSWORD).await;
    let (status, _, page) = console.get("/console/ldap-sources").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("No LDAP source yet") && page.contains("id=\"create-source\""),
        "{page}"
    );

    // A wrong URL is shown beside the form, with the typed values kept but not the password.
    let url = server.url();
    let mut fields = vec![
        ("name", "corp"),
        ("preset", "openldap"),
        ("url", "http://nowhere"),
        ("bind_dn", slapd::READER_DN),
        ("bind_password", slapd::READER_PASSWORD),
        ("user_base", slapd::PEOPLE_DN),
    ];
    let (status, _, page) = console.post("/console/ldap-sources", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("ldap://") && page.contains(slapd::PEOPLE_DN), "{page}");
    assert!(
        !page.contains(slapd::READER_PASSWORD),
        "the password is never sent back"
    );
    fields[2] = ("url", &url);
    let (status, location, page) = console.post("/console/ldap-sources", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location.as_deref(), Some("/console/ldap-sources"));

    let source = hub.get("/api/v1/ldap-sources/corp").await;
    let id = source["id"].as_str().expect("id").to_owned();
    let (status, _, _) = console
        .post(&format!("/console/ldap-sources/{id}/runs"), &[("run", "sync")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually(30, "ann synced", || async { user(&hub, "ann").await }).await;
    let runs = format!("/api/v1/ldap-sources/{id}/runs");
    eventually(30, "the run done", || async {
        let runs = hub.get(&runs).await;
        (runs[0]["status"] == "done").then_some(())
    })
    .await;
    let (_, _, page) = console.get("/console/ldap-sources").await;
    assert!(page.contains("badge ok\">done"), "{page}");
    assert!(page.contains("users +1"), "{page}");

    // An auditor reads the page but sees no form and cannot queue a run.
    let mut auditor = ConsoleClient::new(&hub);
    auditor.log_in("audrey", PASSWORD).await;
    let (status, _, page) = auditor.get("/console/ldap-sources").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("corp") && !page.contains("id=\"create-source\""),
        "{page}"
    );
    let (status, _, _) = auditor
        .post(&format!("/console/ldap-sources/{id}/runs"), &[("run", "sync")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hub.stop().await;
}
