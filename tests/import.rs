//! Importing an app's accounts against a real scim2-server pre-filled by hand, on SQLite and
//! PostgreSQL: the match rule's outcomes (linked, created, conflict, unmatched), the dry run
//! predicting the real run, the conflict queue, groups, paging through targets that page badly,
//! the CLI, and the schedule that queues imports and reconciliations.

mod common;

use common::referee::{Faults, Proxy, ScimTarget};
use common::runs::{finished, items, outcomes, user};
use common::{Backend, TestHub, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

backend_tests!(
    import_links_creates_and_queues_conflicts_as_the_rule_says,
    paging_survives_short_pages_ignored_counts_and_a_shrinking_listing,
    the_cli_imports_reconciles_and_works_the_conflict_queue,
    scheduled_runs_are_queued_on_time_once_per_period,
    a_due_run_is_queued_by_one_node_only,
    groups_are_imported_by_name_with_their_members,
);

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
    let mut asking = tokio::task::JoinSet::new();
    for node in nodes {
        asking.spawn(async move { node.queue_due_runs(now).await });
    }
    let mut queued = Vec::new();
    while let Some(answer) = asking.join_next().await {
        queued.extend(answer.expect("node task").expect("queue due runs"));
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

async fn groups_are_imported_by_name_with_their_members(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    for name in ["alice", "bob"] {
        user(&hub, name, &format!("{name}@example.com")).await;
    }
    let engineering = hub.post("/api/v1/groups", json!({"name": "engineering"})).await;
    let account = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    let alice = target.create_user(account("alice")).await;
    let bob = target.create_user(account("bob")).await;
    let stranger = target.create_user(account("stranger")).await;
    let group = |name: &str, members: &[&Value]| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
               "members": members.iter().map(|m| json!({"value": m["id"]})).collect::<Vec<_>>()})
    };
    for body in [
        group("Engineering", &[&alice, &bob]),
        group("Sales", &[&alice, &stranger]),
        group("Legal", &[]),
    ] {
        let (status, answer) = target.request(Method::POST, "/Groups", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    hub.connect_app(
        json!({"name": "Teams", "base_url": target.base_url, "token": target.token,
                           "features": {"import_users": true, "push_groups": true}}),
    )
    .await;
    hub.call(
        Method::PATCH,
        "/api/v1/apps/Teams",
        Some(json!({"sync": {"import": {"match_on": ["userName"], "create_groups": true}}})),
    )
    .await;
    let dry = hub.post("/api/v1/apps/Teams/imports", json!({"dry_run": true})).await;
    let dry = finished(&hub, &dry).await;
    let expected: BTreeMap<String, String> = [
        ("alice", "linked"),
        ("bob", "linked"),
        ("stranger", "unmatched"),
        ("Engineering", "group_unmatched"),
        ("Sales", "group_created"),
        ("Legal", "group_created"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(outcomes(&items(&hub, &dry).await), expected);
    assert_eq!(
        hub.call(Method::GET, "/api/v1/groups/Sales", None).await.0,
        StatusCode::NOT_FOUND
    );

    let real = hub.post("/api/v1/apps/Teams/imports", json!({})).await;
    let real = finished(&hub, &real).await;
    assert_eq!(outcomes(&items(&hub, &real).await), expected);
    let sales = hub.get("/api/v1/groups/Sales").await;
    assert_eq!(sales["source"], "import");
    let members = hub.get("/api/v1/groups/Sales/members").await;
    let names: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"], "only members whose accounts are linked");
    let app_id = hub.get("/api/v1/apps/Teams").await["id"].as_str().unwrap().to_owned();
    let linked = hub
        .store
        .query_texts(&format!(
            "SELECT group_id FROM app_groups WHERE app_id = '{app_id}' ORDER BY pushed_name"
        ))
        .await
        .unwrap();
    assert_eq!(
        linked,
        Vec::<String>::new(),
        "no policy names these groups: the hub does not manage them"
    );
    let unmatched = items(&hub, &real)
        .await
        .into_iter()
        .find(|i| i["target_username"] == "Engineering")
        .unwrap();
    assert!(
        unmatched["detail"]["reason"].as_str().unwrap().contains("no policy"),
        "{unmatched}"
    );
    assert_eq!(engineering["member_count"], 0);
    // A second import creates nothing again.
    let again = hub.post("/api/v1/apps/Teams/imports", json!({})).await;
    let again = finished(&hub, &again).await;
    assert_eq!(again["counts"]["group_unmatched"], 3, "{again}");
    hub.stop().await;
}
