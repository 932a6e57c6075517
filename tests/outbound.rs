//! Outbound provisioning against a real, independent SCIM server (scim2-server from PyPI), on
//! SQLite and PostgreSQL: the product guide's walkthrough, adoption, PUT fallback, bad
//! configuration, minimal re-pushes, and a large group provisioned from one read of the target.

mod common;

use common::referee::{Faults, Proxy, ScimTarget};
use common::{Backend, TestHub, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    seed_walkthrough_monday,
    adoption_by_lookup_and_by_conflict,
    updates_fall_back_to_put_without_patch,
    bad_configuration_is_refused_or_held,
    mapping_changes_push_only_what_changed,
    a_large_group_is_provisioned_from_one_read_of_the_target,
);

async fn monday_attributes(hub: &TestHub) {
    for name in ["title", "language", "timezone"] {
        hub.post("/api/v1/attributes", json!({"name": name, "type": "string"}))
            .await;
    }
}

async fn add_user(hub: &TestHub, username: &str, given: &str, family: &str, email: &str, title: &str) -> Value {
    hub.post(
        "/api/v1/users",
        json!({"username": username, "given_name": given, "family_name": family, "display_name": format!("{given} {family}"),
               "formatted_name": format!("{given} {family}"), "email": email,
               "attributes": {"title": title, "language": "en", "timezone": "Europe/Paris"}}),
    )
    .await
}

fn without_meta(mut resource: Value) -> Value {
    if let Value::Object(map) = &mut resource {
        map.remove("meta");
        map.remove("id");
        map.remove("groups");
    }
    resource
}

