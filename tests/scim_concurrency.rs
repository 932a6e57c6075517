//! Concurrent writers of one resource, through real HTTP on SQLite and PostgreSQL: changes sent
//! without a precondition are applied to the latest state, so none is refused and none is lost
//! (SCIM PATCH of a group's members and of a user's attributes, the admin API's user PATCH), while
//! a stale `If-Match` is still refused with 412 and changes nothing.

mod common;

use common::{Backend, TestHub};
use provisio::domain::admin::Actor;
use provisio::domain::user::{NewUser, UserSource};
use provisio::service::DirectoryService;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Barrier;

backend_tests!(
    clients_adding_members_to_one_group_all_succeed,
    clients_patching_one_user_over_scim_all_succeed,
    admins_patching_one_user_all_succeed,
    a_stale_if_match_is_still_refused,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Concurrent clients in each test.
const CLIENTS: usize = 8;

/// A hub with a SCIM token.
struct Scim {
    hub: TestHub,
    token: String,
}

impl Scim {
    async fn start(backend: Backend) -> Arc<Self> {
        let hub = TestHub::start(backend).await;
        let issued = hub.post("/api/v1/scim-tokens", json!({"name": "entra"})).await;
        let token = issued["secret"].as_str().expect("secret").to_owned();
        Arc::new(Scim { hub, token })
    }

    /// Sends a SCIM request; returns the status, the `ETag` and the body (Null when empty).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self
            .hub
            .http
            .request(method, format!("{}/scim/v2{path}", self.hub.base_url))
            .bearer_auth(&self.token);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        (status, etag, body)
    }

    async fn get(&self, path: &str) -> (String, Value) {
        let (status, etag, body) = self.send(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        (etag.expect("ETag"), body)
    }

    async fn create(&self, path: &str, body: Value) -> String {
        let (status, _, body) = self.send(Method::POST, path, Some(body), None).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// Runs `CLIENTS` clients at once (released together); returns what each returned.
async fn together<T, F, Fut>(client: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let start = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let start = Arc::clone(&start);
        let work = client(n);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            work.await
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("client task"));
    }
    out
}

/// Refused requests as `(status, body)`, over every client.
/// Fails the test when any of the requests was refused, counting them and showing one.
fn assert_none_refused(results: Vec<Vec<(StatusCode, Value)>>) {
    let total: usize = results.iter().map(Vec::len).sum();
    let refused: Vec<(StatusCode, Value)> = results
        .into_iter()
        .flatten()
        .filter(|(status, _)| !status.is_success())
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {total} PATCHes refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
}

async fn clients_adding_members_to_one_group_all_succeed(backend: Backend) {
    const MEMBERS: usize = 400;
    let scim = Scim::start(backend).await;
    let started = Instant::now();
    // The users, straight through the directory service (the HTTP part is the PATCHes below).
    let created = together(|n| {
        let directory = DirectoryService::new(scim.hub.store.clone());
        async move {
            let mut ids = Vec::new();
            for i in (n..MEMBERS).step_by(CLIENTS) {
                let user = NewUser {
                    username: format!("member{i:03}"),
                    ..Default::default()
                };
                let user = directory
                    .create_user(user, UserSource::Scim, &Actor::System)
                    .await
                    .expect("create user");
                ids.push(user.id.to_string());
            }
            ids
        }
    })
    .await;
    let group = scim
        .create("/Groups", json!({"schemas": [GROUP], "displayName": "Everyone"}))
        .await;
    let prepared = started.elapsed();
    let results = together(|n| {
        let scim = Arc::clone(&scim);
        let (group, ids) = (group.clone(), created[n].clone());
        async move {
            let mut answers = Vec::new();
            for id in ids {
                let body = patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
                // The answer leaves the members out: 400 of them in each of 400 answers would
                // only cost time; the group is read in full at the end.
                let path = format!("/Groups/{group}?excludedAttributes=members");
                let (status, _, body) = scim.send(Method::PATCH, &path, Some(body), None).await;
                answers.push((status, body));
            }
            answers
        }
    })
    .await;
    let patched = started.elapsed();
    assert_eq!(results.iter().map(Vec::len).sum::<usize>(), MEMBERS);
    assert_none_refused(results);
    let (_, body) = scim.get(&format!("/Groups/{group}")).await;
    let members: BTreeSet<&str> = body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    let wanted: BTreeSet<&str> = created.iter().flatten().map(String::as_str).collect();
    assert_eq!(members.len(), MEMBERS, "members after the PATCHes");
    assert_eq!(members, wanted);
    // One membership event per member: nothing lost, nothing doubled.
    let added = scim
        .hub
        .changes()
        .await
        .iter()
        .filter(|c| c["entity"] == "membership" && c["operation"] == "added")
        .count();
    assert_eq!(added, MEMBERS, "membership events");
    eprintln!(
        "{backend:?}: {MEMBERS} users and a group in {prepared:.1?}, {MEMBERS} PATCHes by {CLIENTS} clients in {:.1?}",
        patched - prepared
    );
    Arc::into_inner(scim).expect("no clients left").hub.stop().await;
}

/// The SCIM path each client writes and how to read it back from the resource.
const SCIM_ATTRIBUTES: [(&str, &str); CLIENTS] = [
    ("displayName", "/displayName"),
    ("title", "/title"),
    ("nickName", "/nickName"),
    ("name.givenName", "/name/givenName"),
    ("name.familyName", "/name/familyName"),
    ("name.middleName", "/name/middleName"),
    ("userType", "/userType"),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department",
    ),
];

