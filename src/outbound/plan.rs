//! Deciding what to do for one user in one app: a pure function of the app's settings, the
//! desired resource (present when the user is assigned) and what the engine last pushed.
//! The engine executes the plan; `sync --dry-run` prints it.

use crate::domain::app::{AccountState, App, AppAccount, Deprovision};
use crate::domain::job::is_secret_key;
use crate::domain::mapping::patch_operations;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// What the engine will do for one user.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UserPlan {
    /// The target already holds what the directory says.
    NoChange,
    /// Create the account (after looking it up, to adopt an existing one).
    Create {
        /// The resource to send.
        #[schema(value_type = Object)]
        desired: Value,
    },
    /// Update the account; `reactivate` when it was deactivated.
    Update {
        /// The resource the target should end up with.
        #[schema(value_type = Object)]
        desired: Value,
        /// The PATCH operations from the last pushed state.
        #[schema(value_type = Vec<Object>)]
        operations: Vec<Value>,
        /// The attributes that change: path -> {old, new}.
        #[schema(value_type = Object)]
        diff: Value,
        /// The account is being reactivated.
        reactivate: bool,
    },
    /// Set the account inactive.
    Deactivate,
    /// Delete the account.
    Delete,
    /// Something should happen but the app's features forbid it.
    Skip {
        /// Why.
        reason: String,
    },
}

/// A stable fingerprint of a rendered resource (SHA-256 of its canonical JSON).
pub fn fingerprint(resource: &Value) -> String {
    // serde_json maps are sorted by key, so the text is canonical.
    Sha256::digest(resource.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Flattens a resource to `path -> value`: top-level attributes, their sub-attributes
/// (`name.givenName`), and extension attributes (`urn:...:User:department`, `urn:...:User:manager.value`).
/// Arrays and anything deeper are compared whole.
fn flatten(resource: &Value, out: &mut Map<String, Value>) {
    let Value::Object(map) = resource else { return };
    for (key, value) in map {
        if matches!(key.as_str(), "schemas" | "id" | "meta") {
            continue;
        }
        match value {
            Value::Object(inner) if key.to_lowercase().starts_with("urn:") => {
                for (attr, attr_value) in inner {
                    let path = format!("{key}:{attr}");
                    match attr_value {
                        Value::Object(subs) => {
                            for (sub, sub_value) in subs {
                                out.insert(format!("{path}.{sub}"), sub_value.clone());
                            }
                        }
                        other => {
                            out.insert(path, other.clone());
                        }
                    }
                }
            }
            Value::Object(subs) => {
                for (sub, sub_value) in subs {
                    out.insert(format!("{key}.{sub}"), sub_value.clone());
                }
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
}

/// The attributes that differ between two rendered resources, as `path -> {"old": .., "new": ..}`.
pub fn attribute_diff(previous: &Value, desired: &Value) -> Value {
    let (mut before, mut after) = (Map::new(), Map::new());
    flatten(previous, &mut before);
    flatten(desired, &mut after);
    let mut diff = Map::new();
    for key in before.keys().chain(after.keys()) {
        let (old, new) = (before.get(key), after.get(key));
        if old != new && !diff.contains_key(key) {
            if is_secret_key(key) {
                diff.insert(key.clone(), json!({"old": "[redacted]", "new": "[redacted]"}));
                continue;
            }
            diff.insert(
                key.clone(),
                json!({"old": old.cloned().unwrap_or(Value::Null), "new": new.cloned().unwrap_or(Value::Null)}),
            );
        }
    }
    Value::Object(diff)
}

/// Decides what to do for one user in `app`. `desired` is the rendered resource when the user is
/// assigned (active and in a group with a policy for the app), `None` otherwise.
pub fn plan_user(app: &App, desired: Option<Value>, account: Option<&AppAccount>) -> UserPlan {
    let features = app.features;
    match (desired, account) {
        (Some(desired), None) => create(features.create_users, desired),
        (Some(desired), Some(account)) if account.state == AccountState::Deleted => {
            create(features.create_users, desired)
        }
        (Some(desired), Some(account)) => {
            let reactivate = account.state == AccountState::Deactivated;
            if !reactivate && fingerprint(&desired) == account.fingerprint {
                return UserPlan::NoChange;
            }
            if !reactivate && !features.update_users {
                return UserPlan::Skip {
                    reason: "updating users is switched off for this app".into(),
                };
            }
            let operations = patch_operations(&account.pushed, &desired);
            let diff = attribute_diff(&account.pushed, &desired);
            UserPlan::Update {
                desired,
                operations,
                diff,
                reactivate,
            }
        }
        (None, None) => UserPlan::NoChange,
        (None, Some(account)) => match (account.state, app.deprovision) {
            (AccountState::Deleted, _) => UserPlan::NoChange,
            (AccountState::Active, Deprovision::Deactivate) if features.deactivate_users => UserPlan::Deactivate,
            (AccountState::Active, Deprovision::Deactivate) => UserPlan::Skip {
                reason: "deactivating users is switched off for this app".into(),
            },
            (_, Deprovision::Delete) if features.delete_users => UserPlan::Delete,
            (AccountState::Active, Deprovision::Delete) => UserPlan::Skip {
                reason: "deleting users is switched off for this app".into(),
            },
            (AccountState::Deactivated, _) => UserPlan::NoChange,
        },
    }
}

fn create(allowed: bool, desired: Value) -> UserPlan {
    if allowed {
        UserPlan::Create { desired }
    } else {
        UserPlan::Skip {
            reason: "creating users is switched off for this app".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_leaves() {
        let before =
            json!({"schemas": ["x"], "userName": "a", "name": {"givenName": "A", "familyName": "B"}, "title": "Eng"});
        let after = json!({"schemas": ["x"], "userName": "a", "name": {"givenName": "Al", "familyName": "B"}});
        let diff = attribute_diff(&before, &after);
        assert_eq!(
            diff,
            json!({"name.givenName": {"old": "A", "new": "Al"}, "title": {"old": "Eng", "new": null}})
        );
    }

    #[test]
    fn fingerprints_ignore_key_order() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": 2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }
}
