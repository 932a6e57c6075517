//! Group memberships through the hub's SCIM server, on SQLite and PostgreSQL: PATCH `add`,
//! `remove` (value filter, Entra's value list, all) and `replace` on `members` change exactly the
//! memberships they name, with one change event per changed membership (the same events as the
//! admin API's member routes), versions and `If-Match` as for any write, answers and reads that
//! leave members out when asked to, and a group push to an outbound app (scim2-server) following.

mod common;

use common::referee::ScimTarget;
use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

backend_tests!(
    member_patches_change_what_they_name,
    member_patches_honour_versions,
    reads_leave_members_out_when_asked,
    member_patches_reach_a_pushed_group,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A hub with a SCIM token for the source `okta`.
struct Scim {
    hub: TestHub,
    token: String,
}

impl Scim {
    async fn start(backend: Backend) -> Self {
        let hub = TestHub::start(backend).await;
        let issued = hub.post("/api/v1/scim-tokens", json!({"name": "okta"})).await;
        let token = issued["secret"].as_str().expect("secret").to_owned();
        Scim { hub, token }
    }

    /// Status, ETag and body of one SCIM request.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, String, Value) {
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
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON answer")
        };
        (status, etag, body)
    }

    async fn user(&self, name: &str) -> String {
        let body = json!({"schemas": [USER], "userName": name, "emails": [{"value": format!("{name}@example.com"), "primary": true}]});
        let (status, _, user) = self.send(Method::POST, "/Users", Some(body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user["id"].as_str().expect("id").to_owned()
    }

    async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let body = json!({"schemas": [GROUP], "displayName": name, "members": members});
        let (status, _, group) = self.send(Method::POST, "/Groups", Some(body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        group["id"].as_str().expect("id").to_owned()
    }

    /// PATCH with these operations; the answer leaves members out.
    async fn patch(&self, group: &str, operations: Value, if_match: Option<&str>) -> (StatusCode, String, Value) {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        self.send(
            Method::PATCH,
            &format!("/Groups/{group}?excludedAttributes=members"),
            Some(body),
            if_match,
        )
        .await
    }

    /// The group's members, read in full.
    async fn members(&self, group: &str) -> BTreeSet<String> {
        let (status, _, body) = self.send(Method::GET, &format!("/Groups/{group}"), None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().expect("value").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The change events after `after` events, as (entity, operation, related id, actor).
    async fn events_after(&self, after: usize) -> Vec<(String, String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        self.hub.changes().await[after..]
            .iter()
            .map(|e| {
                (
                    text(&e["entity"]),
                    text(&e["operation"]),
                    text(&e["related_id"]),
                    text(&e["actor"]),
                )
            })
            .collect()
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn membership(operation: &str, user: &str) -> (String, String, String, String) {
    ("membership".into(), operation.into(), user.into(), "scim:okta".into())
}

async fn member_patches_change_what_they_name(backend: Backend) {
    let scim = Scim::start(backend).await;
    let (a, b, c, d) = (
        scim.user("ann").await,
        scim.user("ben").await,
        scim.user("cat").await,
        scim.user("dan").await,
    );
    let group = scim.group("Staff", &[&a, &b]).await;
    let start = scim.hub.changes().await.len();

    // add: only the user who was not a member is added; the answer leaves the members out.
    let (status, etag, answer) = scim
        .patch(
            &group,
            json!([{"op": "add", "path": "members", "value": [{"value": c}, {"value": a, "display": "Ann"}]}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.get("members").is_none(), "{answer}");
    assert_eq!(answer["displayName"], "Staff");
    assert_eq!(etag, "W/\"2\"");
    assert_eq!(answer["meta"]["version"], "W/\"2\"");
    assert_eq!(scim.members(&group).await, set(&[&a, &b, &c]));
    assert_eq!(scim.events_after(start).await, [membership("added", &c)]);

    // remove with a value filter (Entra ID, Okta).
    let seen = scim.hub.changes().await.len();
    let (status, _, answer) = scim
        .patch(
            &group,
            json!([{"op": "Remove", "path": format!("members[value eq \"{b}\"]")}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(scim.members(&group).await, set(&[&a, &c]));
    assert_eq!(scim.events_after(seen).await, [membership("removed", &b)]);

    // Removing a non-member, or adding and removing in one request, changes nothing.
    let seen = scim.hub.changes().await.len();
    let (status, etag, _) = scim
        .patch(
            &group,
            json!([{"op": "remove", "path": format!("members[value eq \"{d}\"]")}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, "W/\"3\"", "no change, no new version");
    let (status, etag, _) = scim
        .patch(
            &group,
            json!([{"op": "add", "path": "members", "value": [{"value": d}]}, {"op": "remove", "path": "members", "value": [{"value": d}]}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, "W/\"3\"");
    assert!(scim.events_after(seen).await.is_empty());

    // A member who is not a user is refused, and nothing of the request is applied.
    let stranger = "0190f6b2-0000-7000-8000-000000000001";
    let (status, _, answer) = scim
        .patch(
            &group,
            json!([{"op": "add", "path": "members", "value": [{"value": d}, {"value": stranger}]}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["scimType"], "invalidValue");
    assert_eq!(scim.members(&group).await, set(&[&a, &c]));
    assert!(scim.events_after(seen).await.is_empty());

    // replace: the named users become the membership; one event per changed membership.
    let (status, _, answer) = scim
        .patch(
            &group,
            json!([{"op": "replace", "path": "members", "value": [{"value": c}, {"value": d}]}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(scim.members(&group).await, set(&[&c, &d]));
    let mut events = scim.events_after(seen).await;
    events.sort();
    assert_eq!(events, [membership("added", &d), membership("removed", &a)]);

    // Entra's removal with a value list, then removing every member.
    let seen = scim.hub.changes().await.len();
    scim.patch(
        &group,
        json!([{"op": "remove", "path": "members", "value": [{"value": c}]}]),
        None,
    )
    .await;
    assert_eq!(scim.members(&group).await, set(&[&d]));
    let (status, etag, _) = scim
        .patch(&group, json!([{"op": "remove", "path": "members"}]), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, "W/\"6\"");
    assert!(scim.members(&group).await.is_empty());
    assert_eq!(
        scim.events_after(seen).await,
        [membership("removed", &c), membership("removed", &d)]
    );

    // The admin API's member routes write the same events (but for the actor).
    let seen = scim.hub.changes().await.len();
    let (status, _) = scim
        .hub
        .call(Method::PUT, &format!("/api/v1/groups/{group}/members/{a}"), None)
        .await;
    assert!(status.is_success(), "{status}");
    scim.patch(
        &group,
        json!([{"op": "add", "path": "members", "value": [{"value": b}]}]),
        None,
    )
    .await;
    let raw = &scim.hub.changes().await[seen..];
    assert_eq!(raw.len(), 2);
    for key in ["entity", "entity_id", "operation", "data"] {
        assert_eq!(raw[0][key], raw[1][key], "{key}: {raw:?}");
    }

    // A PATCH that names no member keeps them all and writes no membership event.
    let seen = scim.hub.changes().await.len();
    let (status, _, answer) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"id": group, "displayName": "Staff (all)"}}]})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["displayName"], "Staff (all)");
    assert_eq!(
        answer["members"].as_array().map(Vec::len),
        Some(2),
        "the full answer carries the members"
    );
    assert_eq!(scim.members(&group).await, set(&[&a, &b]));
    let events = scim.events_after(seen).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "group");
    scim.hub.stop().await;
}

async fn member_patches_honour_versions(backend: Backend) {
    let scim = Scim::start(backend).await;
    let (a, b) = (scim.user("ann").await, scim.user("ben").await);
    let group = scim.group("Versioned", &[]).await;
    let add = |user: &str| json!([{"op": "add", "path": "members", "value": [{"value": user}]}]);
    let (status, etag, _) = scim.patch(&group, add(&a), Some("W/\"1\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, "W/\"2\"");
    let seen = scim.hub.changes().await.len();
    // A stale tag is refused and changes nothing.
    let (status, _, answer) = scim.patch(&group, add(&b), Some("W/\"1\"")).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{answer}");
    let (status, _, _) = scim
        .patch(
            &group,
            json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
            Some("W/\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(scim.members(&group).await, set(&[&a]));
    assert!(scim.events_after(seen).await.is_empty());
    // `*` and a list holding the current tag pass.
    let (status, etag, _) = scim.patch(&group, add(&b), Some("*")).await;
    assert_eq!((status, etag.as_str()), (StatusCode::OK, "W/\"3\""));
    let (status, etag, _) = scim
        .patch(
            &group,
            json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
            Some("W/\"1\", W/\"3\""),
        )
        .await;
    assert_eq!((status, etag.as_str()), (StatusCode::OK, "W/\"4\""));
    assert_eq!(scim.members(&group).await, set(&[&b]));
    // The version a read reports is the one the writes made.
    let (_, etag, body) = scim
        .send(
            Method::GET,
            &format!("/Groups/{group}?excludedAttributes=members"),
            None,
            None,
        )
        .await;
    assert_eq!(etag, "W/\"4\"");
    assert_eq!(body["meta"]["version"], "W/\"4\"");
    // An unknown group is a 404.
    let (status, _, _) = scim.patch("0190f6b2-0000-7000-8000-000000000002", add(&a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    scim.hub.stop().await;
}

async fn reads_leave_members_out_when_asked(backend: Backend) {
    let scim = Scim::start(backend).await;
    let (a, b) = (scim.user("ann").await, scim.user("ben").await);
    let group = scim.group("Readers", &[&a, &b]).await;
    let get = |path: String| {
        let scim = &scim;
        async move {
            let (status, _, body) = scim.send(Method::GET, &path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };
    let full = get(format!("/Groups/{group}")).await;
    assert_eq!(full["members"].as_array().map(Vec::len), Some(2));
    let lean = get(format!("/Groups/{group}?excludedAttributes=members")).await;
    assert!(lean.get("members").is_none(), "{lean}");
    let mut without = full.clone();
    without.as_object_mut().expect("object").remove("members");
    assert_eq!(lean, without);
    let named = get(format!("/Groups/{group}?attributes=displayName")).await;
    assert!(named.get("members").is_none(), "{named}");
    assert_eq!(named["displayName"], "Readers");
    let values = get(format!("/Groups/{group}?attributes=members.value")).await;
    assert_eq!(values["members"].as_array().map(Vec::len), Some(2), "{values}");
    // Lists and filters, with and without members.
    let filter = format!("members[value eq \"{a}\"]");
    let listed = get(format!(
        "/Groups?excludedAttributes=members&filter={}",
        filter.replace(' ', "%20").replace('"', "%22")
    ))
    .await;
    assert_eq!(listed["totalResults"], 1, "{listed}");
    assert!(listed["Resources"][0].get("members").is_none(), "{listed}");
    let listed = get("/Groups".to_owned()).await;
    assert_eq!(listed["Resources"][0]["members"].as_array().map(Vec::len), Some(2));
    scim.hub.stop().await;
}

async fn member_patches_reach_a_pushed_group(backend: Backend) {
    let scim = Scim::start(backend).await;
    let target = ScimTarget::start().await;
    let app = scim
        .hub
        .connect_app(json!({"name": "Target", "base_url": target.base_url, "token": target.token}))
        .await;
    let app_id = app["id"].as_str().expect("id").to_owned();
    let (status, _) = scim
        .hub
        .call(
            Method::PATCH,
            &format!("/api/v1/apps/{app_id}"),
            Some(json!({"features": {"push_groups": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let group = scim.group("Pushed", &[]).await;
    scim.hub
        .post("/api/v1/policies", json!({"app": app_id, "group": group}))
        .await;
    let (a, b) = (scim.user("ann").await, scim.user("ben").await);
    let (status, _, answer) = scim
        .patch(
            &group,
            json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    scim.hub.settle(&app_id).await;
    let target_id = |name: &'static str| {
        let target = &target;
        async move {
            target.user(name).await.expect("provisioned")["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let pushed_members = || async {
        let groups = target.groups().await;
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0]["displayName"], "Pushed");
        groups[0]["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().expect("value").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ann, ben) = (target_id("ann").await, target_id("ben").await);
    let members: BTreeSet<String> = pushed_members().await;
    assert_eq!(members, set(&[&ann, &ben]));
    let (status, _, _) = scim
        .patch(
            &group,
            json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    scim.hub.settle(&app_id).await;
    let members: BTreeSet<String> = pushed_members().await;
    assert_eq!(members, set(&[&ben]));
    scim.hub.stop().await;
}
