//! Deprovisioning per event against a real SCIM target (scim2-server): what happens to an
//! account when its user leaves the groups, is deactivated, or is deleted, for each choice; that
//! a change of the choices deletes no account already deactivated; and the deletion of accounts
//! deactivated for N days (the clock made short by backdating the deactivation). Both databases.

mod common;

use common::referee::ScimTarget;
use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

backend_tests!(each_event_with_each_choice, deactivated_accounts_deleted_after_days);

/// What the target holds for `username`: `Some(active)`, or `None` when there is no account.
async fn account(target: &ScimTarget, username: &str) -> Option<bool> {
    target.user(username).await.map(|u| u["active"] == json!(true))
}

struct Scenario<'a> {
    hub: &'a TestHub,
    target: &'a ScimTarget,
    app_id: String,
}

impl Scenario<'_> {
    async fn set(&self, deprovision: Value) -> Value {
        let (status, body) = self
            .hub
            .call(
                Method::PATCH,
                &format!("/api/v1/apps/{}", self.app_id),
                Some(json!({"deprovision": deprovision})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.hub.settle(&self.app_id).await;
        body
    }

    /// A user in Staff with an active account in the app.
    async fn member(&self, username: &str) {
        self.hub
            .post(
                "/api/v1/users",
                json!({"username": username, "email": format!("{username}@example.com")}),
            )
            .await;
        self.hub
            .call(Method::PUT, &format!("/api/v1/groups/Staff/members/{username}"), None)
            .await;
        self.hub.settle(&self.app_id).await;
        assert_eq!(
            account(self.target, username).await,
            Some(true),
            "{username} provisioned"
        );
    }

    async fn leaves_groups(&self, username: &str) {
        self.hub
            .call(
                Method::DELETE,
                &format!("/api/v1/groups/Staff/members/{username}"),
                None,
            )
            .await;
        self.hub.settle(&self.app_id).await;
    }

    async fn deactivated(&self, username: &str) {
        self.hub
            .post(&format!("/api/v1/users/{username}/deactivate"), json!({}))
            .await;
        self.hub.settle(&self.app_id).await;
    }

    async fn deleted(&self, username: &str) {
        let (status, _) = self
            .hub
            .call(Method::DELETE, &format!("/api/v1/users/{username}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        self.hub.settle(&self.app_id).await;
    }
}

async fn setup(hub: &TestHub, target: &ScimTarget) -> String {
    let app = hub
        .connect_app(json!({"name": "App", "base_url": target.base_url, "token": target.token}))
        .await;
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": "App", "group": "Staff"}))
        .await;
    app["id"].as_str().unwrap().to_owned()
}

async fn each_event_with_each_choice(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start(backend).await;
    let app_id = setup(&hub, &target).await;
    let s = Scenario {
        hub: &hub,
        target: &target,
        app_id,
    };

    // Leaving the groups: nothing, deactivate, delete.
    s.set(json!({"on_unassign": "nothing"})).await;
    s.member("left-nothing").await;
    s.leaves_groups("left-nothing").await;
    assert_eq!(account(&target, "left-nothing").await, Some(true), "left as it is");
    let answer = s.set(json!({"on_unassign": "deactivate"})).await;
    assert!(
        answer["notices"].to_string().contains("left active under 'nothing'"),
        "{answer}"
    );
    // The account left active under 'nothing' gets the new choice, as the answer said.
    assert_eq!(account(&target, "left-nothing").await, Some(false));
    s.member("left-deactivate").await;
    s.leaves_groups("left-deactivate").await;
    assert_eq!(account(&target, "left-deactivate").await, Some(false), "deactivated");
    s.set(json!({"on_unassign": "delete"})).await;
    s.member("left-delete").await;
    s.leaves_groups("left-delete").await;
    assert_eq!(account(&target, "left-delete").await, None, "deleted");

    // Deactivated in the directory: deactivate, delete.
    s.set(json!({"on_deactivate": "deactivate"})).await;
    s.member("off-deactivate").await;
    s.deactivated("off-deactivate").await;
    assert_eq!(account(&target, "off-deactivate").await, Some(false));
    s.set(json!({"on_deactivate": "delete"})).await;
    s.member("off-delete").await;
    s.deactivated("off-delete").await;
    assert_eq!(account(&target, "off-delete").await, None);

    // Deleted from the directory: deactivate, delete.
    s.set(json!({"on_delete": "deactivate"})).await;
    s.member("gone-deactivate").await;
    s.deleted("gone-deactivate").await;
    assert_eq!(account(&target, "gone-deactivate").await, Some(false));
    let answer = s.set(json!({"on_delete": "delete"})).await;
    let notices = answer["notices"].to_string();
    assert!(
        notices.contains("accounts already deactivated stay deactivated"),
        "{answer}"
    );
    s.member("gone-delete").await;
    s.deleted("gone-delete").await;
    assert_eq!(account(&target, "gone-delete").await, None);

    // The changes above deleted no account that was already deactivated.
    assert_eq!(account(&target, "left-deactivate").await, Some(false));
    assert_eq!(account(&target, "off-deactivate").await, Some(false));
    assert_eq!(account(&target, "gone-deactivate").await, Some(false));
    assert_eq!(account(&target, "left-nothing").await, Some(false));

    // A new event for a deactivated account applies its own choice: the user deactivated for
    // leaving the groups is now deleted from the directory, and on_delete is delete.
    s.deleted("left-deactivate").await;
    assert_eq!(account(&target, "left-deactivate").await, None);

    // `nothing` is not a choice for deactivated or deleted users.
    let (status, body) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/apps/{}", s.app_id),
            Some(json!({"deprovision": {"on_delete": "nothing"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        hub.get(&format!("/api/v1/apps/{}", s.app_id)).await["deprovision"]["on_delete"],
        "delete"
    );
    hub.stop().await;
}

async fn deactivated_accounts_deleted_after_days(backend: Backend) {
    let target = ScimTarget::start().await;
    let hub = TestHub::start_configured(backend, |config| {
        config.workers.deprovision_sweep = Duration::from_millis(500);
    })
    .await;
    let app_id = setup(&hub, &target).await;
    let s = Scenario {
        hub: &hub,
        target: &target,
        app_id: app_id.clone(),
    };
    s.member("old").await;
    s.member("recent").await;
    s.leaves_groups("old").await;
    s.leaves_groups("recent").await;
    assert_eq!(account(&target, "old").await, Some(false));
    // Off by default: nothing is deleted.
    assert_eq!(
        hub.get(&format!("/api/v1/apps/{app_id}")).await["deprovision"]["delete_deactivated_after_days"],
        Value::Null
    );
    let answer = s.set(json!({"delete_deactivated_after_days": 30})).await;
    assert!(answer["notices"].to_string().contains("30 days"), "{answer}");
    // "old" was deactivated 31 days ago as far as the hub knows; "recent" just now.
    let old_id = hub.get("/api/v1/users/old").await["id"].as_str().unwrap().to_owned();
    let backdated = hub
        .store
        .execute_raw(&format!(
            "UPDATE app_accounts SET deactivated_at = deactivated_at - {} WHERE user_id = '{old_id}'",
            31_i64 * 86_400 * 1_000_000
        ))
        .await
        .unwrap();
    assert_eq!(backdated, 1);
    common::eventually(30, "the sweep to delete the old account", || async {
        account(&target, "old").await.is_none().then_some(())
    })
    .await;
    hub.settle(&app_id).await;
    assert_eq!(account(&target, "recent").await, Some(false), "not due yet");
    let reports = hub
        .get(&format!("/api/v1/reports?user=old&app={app_id}&operation=delete"))
        .await;
    let records = reports["items"].as_array().cloned().unwrap_or_default();
    assert!(
        records
            .iter()
            .any(|r| r["outcome"] == "success" && r["cause"] == "deprovision:deactivated_for_days"),
        "the deletion is in the reports: {reports}"
    );
    hub.stop().await;
}