/// Rounds of writes per client.
const ROUNDS: usize = 6;

async fn clients_patching_one_user_over_scim_all_succeed(backend: Backend) {
    let scim = Scim::start(backend).await;
    let user = scim
        .create(
            "/Users",
            json!({"schemas": [USER, ENTERPRISE], "userName": "shared", "name": {"givenName": "First"}}),
        )
        .await;
    let results = together(|n| {
        let (scim, user) = (Arc::clone(&scim), user.clone());
        async move {
            let mut answers = Vec::new();
            for round in 0..ROUNDS {
                let value = format!("client{n}-round{round}");
                let body = patch(json!([{"op": "replace", "path": SCIM_ATTRIBUTES[n].0, "value": value}]));
                let (status, _, body) = scim
                    .send(Method::PATCH, &format!("/Users/{user}"), Some(body), None)
                    .await;
                answers.push((status, body));
            }
            answers
        }
    })
    .await;
    assert_none_refused(results);
    let (etag, body) = scim.get(&format!("/Users/{user}")).await;
    // Each attribute is written by one client only, so it must hold that client's last value:
    // a write applied to an older state would have put an earlier value (or none) back.
    for (n, (path, pointer)) in SCIM_ATTRIBUTES.iter().enumerate() {
        let last = format!("client{n}-round{}", ROUNDS - 1);
        assert_eq!(
            body.pointer(pointer).and_then(Value::as_str),
            Some(last.as_str()),
            "{path} in {body}"
        );
    }
    assert_eq!(body["userName"], "shared");
    // Every PATCH changed the user, so every one is a version.
    assert_eq!(etag, format!("W/\"{}\"", 1 + CLIENTS * ROUNDS), "{body}");
    Arc::into_inner(scim).expect("no clients left").hub.stop().await;
}

/// The admin API field each client writes (`attributes.X` for a custom attribute).
const ADMIN_FIELDS: [&str; CLIENTS] = [
    "given_name",
    "family_name",
    "display_name",
    "formatted_name",
    "email",
    "external_id",
    "attributes.team",
    "attributes.office",
];

fn admin_value(field: &str, client: usize, round: usize) -> String {
    if field == "email" {
        format!("client{client}.round{round}@example.com")
    } else {
        format!("client{client}-round{round}")
    }
}

