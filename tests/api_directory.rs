//! The admin REST API over a real hub and a real database, on SQLite and PostgreSQL.

mod common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    user_lifecycle,
    user_search_and_paging,
    custom_attributes,
    groups_and_membership,
    rejected_changes_leave_the_store_unchanged,
    oversized_body_is_refused,
    tokens_and_authentication,
    first_admin_login_requires_new_password,
    change_log_is_complete_and_ordered,
    concurrent_changes_get_gap_free_sequence,
    operations_endpoints,
);

async fn user_lifecycle(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let created = hub
        .post(
            "/api/v1/users",
            json!({"username": "Alice", "given_name": "Alice", "family_name": "Smith", "display_name": "Alice Smith",
                   "formatted_name": "Ms Alice Smith", "email": "Alice@Example.com"}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "Alice");
    assert_eq!(created["active"], true);
    assert_eq!(created["source"], "local");
    assert_eq!(created["version"], 1);

    // Read by id and by username regardless of case.
    assert_eq!(hub.get(&format!("/api/v1/users/{id}")).await, created);
    assert_eq!(hub.get("/api/v1/users/alice").await, created);

    // Update: change one field, clear another; version bumps.
    let (status, updated) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({"given_name": "Alicia", "formatted_name": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["given_name"], "Alicia");
    assert_eq!(updated["formatted_name"], Value::Null);
    assert_eq!(updated["family_name"], "Smith");
    assert_eq!(updated["version"], 2);

    // A no-op update changes nothing.
    let (_, same) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({"given_name": "Alicia"})),
        )
        .await;
    assert_eq!(same["version"], 2);

    // Deactivate and reactivate.
    let inactive = hub.post(&format!("/api/v1/users/{id}/deactivate"), json!({})).await;
    assert_eq!(inactive["active"], false);
    let active = hub.post(&format!("/api/v1/users/{id}/activate"), json!({})).await;
    assert_eq!(active["active"], true);

    // Delete; then it is gone.
    let (status, _) = hub.call(Method::DELETE, &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = hub.call(Method::GET, &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = hub.call(Method::DELETE, &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let ops: Vec<String> = hub
        .changes()
        .await
        .iter()
        .filter(|c| c["entity_id"] == id)
        .map(|c| c["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops, ["created", "updated", "deactivated", "reactivated", "deleted"]);
    hub.stop().await;
}

async fn user_search_and_paging(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for i in 0..25 {
        hub.post(
            "/api/v1/users",
            json!({"username": format!("user{i:02}"), "email": format!("person{i:02}@corp.example"), "display_name": format!("Person Number {i}")}),
        )
        .await;
    }
    hub.post(
        "/api/v1/users",
        json!({"username": "zed", "email": "zed@other.example", "display_name": "Zed 100%_x"}),
    )
    .await;

    // Paging visits every user exactly once, in username order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=10&cursor={c}"),
            None => "/api/v1/users?limit=10".to_owned(),
        };
        let page = hub.get(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|u| u["username"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..25).map(|i| format!("user{i:02}")).collect();
    expected.push("zed".into());
    assert_eq!(seen, expected);

    // Search by username, email and name, case-insensitively.
    let names = |v: Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(hub.get("/api/v1/users?q=USER1").await).len(), 10);
    assert_eq!(names(hub.get("/api/v1/users?q=other.example").await), ["zed"]);
    assert_eq!(names(hub.get("/api/v1/users?q=number%2024").await), ["user24"]);
    // LIKE wildcards in the search text are matched literally.
    assert_eq!(names(hub.get("/api/v1/users?q=100%25_").await), ["zed"]);
    assert!(names(hub.get("/api/v1/users?q=%25").await).len() == 1);

    // Active filter.
    hub.post("/api/v1/users/zed/deactivate", json!({})).await;
    assert_eq!(names(hub.get("/api/v1/users?active=false").await), ["zed"]);

    // Bad paging input is a clear 400.
    let (status, body) = hub.call(Method::GET, "/api/v1/users?cursor=!!!", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = hub.call(Method::GET, "/api/v1/users?limit=many", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    hub.stop().await;
}

async fn custom_attributes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for (name, kind) in [
        ("title", "string"),
        ("language", "string"),
        ("timezone", "string"),
        ("badge", "integer"),
        ("contractor", "boolean"),
        ("start", "datetime"),
        ("skills", "string_list"),
    ] {
        let def = hub
            .post("/api/v1/attributes", json!({"name": name, "type": kind}))
            .await;
        assert_eq!(def["type"], kind);
        assert_eq!(def["required"], false);
    }
    let list = hub.get("/api/v1/attributes").await;
    assert_eq!(list.as_array().unwrap().len(), 7);

    let user = hub
        .post(
            "/api/v1/users",
            json!({"username": "bob", "attributes": {"title": "Engineer", "language": "en", "timezone": "Europe/Paris",
                   "badge": 42, "contractor": false, "start": "2026-01-05T09:00:00+01:00", "skills": ["rust", "sql"]}}),
        )
        .await;
    assert_eq!(user["attributes"]["start"], "2026-01-05T08:00:00Z");
    assert_eq!(user["attributes"]["skills"], json!(["rust", "sql"]));
    assert_eq!(hub.get("/api/v1/users/bob").await["attributes"], user["attributes"]);

    // A type violation names the field.
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"attributes": {"badge": "forty-two"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "attributes.badge");

    // Making an attribute required while a user lacks it is refused; after a value is set, it works.
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/attributes/title",
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.post("/api/v1/attributes", json!({"name": "cost_center", "type": "string"}))
        .await;
    let (status, body) = hub
        .call(
            Method::PATCH,
            "/api/v1/attributes/cost_center",
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A required attribute cannot be created while users exist.
    let (status, _) = hub
        .call(
            Method::POST,
            "/api/v1/attributes",
            Some(json!({"name": "floor", "type": "integer", "required": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Type change while values exist is refused; delete while values exist is refused.
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/attributes/badge",
            Some(json!({"type": "string"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = hub.call(Method::DELETE, "/api/v1/attributes/badge", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"attributes": {"badge": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.call(Method::DELETE, "/api/v1/attributes/badge", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hub.call(Method::GET, "/api/v1/attributes/badge", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad definitions.
    for bad in [
        json!({"name": "email", "type": "string"}),
        json!({"name": "2x", "type": "string"}),
        json!({"name": "ok_name", "type": "colour"}),
        json!({"name": "title", "type": "string"}),
    ] {
        let (status, body) = hub.call(Method::POST, "/api/v1/attributes", Some(bad.clone())).await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    hub.stop().await;
}

async fn groups_and_membership(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let engineering = hub.post("/api/v1/groups", json!({"name": "Engineering"})).await;
    let gid = engineering["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Sales"})).await;
    hub.post("/api/v1/users", json!({"username": "alice"})).await;
    hub.post("/api/v1/users", json!({"username": "bob"})).await;

    // Duplicate names regardless of case.
    let (status, body) = hub
        .call(Method::POST, "/api/v1/groups", Some(json!({"name": "engineering"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = hub
        .call(Method::PUT, "/api/v1/groups/Engineering/members/alice", None)
        .await;
    assert_eq!((status, body["changed"].clone()), (StatusCode::OK, json!(true)));
    let (_, body) = hub
        .call(Method::PUT, "/api/v1/groups/Engineering/members/alice", None)
        .await;
    assert_eq!(body["changed"], false, "adding twice is idempotent");
    hub.call(Method::PUT, &format!("/api/v1/groups/{gid}/members/bob"), None)
        .await;
    hub.call(Method::PUT, "/api/v1/groups/Sales/members/bob", None).await;

    let members = hub.get("/api/v1/groups/engineering/members").await;
    let names: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(hub.get("/api/v1/groups/Engineering").await["member_count"], 2);
    let bob_groups = hub.get("/api/v1/users/bob/groups").await;
    assert_eq!(bob_groups.as_array().unwrap().len(), 2);

    // Rename, then remove a member, then delete the group.
    let (status, renamed) = hub
        .call(
            Method::PATCH,
            "/api/v1/groups/Engineering",
            Some(json!({"name": "R&D"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "R&D");
    let (status, _) = hub
        .call(Method::PATCH, "/api/v1/groups/R%26D", Some(json!({"name": "sales"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, body) = hub
        .call(Method::DELETE, "/api/v1/groups/R%26D/members/alice", None)
        .await;
    assert_eq!(body["changed"], true);
    let (_, body) = hub
        .call(Method::DELETE, "/api/v1/groups/R%26D/members/alice", None)
        .await;
    assert_eq!(body["changed"], false);

    // Unknown group or user: 404 and nothing recorded.
    let before = hub.changes().await.len();
    let (status, body) = hub.call(Method::PUT, "/api/v1/groups/Nope/members/alice", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Nope"));
    let (status, _) = hub.call(Method::PUT, "/api/v1/groups/Sales/members/nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hub.changes().await.len(), before);

    let (status, _) = hub.call(Method::DELETE, &format!("/api/v1/groups/{gid}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(hub.get("/api/v1/users/bob/groups").await.as_array().unwrap().len(), 1);
    let groups = hub.get("/api/v1/groups").await;
    assert_eq!(groups["items"].as_array().unwrap().len(), 1);

    // Deleting a user removes their memberships.
    hub.call(Method::DELETE, "/api/v1/users/bob", None).await;
    assert_eq!(hub.get("/api/v1/groups/Sales").await["member_count"], 0);
    hub.stop().await;
}

/// Counts what the directory holds, to prove a refused request changed nothing.
async fn snapshot(hub: &TestHub) -> (usize, usize, usize, Value) {
    let users = hub.get("/api/v1/users?limit=1000").await["items"]
        .as_array()
        .unwrap()
        .len();
    let groups = hub.get("/api/v1/groups?limit=1000").await["items"]
        .as_array()
        .unwrap()
        .len();
    let changes = hub.changes().await.len();
    let alice = hub.get("/api/v1/users/alice").await;
    (users, groups, changes, alice)
}

async fn rejected_changes_leave_the_store_unchanged(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    hub.post("/api/v1/attributes", json!({"name": "badge", "type": "integer"}))
        .await;
    hub.post(
        "/api/v1/users",
        json!({"username": "alice", "email": "alice@example.com", "attributes": {"title": "Eng"}}),
    )
    .await;
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    // A required attribute, defined while only alice exists and has a value.
    hub.call(
        Method::PATCH,
        "/api/v1/attributes/title",
        Some(json!({"required": true})),
    )
    .await;
    let before = snapshot(&hub).await;

    let cases: Vec<(&str, Method, &str, Value, StatusCode, &str)> = vec![
        (
            "duplicate username differing in case",
            Method::POST,
            "/api/v1/users",
            json!({"username": "ALICE", "attributes": {"title": "x"}}),
            StatusCode::CONFLICT,
            "username",
        ),
        (
            "invalid email",
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob", "email": "bob-at-example", "attributes": {"title": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            "wrong attribute type",
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob", "attributes": {"title": "x", "badge": "seven"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attributes.badge",
        ),
        (
            "missing required attribute",
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attributes.title",
        ),
        (
            "unknown attribute",
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob", "attributes": {"title": "x", "shoe": "42"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attributes.shoe",
        ),
        (
            "removing a required attribute",
            Method::PATCH,
            "/api/v1/users/alice",
            json!({"attributes": {"title": null}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attributes.title",
        ),
        (
            "invalid email on update",
            Method::PATCH,
            "/api/v1/users/alice",
            json!({"email": "not an email", "given_name": "Changed"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            "empty username",
            Method::POST,
            "/api/v1/users",
            json!({"username": "", "attributes": {"title": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "username",
        ),
        (
            "unknown field",
            Method::POST,
            "/api/v1/users",
            json!({"username": "bob", "emial": "bob@example.com"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "wrong JSON type",
            Method::POST,
            "/api/v1/users",
            json!({"username": 17}),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "unknown group",
            Method::PUT,
            "/api/v1/groups/Ghosts/members/alice",
            Value::Null,
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            "empty group name",
            Method::POST,
            "/api/v1/groups",
            json!({"name": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "duplicate group",
            Method::POST,
            "/api/v1/groups",
            json!({"name": "staff"}),
            StatusCode::CONFLICT,
            "name",
        ),
    ];
    for (what, method, path, body, expected, field) in cases {
        let body = if body.is_null() { None } else { Some(body) };
        let (status, answer) = hub.call(method, path, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: error body has a message: {answer}");
        assert!(answer["error"]["code"].is_string(), "{what}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        }
        assert_eq!(snapshot(&hub).await, before, "{what} changed the store");
    }

    // Malformed JSON and a missing content type.
    let response = hub
        .http
        .post(format!("{}/api/v1/users", hub.base_url))
        .bearer_auth(&hub.token)
        .header("content-type", "application/json")
        .body("{\"username\": \"bob\",")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let response = hub
        .http
        .post(format!("{}/api/v1/users", hub.base_url))
        .bearer_auth(&hub.token)
        .body("username=bob")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(snapshot(&hub).await, before);
    hub.stop().await;
}

async fn oversized_body_is_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let before = hub.changes().await.len();
    let big = "x".repeat(1024 * 1024 + 10);
    let (status, body) = hub
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "big", "display_name": big})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(hub.changes().await.len(), before);
    assert_eq!(hub.get("/api/v1/users").await["items"].as_array().unwrap().len(), 0);
    hub.stop().await;
}

async fn tokens_and_authentication(backend: Backend) {
    let hub = TestHub::start(backend).await;
    // No token, a wrong token, a malformed header.
    let (status, body) = hub.call_with(Method::GET, "/api/v1/users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, _) = hub
        .call_with(Method::GET, "/api/v1/users", None, Some("pvo_wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = hub
        .http
        .get(format!("{}/api/v1/users", hub.base_url))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    // Writes without a token change nothing.
    let (status, _) = hub
        .call_with(Method::POST, "/api/v1/users", Some(json!({"username": "eve"})), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let issued = hub.post("/api/v1/tokens", json!({"name": "automation"})).await;
    let secret = issued["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pvo_"));
    let id = issued["id"].as_str().unwrap().to_owned();
    let (status, _) = hub.call_with(Method::GET, "/api/v1/users", None, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK);

    // Listing never shows secrets.
    let list = hub.get("/api/v1/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));

    // Revoked: 401 from then on, for reads and writes.
    let (status, revoked) = hub.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = hub.call_with(Method::GET, "/api/v1/users", None, Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = hub
        .call_with(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "eve"})),
            Some(&secret),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(hub.get("/api/v1/users").await["items"].as_array().unwrap().len(), 0);
    let (status, _) = hub.call(Method::DELETE, "/api/v1/tokens/not-a-token", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The store keeps only hashes.
    let stored = hub
        .store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{secret}'"
        ))
        .await
        .unwrap();
    assert_eq!(stored, 0);
    hub.stop().await;
}

async fn first_admin_login_requires_new_password(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let first = provisio::service::AuthService::new(hub.store.clone())
        .bootstrap()
        .await
        .unwrap()
        .expect("first admin");
    assert!(
        provisio::service::AuthService::new(hub.store.clone())
            .bootstrap()
            .await
            .unwrap()
            .is_none(),
        "created once only"
    );
    let password = secrecy::ExposeSecret::expose_secret(&first.password).to_owned();

    let login = |body: Value| hub.call_with(Method::POST, "/api/v1/auth/login", Some(body), None);
    let (status, _) = login(json!({"username": "admin", "password": "wrong"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = login(json!({"username": "admin", "password": password})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = login(json!({"username": "admin", "password": password, "new_password": "short"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) =
        login(json!({"username": "admin", "password": password, "new_password": "a much longer passphrase"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["secret"].as_str().unwrap().to_owned();
    let (status, _) = hub.call_with(Method::GET, "/api/v1/users", None, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // The one-time password no longer works; the new one does without a change.
    let (status, _) = login(json!({"username": "admin", "password": password})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login(json!({"username": "admin", "password": "a much longer passphrase"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // Changes made with that token name the token it was issued as.
    hub.call_with(Method::POST, "/api/v1/groups", Some(json!({"name": "G"})), Some(&token))
        .await;
    let last = hub.changes().await.pop().unwrap();
    assert_eq!(last["actor"], "token:login");
    hub.stop().await;
}

async fn change_log_is_complete_and_ordered(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    let alice = hub.post("/api/v1/users", json!({"username": "alice"})).await;
    let bob = hub
        .post(
            "/api/v1/users",
            json!({"username": "bob", "attributes": {"title": "Dev"}}),
        )
        .await;
    let group = hub.post("/api/v1/groups", json!({"name": "Team"})).await;
    hub.call(Method::PUT, "/api/v1/groups/Team/members/alice", None).await;
    hub.call(Method::PUT, "/api/v1/groups/Team/members/alice", None).await; // no change, no event
    hub.call(Method::PUT, "/api/v1/groups/Team/members/bob", None).await;
    hub.call(
        Method::PATCH,
        "/api/v1/users/alice",
        Some(json!({"attributes": {"title": "Lead"}})),
    )
    .await;
    hub.call(
        Method::PATCH,
        "/api/v1/users/alice",
        Some(json!({"attributes": {"title": "Lead"}})),
    )
    .await; // no change
    hub.call(Method::PATCH, "/api/v1/users/alice", Some(json!({"email": "bad"})))
        .await; // refused
    hub.call(Method::PATCH, "/api/v1/groups/Team", Some(json!({"name": "Team A"})))
        .await;
    hub.call(Method::DELETE, "/api/v1/users/bob", None).await;
    hub.call(Method::DELETE, "/api/v1/groups/Team%20A", None).await;

    let changes = hub.changes().await;
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=changes.len() as i64).collect::<Vec<_>>(),
        "gap-free, strictly increasing"
    );
    let (a, b, g) = (
        alice["id"].as_str().unwrap(),
        bob["id"].as_str().unwrap(),
        group["id"].as_str().unwrap(),
    );
    let summary: Vec<(String, String, String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["entity"].as_str().unwrap().to_owned(),
                c["operation"].as_str().unwrap().to_owned(),
                c["entity_id"].as_str().unwrap().to_owned(),
                c["related_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let s = |e: &str, o: &str, id: &str, rel: &str| (e.to_owned(), o.to_owned(), id.to_owned(), rel.to_owned());
    assert_eq!(
        summary,
        vec![
            s("attribute", "created", "title", ""),
            s("user", "created", a, ""),
            s("user", "created", b, ""),
            s("group", "created", g, ""),
            s("membership", "added", g, a),
            s("membership", "added", g, b),
            s("user", "updated", a, ""),
            s("group", "updated", g, ""),
            s("membership", "removed", g, b),
            s("user", "deleted", b, ""),
            s("membership", "removed", g, a),
            s("group", "deleted", g, ""),
        ]
    );
    assert_eq!(changes[6]["data"]["changed"], json!(["attributes.title"]));
    // A deleted user's event holds the user as it was, attribute values included, and its groups.
    assert_eq!(changes[9]["data"]["user"]["username"], "bob");
    assert_eq!(changes[9]["data"]["user"]["attributes"]["title"], "Dev");
    assert_eq!(changes[9]["data"]["groups"], json!([g]));
    assert_eq!(changes[6]["actor"], "token:test");
    // Paging through the log with `after`.
    let tail = hub.get("/api/v1/changes?after=10").await;
    assert_eq!(tail.as_array().unwrap().len(), 2);
    hub.stop().await;
}

async fn concurrent_changes_get_gap_free_sequence(backend: Backend) {
    let hub = std::sync::Arc::new(TestHub::start(backend).await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = hub
                .call(
                    Method::POST,
                    "/api/v1/users",
                    Some(json!({"username": format!("u{i}")})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let (status, body) = hub
                .call(
                    Method::PATCH,
                    &format!("/api/v1/users/u{i}"),
                    Some(json!({"given_name": format!("N{i}")})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let changes = hub.changes().await;
    assert_eq!(changes.len(), 80, "one event per change");
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=80).collect::<Vec<_>>());
    // Each user's events are in causal order.
    for i in 0..40 {
        let user = hub.get(&format!("/api/v1/users/u{i}")).await;
        let ops: Vec<&str> = changes
            .iter()
            .filter(|c| c["entity_id"] == user["id"])
            .map(|c| c["operation"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["created", "updated"]);
    }
}

async fn operations_endpoints(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let health = hub.http.get(format!("{}/healthz", hub.base_url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = hub.http.get(format!("{}/readyz", hub.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    hub.get("/api/v1/users").await;
    let metrics = hub
        .http
        .get(format!("{}/metrics", hub.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("provisio_http_requests_total{method=\"GET\",route=\"/api/v1/users\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("provisio_http_request_duration_seconds_bucket"));

    let spec: Value = hub
        .http
        .get(format!("{}/api/v1/openapi.json", hub.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/api/v1/users",
        "/api/v1/users/{user}",
        "/api/v1/users/{user}/deactivate",
        "/api/v1/groups/{group}/members/{user}",
        "/api/v1/attributes/{name}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/auth/login",
        "/api/v1/changes",
    ] {
        assert!(paths.contains_key(path), "OpenAPI lacks {path}");
    }
    assert!(spec["components"]["schemas"]["User"].is_object());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());

    let (status, body) = hub.call(Method::GET, "/api/v1/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    hub.stop().await;
}
