//! Reconciling the hub with what an app holds, against a real scim2-server changed by hand, on
//! SQLite and PostgreSQL: each kind of drift found, fixed when the app's setting allows, and the
//! target left alone in report-only mode.

mod common;

use common::referee::ScimTarget;
use common::runs::{finished, items, outcomes, user};
use common::{Backend, TestHub};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

backend_tests!(reconciliation_finds_each_drift_and_fixes_it_only_when_asked);

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
