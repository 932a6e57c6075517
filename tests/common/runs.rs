//! Following imports and reconciliations through the admin API: waiting for a run's end, its
//! items, their outcomes by account, and the directory users the tests start from.

use super::{TestHub, eventually};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Waits for a run to end; returns it (it must have ended `done`).
pub async fn finished(hub: &TestHub, run: &Value) -> Value {
    let id = run["id"].as_str().expect("run id").to_owned();
    let run = eventually(60, "the run to end", || async {
        let run = hub.get(&format!("/api/v1/runs/{id}")).await;
        matches!(run["status"].as_str(), Some("done" | "failed")).then_some(run)
    })
    .await;
    assert_eq!(run["status"], "done", "{run}");
    run
}

pub async fn items(hub: &TestHub, run: &Value) -> Vec<Value> {
    let id = run["id"].as_str().expect("run id");
    hub.get(&format!("/api/v1/runs/{id}/items?limit=10000"))
        .await
        .as_array()
        .cloned()
        .expect("items")
}

/// Outcome by the account's userName.
pub fn outcomes(items: &[Value]) -> BTreeMap<String, String> {
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

pub async fn user(hub: &TestHub, username: &str, email: &str) -> Value {
    hub.post(
        "/api/v1/users",
        json!({"username": username, "email": email, "given_name": username, "family_name": "Test"}),
    )
    .await
}