async fn admins_patching_one_user_all_succeed(backend: Backend) {
    let hub = Arc::new(TestHub::start(backend).await);
    for name in ["team", "office"] {
        hub.post("/api/v1/attributes", json!({"name": name, "type": "string"}))
            .await;
    }
    let user = hub.post("/api/v1/users", json!({"username": "shared"})).await;
    let user = user["id"].as_str().expect("id").to_owned();
    let results = together(|n| {
        let (hub, user) = (Arc::clone(&hub), user.clone());
        async move {
            let mut answers = Vec::new();
            for round in 0..ROUNDS {
                let value = admin_value(ADMIN_FIELDS[n], n, round);
                let body = match ADMIN_FIELDS[n].strip_prefix("attributes.") {
                    Some(name) => json!({"attributes": {name: value}}),
                    None => json!({ADMIN_FIELDS[n]: value}),
                };
                answers.push(
                    hub.call(Method::PATCH, &format!("/api/v1/users/{user}"), Some(body))
                        .await,
                );
            }
            answers
        }
    })
    .await;
    assert_none_refused(results);
    let stored = hub.get(&format!("/api/v1/users/{user}")).await;
    for (n, field) in ADMIN_FIELDS.iter().enumerate() {
        let found = match field.strip_prefix("attributes.") {
            Some(name) => &stored["attributes"][name],
            None => &stored[*field],
        };
        assert_eq!(
            found.as_str(),
            Some(admin_value(field, n, ROUNDS - 1).as_str()),
            "{field} in {stored}"
        );
    }
    assert_eq!(stored["username"], "shared");
    Arc::into_inner(hub).expect("no clients left").stop().await;
}

async fn a_stale_if_match_is_still_refused(backend: Backend) {
    let scim = Scim::start(backend).await;
    let user = scim
        .create(
            "/Users",
            json!({"schemas": [USER], "userName": "guarded", "title": "First"}),
        )
        .await;
    let member = scim
        .create("/Users", json!({"schemas": [USER], "userName": "member"}))
        .await;
    let group = scim
        .create("/Groups", json!({"schemas": [GROUP], "displayName": "Guarded"}))
        .await;
    for path in [format!("/Users/{user}"), format!("/Groups/{group}")] {
        let (stale, _) = scim.get(&path).await;
        // Someone else changes the resource, without a precondition.
        let change = if path.starts_with("/Users") {
            patch(json!([{"op": "replace", "path": "title", "value": "Second"}]))
        } else {
            patch(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]))
        };
        let (status, _, body) = scim.send(Method::PATCH, &path, Some(change), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let (current, before) = scim.get(&path).await;
        assert_ne!(current, stale);
        // A PATCH based on the old version is refused and changes nothing.
        let late = if path.starts_with("/Users") {
            patch(json!([{"op": "replace", "path": "title", "value": "Late"}]))
        } else {
            patch(json!([{"op": "replace", "path": "displayName", "value": "Late"}]))
        };
        let (status, _, body) = scim.send(Method::PATCH, &path, Some(late.clone()), Some(&stale)).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{path}: {body}");
        assert_eq!(body["status"], "412", "{body}");
        let (unchanged_tag, unchanged) = scim.get(&path).await;
        assert_eq!(unchanged_tag, current, "{path}");
        assert_eq!(unchanged, before, "{path}");
        // So are a PUT and a DELETE based on it.
        let replacement = if path.starts_with("/Users") {
            json!({"schemas": [USER], "userName": "guarded", "title": "Late"})
        } else {
            json!({"schemas": [GROUP], "displayName": "Late"})
        };
        let (status, _, body) = scim.send(Method::PUT, &path, Some(replacement), Some(&stale)).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "PUT {path}: {body}");
        let (status, _, body) = scim.send(Method::DELETE, &path, None, Some(&stale)).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "DELETE {path}: {body}");
        assert_eq!(scim.get(&path).await, (current.clone(), before));
        // The current version is accepted.
        let (status, etag, body) = scim.send(Method::PATCH, &path, Some(late), Some(&current)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_ne!(etag.as_deref(), Some(current.as_str()));
    }
    Arc::into_inner(scim).expect("no clients left").hub.stop().await;
}