async fn seed_walkthrough_monday(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    monday_attributes(&hub).await;

    // Step 2-3: the app with the Monday.com preset.
    let app = hub
        .connect_app(json!({"name": "Monday", "base_url": target.base_url, "token": target.token, "preset": "monday"}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app["deprovision"],
        json!({"on_unassign": "deactivate", "on_deactivate": "deactivate", "on_delete": "deactivate", "delete_deactivated_after_days": null})
    );
    assert_eq!(
        app["features"]["push_groups"], true,
        "the Monday.com preset pushes teams"
    );
    assert_eq!(app["capabilities"]["patch"], true);
    assert!(app.get("token").is_none());

    // Step 4-5: group and policy.
    hub.post("/api/v1/groups", json!({"name": "Monday Users"})).await;
    let (status, policy) = hub
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"app": "Monday", "group": "Monday Users"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");

    // Step 6-7: users, assigned to the group, appear in the target with exactly the mapped attributes.
    let alice = add_user(&hub, "Alice", "Alice", "Smith", "Alice.Smith@Example.com", "Engineer").await;
    add_user(&hub, "bob", "Bob", "Jones", "bob@example.com", "Designer").await;
    // Not in the group: never provisioned.
    add_user(&hub, "carol", "Carol", "King", "carol@example.com", "Sales").await;
    hub.call(Method::PUT, "/api/v1/groups/Monday%20Users/members/Alice", None)
        .await;
    hub.call(Method::PUT, "/api/v1/groups/Monday%20Users/members/bob", None)
        .await;
    hub.settle(&app_id).await;
    let remote = target.user("alice").await.expect("alice provisioned");
    assert_eq!(
        without_meta(remote.clone()),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice",
            "displayName": "Alice Smith",
            "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
            "emails": [{"type": "work", "value": "alice.smith@example.com", "primary": true}],
            "title": "Engineer",
            "preferredLanguage": "en",
            "timezone": "Europe/Paris",
            "active": true
        })
    );
    assert!(target.user("bob").await.is_some());
    assert!(target.user("carol").await.is_none());
    assert_eq!(target.users().await.len(), 2);
    let alice_target_id = remote["id"].as_str().unwrap().to_owned();

    // Step 8: update name, title and email.
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/Alice",
            Some(json!({"given_name": "Alicia", "display_name": "Alicia Smith",
            "email": "alicia@example.com", "attributes": {"title": "Lead Engineer"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle(&app_id).await;
    let remote = target.user("alice").await.unwrap();
    assert_eq!(remote["id"], alice_target_id.as_str(), "same account, updated in place");
    assert_eq!(remote["name"]["givenName"], "Alicia");
    assert_eq!(remote["displayName"], "Alicia Smith");
    assert_eq!(remote["title"], "Lead Engineer");
    assert_eq!(remote["emails"][0]["value"], "alicia@example.com");

    // Removing bob from the group deactivates his account.
    hub.call(Method::DELETE, "/api/v1/groups/Monday%20Users/members/bob", None)
        .await;
    hub.settle(&app_id).await;
    assert_eq!(target.user("bob").await.unwrap()["active"], false);
    // Re-assigning reactivates the same account.
    let bob_id = target.user("bob").await.unwrap()["id"].clone();
    hub.call(Method::PUT, "/api/v1/groups/Monday%20Users/members/bob", None)
        .await;
    hub.settle(&app_id).await;
    let bob = target.user("bob").await.unwrap();
    assert_eq!((bob["active"].clone(), bob["id"].clone()), (json!(true), bob_id));
    // Deactivating the user in the directory deprovisions too.
    hub.post("/api/v1/users/bob/deactivate", json!({})).await;
    hub.settle(&app_id).await;
    assert_eq!(target.user("bob").await.unwrap()["active"], false);

    // Step 9: deleting a user deprovisions them (deactivation, the app's setting).
    hub.call(
        Method::DELETE,
        &format!("/api/v1/users/{}", alice["id"].as_str().unwrap()),
        None,
    )
    .await;
    hub.settle(&app_id).await;
    assert_eq!(target.user("alice").await.unwrap()["active"], false);

    // An app set to delete: the account is gone.
    let (status, changed) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/apps/{app_id}"),
            Some(json!({"deprovision": "delete"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["deprovision"]["on_delete"], "delete");
    assert!(
        changed["notices"][0]
            .as_str()
            .unwrap()
            .contains("accounts already deactivated stay deactivated"),
        "{changed}"
    );
    add_user(&hub, "dave", "Dave", "Brown", "dave@example.com", "Ops").await;
    hub.call(Method::PUT, "/api/v1/groups/Monday%20Users/members/dave", None)
        .await;
    hub.settle(&app_id).await;
    let dave_id = target.user("dave").await.expect("dave provisioned")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.call(Method::DELETE, "/api/v1/users/dave", None).await;
    hub.settle(&app_id).await;
    assert_eq!(target.user_by_id(&dave_id).await.0, StatusCode::NOT_FOUND);
    // Accounts deactivated before the change stay deactivated: a setting change deletes nothing.
    assert_eq!(target.user("alice").await.unwrap()["active"], false);
    assert_eq!(target.user("bob").await.unwrap()["active"], false);

    // Group push: the group and its membership match.
    hub.post("/api/v1/users/bob/activate", json!({})).await;
    add_user(&hub, "erin", "Erin", "White", "erin@example.com", "QA").await;
    hub.call(Method::PUT, "/api/v1/groups/Monday%20Users/members/erin", None)
        .await;
    let (status, _) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/apps/{app_id}"),
            Some(json!({"features": {"push_groups": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle(&app_id).await;
    let groups = target.groups().await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["displayName"], "Monday Users");
    let mut members: Vec<String> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected: Vec<String> = vec![
        target.user("bob").await.unwrap()["id"].as_str().unwrap().to_owned(),
        target.user("erin").await.unwrap()["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(members, expected);
    // Rename and a member leaving follow.
    hub.call(
        Method::PATCH,
        "/api/v1/groups/Monday%20Users",
        Some(json!({"name": "Monday Team"})),
    )
    .await;
    hub.call(Method::DELETE, "/api/v1/groups/Monday%20Team/members/erin", None)
        .await;
    hub.settle(&app_id).await;
    let groups = target.groups().await;
    assert_eq!(groups[0]["displayName"], "Monday Team");
    let members: Vec<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [target.user("bob").await.unwrap()["id"].as_str().unwrap()]);

    // Deleting the group deletes it in the target, and its members lose their accounts (deleted).
    hub.call(Method::DELETE, "/api/v1/groups/Monday%20Team", None).await;
    hub.settle(&app_id).await;
    assert!(target.groups().await.is_empty());
    assert!(target.user("bob").await.is_none());

    // Every action is on record.
    let creates = hub.store.query_scalar(&format!(
        "SELECT COUNT(*) FROM provisioning_reports WHERE app_id = '{app_id}' AND operation = 'create' AND outcome = 'success'"
    )).await.unwrap();
    // alice, bob, dave and erin: bob's deactivated account was reactivated, not created again.
    assert_eq!(creates, 4);
    hub.stop().await;
}

async fn adoption_by_lookup_and_by_conflict(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    // Accounts made by hand in the target before Provisio knew them.
    let existing_a = target
        .create_user(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ANNA", "active": true}),
        )
        .await;
    let existing_b = target
        .create_user(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ben", "active": true}),
        )
        .await;
    let app = hub
        .connect_app(json!({"name": "App", "base_url": proxy.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post(
        "/api/v1/users",
        json!({"username": "anna", "given_name": "Anna", "email": "anna@example.com"}),
    )
    .await;
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/anna", None).await;
    hub.post("/api/v1/policies", json!({"app": "App", "group": "Staff"}))
        .await;
    hub.settle(&app_id).await;
    // Path 1: the look-up finds the account; it is linked and updated, not duplicated.
    assert_eq!(target.users().await.len(), 2);
    let anna = target.user("anna").await.unwrap();
    assert_eq!(anna["id"], existing_a["id"]);
    assert_eq!(anna["name"]["givenName"], "Anna");

    // Path 2: the look-up misses (the proxy hides the result once), the create gets 409, and the
    // engine looks up again and adopts.
    proxy.set(Faults {
        hide_lookups: 1,
        ..Default::default()
    });
    hub.post("/api/v1/users", json!({"username": "ben", "given_name": "Ben"}))
        .await;
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/ben", None).await;
    hub.settle(&app_id).await;
    assert_eq!(target.users().await.len(), 2, "no duplicate");
    let ben = target.user("ben").await.unwrap();
    assert_eq!(ben["id"], existing_b["id"]);
    assert_eq!(ben["name"]["givenName"], "Ben");
    let statuses: Vec<(String, u16)> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| (s.path.clone(), s.status))
        .collect();
    assert!(
        statuses.iter().any(|(_, s)| *s == 409),
        "the 409 path was taken: {statuses:?}"
    );
    let adopts = hub
        .store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM provisioning_reports WHERE app_id = '{app_id}' AND operation = 'adopt'"
        ))
        .await
        .unwrap();
    assert_eq!(adopts, 2);
    hub.stop().await;
}

async fn updates_fall_back_to_put_without_patch(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    proxy.set(Faults {
        refuse_patch: Some(501),
        ..Default::default()
    });
    let hub = TestHub::start(backend).await;
    let app = hub
        .connect_app(json!({"name": "NoPatch", "base_url": proxy.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "NoPatch", "group": "Staff"}))
        .await;
    hub.post(
        "/api/v1/users",
        json!({"username": "zoe", "given_name": "Zoe", "email": "zoe@example.com"}),
    )
    .await;
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/zoe", None).await;
    hub.settle(&app_id).await;
    hub.call(
        Method::PATCH,
        "/api/v1/users/zoe",
        Some(json!({"given_name": "Zoey", "email": "zoey@example.com"})),
    )
    .await;
    hub.settle(&app_id).await;
    let zoe = target.user("zoe").await.unwrap();
    assert_eq!(zoe["name"]["givenName"], "Zoey");
    assert_eq!(zoe["emails"][0]["value"], "zoey@example.com");
    let methods: Vec<(String, u16)> = proxy
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v2/Users/"))
        .map(|s| (s.method.clone(), s.status))
        .collect();
    assert!(
        methods.contains(&("PATCH".to_owned(), 501)) && methods.contains(&("PUT".to_owned(), 200)),
        "{methods:?}"
    );
    // Later updates go straight to PUT.
    hub.call(Method::PATCH, "/api/v1/users/zoe", Some(json!({"given_name": "Zoé"})))
        .await;
    hub.call(Method::POST, "/api/v1/users/zoe/deactivate", None).await;
    hub.settle(&app_id).await;
    assert_eq!(target.user("zoe").await.unwrap()["active"], false);
    let patches = proxy.seen().iter().filter(|s| s.method == "PATCH").count();
    assert_eq!(patches, 1, "PATCH is not tried again once the target refused it");
    assert_eq!(
        hub.get(&format!("/api/v1/apps/{app_id}")).await["capabilities"]["patch"],
        false
    );
    hub.stop().await;
}

async fn bad_configuration_is_refused_or_held(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    let before = hub.changes().await.len();
    // Refused outright, nothing stored.
    for (body, field) in [
        (
            json!({"name": "X", "base_url": "monday.com/scim", "token": "t"}),
            "base_url",
        ),
        (
            json!({"name": "X", "base_url": "ftp://host/scim", "token": "t"}),
            "base_url",
        ),
        (json!({"name": "X", "base_url": "https://h/v2", "token": ""}), "token"),
        (
            json!({"name": "X", "base_url": "https://h/v2", "token": "t", "preset": "nope"}),
            "preset",
        ),
        (
            json!({"name": "X", "base_url": "https://h/v2", "token": "t", "mapping": [
            {"target": "userName", "source": {"attribute": "username"}},
            {"target": "title", "source": {"attribute": "no_such_attribute"}}]}),
            "mapping[1].source",
        ),
        // The Monday preset needs custom attributes that are not defined here.
        (
            json!({"name": "X", "base_url": "https://h/v2", "token": "t", "preset": "monday"}),
            "",
        ),
    ] {
        let (status, answer) = hub.call(Method::POST, "/api/v1/apps", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
    }
    assert!(hub.get("/api/v1/apps").await.as_array().unwrap().is_empty());
    assert_eq!(hub.changes().await.len(), before);

    // Stored, but the connection check says why it fails, and nothing is provisioned meanwhile.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            "Unreachable",
            format!("http://127.0.0.1:{closed_port}/v2"),
            target.token.clone(),
            "connection refused",
        ),
        (
            "NoDns",
            "http://no-such-host.invalid/scim/v2".to_owned(),
            target.token.clone(),
            "DNS",
        ),
        ("WrongToken", proxy.base_url.clone(), "wrong-token".to_owned(), "token"),
        (
            "NotScim",
            format!("{}/nothing-here", proxy.base_url),
            target.token.clone(),
            "404",
        ),
    ];
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/users", json!({"username": "amy"})).await;
    hub.call(Method::PUT, "/api/v1/groups/Staff/members/amy", None).await;
    for (name, url, token, expected) in cases {
        let (status, app) = hub
            .call(
                Method::POST,
                "/api/v1/apps",
                Some(json!({"name": name, "base_url": url, "token": token})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        let id = app["id"].as_str().unwrap().to_owned();
        hub.post("/api/v1/policies", json!({"app": name, "group": "Staff"}))
            .await;
        let app = eventually(30, "the connection check to fail", || async {
            let app = hub.get(&format!("/api/v1/apps/{id}")).await;
            (app["connection_status"] == "failed").then_some(app)
        })
        .await;
        let message = app["connection_message"].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            hub.get(&format!("/api/v1/apps/{id}/accounts"))
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    assert!(target.users().await.is_empty(), "nothing reached the target");

    // Fixing the token lets the held work through.
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/WrongToken",
            Some(json!({"token": target.token})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = hub.get("/api/v1/apps/WrongToken").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.settle(&id).await;
    eventually(30, "amy to be provisioned", || async { target.user("amy").await }).await;

    // A mapping change to a nonexistent source is refused and changes nothing.
    let version = hub.get("/api/v1/apps/WrongToken").await["version"].clone();
    let (status, answer) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/WrongToken",
            Some(json!({"mapping": [{"target": "userName", "source": {"attribute": "nickname"}}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(hub.get("/api/v1/apps/WrongToken").await["version"], version);

    // The bearer tokens appear in no API answer and no report record, and are encrypted at rest.
    let apps = hub.get("/api/v1/apps").await.to_string();
    assert!(!apps.contains(&target.token) && !apps.contains("wrong-token"));
    let leaked = hub.store.query_scalar(&format!(
        "SELECT COUNT(*) FROM provisioning_reports WHERE message LIKE '%{t}%' OR diff LIKE '%{t}%' OR http_path LIKE '%{t}%'",
        t = target.token
    )).await.unwrap();
    assert_eq!(leaked, 0);
    let plain = hub
        .store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM apps WHERE token_ciphertext LIKE '%{}%'",
            target.token
        ))
        .await
        .unwrap();
    assert_eq!(plain, 0);
    let changes = hub.changes().await;
    assert!(!serde_json::to_string(&changes).unwrap().contains(&target.token));
    // The target did receive it, as a bearer token.
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.authorization.as_deref() == Some(&format!("Bearer {}", target.token)))
    );
    hub.stop().await;
}

async fn mapping_changes_push_only_what_changed(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    let mapping = |title_source: Value| {
        json!([
            {"target": "userName", "source": {"attribute": "username"}},
            {"target": "name.givenName", "source": {"attribute": "given_name"}},
            {"target": "title", "source": title_source},
            {"target": "active", "source": {"attribute": "active"}}
        ])
    };
    let app = hub.connect_app(json!({"name": "App", "base_url": proxy.base_url, "token": target.token, "mapping": mapping(json!({"attribute": "title"}))})).await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "App", "group": "Staff"}))
        .await;
    for (user, title) in [("alice", Some("Engineer")), ("bob", None), ("carol", Some("LEAD"))] {
        let mut body = json!({"username": user, "given_name": user});
        if let Some(title) = title {
            body["attributes"] = json!({"title": title});
        }
        hub.post("/api/v1/users", body).await;
        hub.call(Method::PUT, &format!("/api/v1/groups/Staff/members/{user}"), None)
            .await;
    }
    hub.settle(&app_id).await;
    let writes = |proxy: &Proxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| matches!(s.method.as_str(), "PATCH" | "PUT"))
            .map(|s| s.path.clone())
            .collect::<Vec<_>>()
    };
    assert!(writes(&proxy).is_empty());

    // Upper-casing the title changes alice's value only: bob has none, carol's is upper case already.
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/apps/App",
            Some(json!({"mapping": mapping(json!({"upper": {"attribute": "title"}}))})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle(&app_id).await;
    let alice_id = target.user("alice").await.unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(writes(&proxy), [format!("/v2/Users/{alice_id}")]);
    assert_eq!(target.user("alice").await.unwrap()["title"], "ENGINEER");

    // Two updates before the engine runs are pushed once, with the final state.
    hub.call(Method::PATCH, "/api/v1/apps/App", Some(json!({"enabled": false})))
        .await;
    hub.settle_dispatch().await;
    hub.call(
        Method::PATCH,
        "/api/v1/users/bob",
        Some(json!({"given_name": "Robert"})),
    )
    .await;
    hub.call(Method::PATCH, "/api/v1/users/bob", Some(json!({"given_name": "Bobby"})))
        .await;
    hub.call(Method::PATCH, "/api/v1/apps/App", Some(json!({"enabled": true})))
        .await;
    hub.settle(&app_id).await;
    let bob_id = target.user("bob").await.unwrap()["id"].as_str().unwrap().to_owned();
    let bob_writes = writes(&proxy).iter().filter(|p| p.ends_with(&bob_id)).count();
    assert_eq!(bob_writes, 1);
    assert_eq!(target.user("bob").await.unwrap()["name"]["givenName"], "Bobby");

    // A restart resends nothing: a full sync finds everything up to date.
    let (status, answer) = hub
        .call(Method::POST, "/api/v1/apps/App/sync", Some(json!({"dry_run": true})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = answer["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["plan"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["no_change", "no_change", "no_change"]);
    let before = writes(&proxy).len();
    let (status, answer) = hub.call(Method::POST, "/api/v1/apps/App/sync", Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    hub.settle(&app_id).await;
    assert_eq!(writes(&proxy).len(), before);
    hub.stop().await;
}

/// A new policy on a group of 80: the engine reads the target's users once (paged) instead of
/// looking each user up; the accounts the target already holds (in another case) are still
/// looked up and adopted, none is duplicated.
async fn a_large_group_is_provisioned_from_one_read_of_the_target(backend: Backend) {
    let target = ScimTarget::start().await;
    let proxy = Proxy::start(&target.base_url).await;
    let hub = TestHub::start(backend).await;
    let mut existing = Vec::new();
    for name in ["USER007", "User013", "user042"] {
        let made = target
            .create_user(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true}),
            )
            .await;
        existing.push((name.to_lowercase(), made["id"].as_str().unwrap().to_owned()));
    }
    let app = hub
        .connect_app(json!({"name": "App", "base_url": proxy.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Everyone"})).await;
    for i in 0..80 {
        let username = format!("user{i:03}");
        hub.post("/api/v1/users", json!({"username": username, "given_name": "U"}))
            .await;
        hub.call(
            Method::PUT,
            &format!("/api/v1/groups/Everyone/members/{username}"),
            None,
        )
        .await;
    }
    hub.settle(&app_id).await;
    let before_policy = proxy.seen().len();
    hub.post("/api/v1/policies", json!({"app": "App", "group": "Everyone"}))
        .await;
    hub.settle(&app_id).await;
    let users = target.users().await;
    assert_eq!(users.len(), 80, "every member has one account, none twice");
    for (name, id) in &existing {
        let found = target
            .user(name)
            .await
            .unwrap_or_else(|| panic!("{name} in the target"));
        assert_eq!(
            &found["id"].as_str().unwrap().to_owned(),
            id,
            "{name} was adopted, not created again"
        );
    }
    let seen: Vec<_> = proxy.seen().into_iter().skip(before_policy).collect();
    let lookups = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("filter="))
        .count();
    let listings = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/Users?startIndex="))
        .count();
    let creates = seen.iter().filter(|s| s.method == "POST").count();
    assert!(listings >= 1, "the target's users were read: {seen:?}");
    assert_eq!(lookups, 3, "only the users the target listed were looked up");
    assert_eq!(creates, 77, "one create per user the target did not hold");
    let adopts = hub
        .store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM provisioning_reports WHERE app_id = '{app_id}' AND operation = 'adopt'"
        ))
        .await
        .unwrap();
    assert_eq!(adopts, 3);
    hub.stop().await;
}
