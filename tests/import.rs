//! Importing an app's accounts and reconciling the hub with what the app holds, against a real
//! scim2-server pre-filled and changed by hand, on SQLite and PostgreSQL: the match rule's
//! outcomes (linked, created, conflict, unmatched), the dry run predicting the real run, the
//! conflict queue, each kind of drift found, fixed when asked and left alone in report-only
//! mode, and paging through targets that page badly.

mod common;

use common::referee::{Faults, Proxy, ScimTarget};
use common::{Backend, TestHub, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

backend_tests!(
    import_links_creates_and_queues_conflicts_as_the_rule_says,
    reconciliation_finds_each_drift_and_fixes_it_only_when_asked,
    paging_survives_short_pages_ignored_counts_and_a_shrinking_listing,
    the_cli_imports_reconciles_and_works_the_conflict_queue,
    scheduled_runs_are_queued_on_time_once_per_period,
    a_due_run_is_queued_by_one_node_only,
);

/// Waits for a run to end; returns it (it must have ended `done`).
async fn finished(hub: &TestHub, run: &Value) -> Value {
    let id = run["id"].as_str().expect("run id").to_owned();
    let run = eventually(60, "the run to end", || async {
        let run = hub.get(&format!("/api/v1/runs/{id}")).await;
        matches!(run["status"].as_str(), Some("done" | "failed")).then_some(run)
    })
    .await;
    assert_eq!(run["status"], "done", "{run}");
    run
}

async fn items(hub: &TestHub, run: &Value) -> Vec<Value> {
    let id = run["id"].as_str().expect("run id");
    hub.get(&format!("/api/v1/runs/{id}/items?limit=10000"))
        .await
        .as_array()
        .cloned()
        .expect("items")
}

/// Outcome by the account's userName.
fn outcomes(items: &[Value]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| {
            (
                i["target_username"].as_str().unwrap_or_default().to_owned(),
                i["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn user(hub: &TestHub, username: &str, email: &str) -> Value {
    hub.post(
        "/api/v1/users",
        json!({"username": username, "email": email, "given_name": username, "family_name": "Test"}),
    )
    .await
}

async fn import_links_creates_and_queues_conflicts_as_the_rule_says(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    let alice = user(&hub, "alice", "alice@example.com").await;
    let bob = user(&hub, "bob", "bob@example.com").await;
    user(&hub, "eve", "eve@example.com").await;
    let frank = user(&hub, "frank", "frank@example.com").await;
    user(&hub, "carol", "carol@example.com").await;
    let account = |name: &str, email: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "emails": [{"value": email, "type": "work", "primary": true}], "active": true})
    };
    let in_target = [
        target.create_user(account("ALICE", "a.smith@elsewhere.example")).await, // userName, other case
        target.create_user(account("robert", "Bob@Example.com")).await,          // email only
        target.create_user(account("zed", "zed@example.com")).await,             // nobody: created
        target.create_user(account("eve", "frank@example.com")).await,           // eve by name, frank by email
        target.create_user(account("weird", "not an address")).await,            // nobody, and no valid user
    ];
    let app = hub
        .connect_app(json!({"name": "Legacy", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();

    // The import feature is off by default: a clear refusal, nothing queued.
    let (status, body) = hub
        .call(Method::POST, "/api/v1/apps/Legacy/imports", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("import feature"),
        "{body}"
    );
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/Legacy",
            Some(json!({"features": {"import_users": true},
                        "sync": {"import": {"match_on": ["userName", "email"], "create_users": true}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The dry run plans each outcome and changes nothing.
    let users_before = hub.get("/api/v1/users?limit=100").await["items"]
        .as_array()
        .unwrap()
        .len();
    let dry = hub.post("/api/v1/apps/Legacy/imports", json!({"dry_run": true})).await;
    let dry = finished(&hub, &dry).await;
    let planned = items(&hub, &dry).await;
    let expected: BTreeMap<String, String> = [
        ("ALICE", "linked"),
        ("robert", "linked"),
        ("zed", "created"),
        ("eve", "conflict"),
        ("weird", "unmatched"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(outcomes(&planned), expected);
    assert_eq!(dry["accounts_read"], 5);
    assert!(planned.iter().all(|i| i["applied"] == false));
    assert_eq!(hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await, json!([]));
    assert_eq!(
        hub.get("/api/v1/users?limit=100").await["items"]
            .as_array()
            .unwrap()
            .len(),
        users_before
    );
    assert_eq!(hub.get("/api/v1/apps/Legacy/conflicts").await, json!([]));

    // The real run does exactly what the dry run said.
    let real = hub.post("/api/v1/apps/Legacy/imports", json!({})).await;
    let real = finished(&hub, &real).await;
    let done = items(&hub, &real).await;
    assert_eq!(outcomes(&done), expected);
    let key = |i: &Value| (i["target_id"].clone(), i["outcome"].clone(), i["seq"].clone());
    assert_eq!(
        planned.iter().map(key).collect::<Vec<_>>(),
        done.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(
        real["counts"],
        json!({"linked": 2, "created": 1, "conflict": 1, "unmatched": 1})
    );
    let linked_to = |name: &str| done.iter().find(|i| i["target_username"] == name).unwrap()["user_id"].clone();
    assert_eq!(linked_to("ALICE"), alice["id"]);
    assert_eq!(linked_to("robert"), bob["id"]);

    let accounts = hub.get(&format!("/api/v1/apps/{app_id}/accounts")).await;
    let by_user: BTreeMap<String, String> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["user_id"].as_str().unwrap().to_owned(),
                a["target_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(by_user.len(), 3, "{accounts}");
    assert_eq!(
        by_user[alice["id"].as_str().unwrap()],
        in_target[0]["id"].as_str().unwrap()
    );
    assert_eq!(
        by_user[bob["id"].as_str().unwrap()],
        in_target[1]["id"].as_str().unwrap()
    );
    let zed = hub.get("/api/v1/users/zed").await;
    assert_eq!(zed["source"], "import");
    assert_eq!(zed["email"], "zed@example.com");
    assert_eq!(
        by_user[zed["id"].as_str().unwrap()],
        in_target[2]["id"].as_str().unwrap()
    );
    assert!(hub.call(Method::GET, "/api/v1/users/weird", None).await.0 == StatusCode::NOT_FOUND);

    // The conflict waits for an administrator, with both candidates.
    let conflicts = hub.get("/api/v1/apps/Legacy/conflicts?status=open").await;
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["target_id"], in_target[3]["id"]);
    assert_eq!(conflicts[0]["candidates"].as_array().unwrap().len(), 2);

    // Every outcome is in the provisioning reports.
    let reports = hub.get(&format!("/api/v1/reports?app={app_id}&limit=100")).await;
    let operations: BTreeSet<String> = reports["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    for operation in ["link", "import", "conflict", "skip"] {
        assert!(
            operations.contains(operation),
            "{operation} missing from {operations:?}"
        );
    }

    // Linking the conflict to frank; a user with an account already is refused.
    let conflict_id = conflicts[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = hub
        .call(
            Method::POST,
            &format!("/api/v1/apps/Legacy/conflicts/{conflict_id}"),
            Some(json!({"action": "link", "user": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let resolved = hub
        .post(
            &format!("/api/v1/apps/Legacy/conflicts/{conflict_id}"),
            json!({"action": "link", "user": "frank"}),
        )
        .await;
    assert_eq!(resolved["status"], "linked");
    assert_eq!(resolved["resolved_user"], frank["id"]);

    // A second import finds everything linked, and creates nothing again.
    let again = hub.post("/api/v1/apps/Legacy/imports", json!({})).await;
    let again = finished(&hub, &again).await;
    assert_eq!(again["counts"], json!({"already_linked": 4, "unmatched": 1}));
    assert_eq!(target.users().await.len(), 5, "an import never writes to the target");
    hub.stop().await;
}

async fn reconciliation_finds_each_drift_and_fixes_it_only_when_asked(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    hub.connect_app(
        json!({"name": "Wiki", "base_url": target.base_url, "token": target.token,
                           "features": {"push_groups": true}}),
    )
    .await;
    let app_id = hub.get("/api/v1/apps/Wiki").await["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Wiki Users"})).await;
    hub.post("/api/v1/policies", json!({"app": "Wiki", "group": "Wiki Users"}))
        .await;
    for name in ["ann", "ben", "cat", "dan"] {
        user(&hub, name, &format!("{name}@example.com")).await;
        let (status, _) = hub
            .call(
                Method::PUT,
                &format!("/api/v1/groups/Wiki%20Users/members/{name}"),
                None,
            )
            .await;
        assert!(status.is_success());
    }
    hub.settle(&app_id).await;
    assert_eq!(target.users().await.len(), 4);

    // Changes made by hand in the app.
    let id_of = |users: &[Value], name: &str| {
        users.iter().find(|u| u["userName"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let users = target.users().await;
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let (status, _) = target
        .request(
            Method::PATCH,
            &format!("/Users/{}", id_of(&users, "ben")),
            Some(patch(
                json!([{"op": "replace", "path": "name.givenName", "value": "Benjamin"}]),
            )),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = target
        .request(
            Method::PATCH,
            &format!("/Users/{}", id_of(&users, "cat")),
            Some(patch(json!([{"op": "replace", "path": "active", "value": false}]))),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = target
        .request(Method::DELETE, &format!("/Users/{}", id_of(&users, "dan")), None)
        .await;
    assert!(status.is_success());
    target
        .create_user(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "stranger", "active": true}),
        )
        .await;
    let group = target.groups().await.into_iter().next().expect("the pushed group");
    let (status, _) = target
        .request(
            Method::PATCH,
            &format!("/Groups/{}", group["id"].as_str().unwrap()),
            Some(patch(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", id_of(&users, "ann"))}]),
            )),
        )
        .await;
    assert!(status.is_success());
    let snapshot = |users: Vec<Value>| -> BTreeMap<String, Value> {
        users
            .into_iter()
            .map(|mut u| {
                u.as_object_mut().unwrap().remove("meta");
                (u["id"].as_str().unwrap().to_owned(), u)
            })
            .collect()
    };
    let changed = snapshot(target.users().await);
    let changed_groups = target.groups().await;

    // Report only: every kind is found; the target is untouched.
    let report = hub.post("/api/v1/apps/Wiki/reconciliations", json!({})).await;
    let report = finished(&hub, &report).await;
    let found = items(&hub, &report).await;
    let kinds: BTreeMap<String, String> = found
        .iter()
        .map(|i| {
            (
                i["target_username"].as_str().unwrap_or_default().to_owned(),
                i["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(kinds.get("ben").map(String::as_str), Some("drifted"), "{found:?}");
    assert_eq!(kinds.get("cat").map(String::as_str), Some("wrong_active"), "{found:?}");
    assert_eq!(kinds.get("dan").map(String::as_str), Some("missing"), "{found:?}");
    assert_eq!(kinds.get("stranger").map(String::as_str), Some("extra"), "{found:?}");
    assert_eq!(
        kinds.get("Wiki Users").map(String::as_str),
        Some("membership"),
        "{found:?}"
    );
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(found.iter().all(|i| i["applied"] == false));
    let drifted = found.iter().find(|i| i["outcome"] == "drifted").unwrap();
    assert_eq!(drifted["detail"]["attributes"], json!(["name.givenName"]));
    // The app's setting is report-only: asking to apply changes nothing either.
    let applied = hub
        .post("/api/v1/apps/Wiki/reconciliations", json!({"apply": true}))
        .await;
    let applied = finished(&hub, &applied).await;
    assert_eq!(applied["apply"], "report_only");
    assert_eq!(items(&hub, &applied).await.len(), 5);
    hub.settle(&app_id).await;
    assert_eq!(
        snapshot(target.users().await),
        changed,
        "report-only left the target as it was"
    );
    assert_eq!(target.groups().await, changed_groups);

    // Fix drift: the hub's state goes back; the extra account stays.
    hub.call(
        Method::PATCH,
        "/api/v1/apps/Wiki",
        Some(json!({"sync": {"reconcile": "fix_drift"}})),
    )
    .await;
    let fixed = hub
        .post("/api/v1/apps/Wiki/reconciliations", json!({"apply": true}))
        .await;
    let fixed = finished(&hub, &fixed).await;
    let fixed_items = items(&hub, &fixed).await;
    assert_eq!(
        fixed_items.iter().filter(|i| i["applied"] == true).count(),
        4,
        "{fixed_items:?}"
    );
    hub.settle(&app_id).await;
    let now = target.users().await;
    let named = |name: &str| now.iter().find(|u| u["userName"] == name).cloned();
    assert_eq!(
        named("ben").unwrap()["name"]["givenName"],
        "ben",
        "the hand-made name is undone"
    );
    assert_eq!(named("cat").unwrap()["active"], true);
    assert!(named("dan").is_some(), "the deleted account is created again");
    assert_eq!(
        named("stranger").unwrap()["active"],
        true,
        "fix_drift leaves extra accounts alone"
    );
    let members: BTreeSet<String> = target.groups().await[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    assert!(members.contains(&id_of(&now, "ann")), "ann is a member again");
    assert_eq!(members.len(), 4);

    // Fix and deprovision: the extra account is deactivated; then nothing is left to find.
    hub.call(
        Method::PATCH,
        "/api/v1/apps/Wiki",
        Some(json!({"sync": {"reconcile": "fix_and_deprovision"}})),
    )
    .await;
    let last = hub
        .post("/api/v1/apps/Wiki/reconciliations", json!({"apply": true}))
        .await;
    let last = finished(&hub, &last).await;
    assert_eq!(
        outcomes(&items(&hub, &last).await),
        BTreeMap::from([("stranger".to_owned(), "extra".to_owned())])
    );
    hub.settle(&app_id).await;
    assert_eq!(target.user("stranger").await.unwrap()["active"], false);
    let clean = hub.post("/api/v1/apps/Wiki/reconciliations", json!({})).await;
    let clean = finished(&hub, &clean).await;
    assert_eq!(items(&hub, &clean).await, Vec::<Value>::new(), "{clean}");
    assert_eq!(clean["counts"]["in_step"], 4);
    hub.stop().await;
}

async fn paging_survives_short_pages_ignored_counts_and_a_shrinking_listing(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    for i in 0..130 {
        target
            .create_user(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("p{i:03}")}),
            )
            .await;
    }
    hub.connect_app(
        json!({"name": "Paged", "base_url": proxy.base_url, "token": target.token,
                           "features": {"import_users": true}}),
    )
    .await;
    let read_ids = |items: Vec<Value>| -> BTreeSet<String> {
        items
            .iter()
            .map(|i| i["target_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let held = |users: Vec<Value>| -> BTreeSet<String> {
        users.iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect()
    };
    for (faults, what) in [
        (
            Faults {
                page_cap: Some(7),
                ..Default::default()
            },
            "seven items a page whatever was asked",
        ),
        (
            Faults {
                ignore_count: true,
                ..Default::default()
            },
            "count ignored: everything on one page",
        ),
        (
            Faults {
                page_cap: Some(40),
                shrink_after_first_page: 25,
                ..Default::default()
            },
            "25 accounts deleted after the first page",
        ),
    ] {
        proxy.set(faults);
        let run = hub.post("/api/v1/apps/Paged/imports", json!({"dry_run": true})).await;
        let run = finished(&hub, &run).await;
        let expected = held(target.users().await);
        assert_eq!(read_ids(items(&hub, &run).await), expected, "{what}");
        assert_eq!(run["accounts_read"].as_u64(), Some(expected.len() as u64), "{what}");
        assert_eq!(run["warning"], Value::Null, "{what}: {run}");
    }
    assert_eq!(target.users().await.len(), 105);
    let pages: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("startIndex="))
        .collect();
    assert!(
        pages.len() > 130 / 7,
        "the short pages were read one by one: {}",
        pages.len()
    );
    hub.stop().await;
}

async fn the_cli_imports_reconciles_and_works_the_conflict_queue(backend: Backend) {
    use common::ok;
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    for name in ["alice", "eve", "frank"] {
        user(&hub, name, &format!("{name}@example.com")).await;
    }
    for (name, email) in [("Alice", "alice@example.com"), ("eve", "frank@example.com")] {
        target
            .create_user(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
                                "emails": [{"value": email, "type": "work"}]}),
            )
            .await;
    }
    hub.connect_app(json!({"name": "Cli", "base_url": target.base_url, "token": target.token}))
        .await;

    ok(hub.cli(&[
        "apps",
        "update",
        "Cli",
        "--enable",
        "import",
        "--match-on",
        "userName,email",
        "--reconcile",
        "fix_drift",
    ]));
    let shown = ok(hub.cli(&["apps", "show", "Cli"]));
    assert!(
        shown.contains("userName, email") && shown.contains("fix_drift"),
        "{shown}"
    );
    let refused = hub.cli(&["apps", "update", "Cli", "--reconcile", "sometimes"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("fix_and_deprovision"));

    let planned = ok(hub.cli(&["import", "--app", "Cli", "--dry-run"]));
    assert!(planned.contains("dry run: nothing changed"), "{planned}");
    assert!(planned.contains("linked") && planned.contains("conflict"), "{planned}");
    assert_eq!(hub.get("/api/v1/apps/Cli/accounts").await, json!([]));

    let imported = ok(hub.cli(&["import", "--app", "Cli"]));
    assert!(imported.contains("ran import of 2 accounts"), "{imported}");
    let listed: Value = serde_json::from_str(&ok(hub.cli(&["conflicts", "list", "--app", "Cli", "--json"]))).unwrap();
    let conflict = listed[0]["id"].as_str().expect("one open conflict").to_owned();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let linked = ok(hub.cli(&["conflicts", "link", "--app", "Cli", &conflict, "frank"]));
    assert!(linked.contains("linked account eve to user frank"), "{linked}");
    let again = hub.cli(&["conflicts", "ignore", "--app", "Cli", &conflict]);
    assert!(!again.status.success(), "a resolved conflict cannot be resolved again");
    assert_eq!(hub.get("/api/v1/apps/Cli/accounts").await.as_array().unwrap().len(), 2);

    let report = ok(hub.cli(&["reconcile", "--app", "Cli", "--json"]));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["run"]["status"], "done");
    assert_eq!(report["run"]["dry_run"], true);
    assert_eq!(report["items"], json!([]), "both accounts are known to the hub");
    hub.stop().await;
}

async fn scheduled_runs_are_queued_on_time_once_per_period(backend: Backend) {
    let target = ScimTarget::start().await;
    // A short lease makes the engine look for due runs every second.
    let hub = TestHub::start_configured(backend, |config| {
        config.workers.lease = std::time::Duration::from_secs(4)
    })
    .await;
    hub.connect_app(
        json!({"name": "Timed", "base_url": target.base_url, "token": target.token,
                           "features": {"import_users": true}}),
    )
    .await;
    let scheduled = |runs: &Value, kind: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["cause"] == "schedule" && r["kind"] == kind)
            .count()
    };
    assert_eq!(
        hub.get("/api/v1/apps/Timed/schedule").await,
        json!({"next_import_at": null, "next_reconcile_at": null})
    );
    hub.call(
        Method::PATCH,
        "/api/v1/apps/Timed",
        Some(json!({"sync": {"import_every": "hourly", "reconcile_every": "daily"}})),
    )
    .await;
    // Switched on, each runs at once, then not again within the period.
    let runs = eventually(20, "the scheduled runs", || async {
        let runs = hub.get("/api/v1/apps/Timed/runs").await;
        (scheduled(&runs, "import") == 1 && scheduled(&runs, "reconcile") == 1).then_some(runs)
    })
    .await;
    for run in runs.as_array().unwrap() {
        finished(&hub, run).await;
    }
    let schedule = hub.get("/api/v1/apps/Timed/schedule").await;
    let at = |key: &str| {
        time::OffsetDateTime::parse(
            schedule[key].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    assert!(
        (at("next_import_at") - now - time::Duration::hours(1)).abs() < time::Duration::minutes(1),
        "{schedule}"
    );
    assert!(
        (at("next_reconcile_at") - now - time::Duration::days(1)).abs() < time::Duration::minutes(1),
        "{schedule}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let runs = hub.get("/api/v1/apps/Timed/runs").await;
    assert_eq!(
        (scheduled(&runs, "import"), scheduled(&runs, "reconcile")),
        (1, 1),
        "{runs}"
    );
    // Switched off, nothing is scheduled.
    hub.call(Method::PATCH, "/api/v1/apps/Timed", Some(json!({"sync": {}})))
        .await;
    assert_eq!(
        hub.get("/api/v1/apps/Timed/schedule").await,
        json!({"next_import_at": null, "next_reconcile_at": null})
    );
    hub.stop().await;
}

async fn a_due_run_is_queued_by_one_node_only(backend: Backend) {
    use provisio::domain::admin::Actor;
    use provisio::service::AppService;
    use provisio::service::apps::{AppUpdate, NewApp};
    use provisio::store::TargetRunStore;
    let db = common::TestDatabase::new(backend).await;
    let store = db.store().await;
    let key_dir = tempfile::tempdir().unwrap();
    let key = provisio::secrets::SecretKey::load_or_create(&key_dir.path().join("secret.key")).unwrap();
    let apps = AppService::new(store.clone(), key);
    let input: NewApp = serde_json::from_value(
        json!({"name": "Shared", "base_url": "http://127.0.0.1:9/v2", "token": "t",
        "features": {"import_users": true}}),
    )
    .unwrap();
    apps.create_app(input, &Actor::System).await.unwrap();
    let sync = serde_json::from_value(json!({"import_every": "hourly", "reconcile_every": "hourly"})).unwrap();
    apps.update_app(
        "Shared",
        AppUpdate {
            sync: Some(sync),
            ..Default::default()
        },
        &Actor::System,
    )
    .await
    .unwrap();
    // Eight nodes: eight stores (connection pools) over the same database, asking at once.
    let mut nodes = Vec::new();
    for _ in 0..8 {
        nodes.push(db.store().await);
    }
    let now = provisio::domain::now();
    let asked = nodes.iter().map(|node| node.queue_due_runs(now));
    let mut queued = Vec::new();
    for answer in futures_join_all(asked).await {
        queued.extend(answer.expect("queue due runs"));
    }
    let kinds: BTreeSet<&str> = queued.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(queued.len(), 2, "one import and one reconciliation in all: {queued:?}");
    assert_eq!(kinds, BTreeSet::from(["import", "reconcile"]));
    // Not due again within the period.
    assert!(
        store
            .queue_due_runs(now + time::Duration::minutes(59))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .queue_due_runs(now + time::Duration::minutes(61))
            .await
            .unwrap()
            .len(),
        2
    );
    let jobs = store
        .query_scalar("SELECT COUNT(*) FROM sync_jobs WHERE subject_kind IN ('import', 'reconcile')")
        .await
        .unwrap();
    assert_eq!(jobs, 4, "each queued run has its job");
}

/// Polls every future to its end, concurrently.
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("polled to its end")).collect()
}
