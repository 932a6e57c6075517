//! Deciding what to do for one user (`plan_user`) or one group (`plan_group`) in one app: pure
//! functions of the app's settings, the desired state and what the engine last pushed.
//! The engine executes the plan; `sync --dry-run` prints it.

use crate::domain::app::{AccessLoss, AccountState, App, AppAccount, AppGroup, DeprovisionAction};
use crate::domain::job::is_secret_key;
use crate::domain::mapping::patch_operations;
use crate::domain::scim::patch::PatchOperation;
use crate::domain::user::User;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use time::OffsetDateTime;

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
        operations: Vec<PatchOperation>,
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

/// The account record that links an existing `account` to `user` (an import, or a conflict
/// linked by hand): what the target holds of the attributes the mapping sets counts as pushed,
/// so the user's next job sends only what differs.
pub fn link_record(
    app: &App,
    user: &crate::domain::user::User,
    account: &crate::domain::import::TargetAccount,
    now: time::OffsetDateTime,
) -> AppAccount {
    let pushed = match app.mapping.render(user) {
        Ok(desired) => crate::domain::mapping::restrict_to(&account.resource(), &desired),
        Err(_) => Value::Object(Default::default()),
    };
    let inactive = account.active == Some(false);
    AppAccount {
        app_id: app.id,
        user_id: user.id,
        target_id: account.id.clone(),
        target_username: account.user_name.clone().unwrap_or_else(|| user.username.clone()),
        state: if inactive {
            AccountState::Deactivated
        } else {
            AccountState::Active
        },
        fingerprint: fingerprint(&pushed),
        pushed,
        deactivated_at: inactive.then_some(now),
        lost_access: None,
        updated_at: now,
    }
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

/// Why `user` (`None`: deleted from the directory) has no access to an app it is not assigned to.
pub fn access_loss(user: Option<&User>) -> AccessLoss {
    match user {
        None => AccessLoss::Deleted,
        Some(user) if !user.active => AccessLoss::Deactivated,
        Some(_) => AccessLoss::Unassigned,
    }
}

/// Decides what to do for one user in `app`. `desired` is the rendered resource when the user is
/// assigned (active and in a group with a policy for the app), `None` otherwise; then `loss` says
/// why (see [`access_loss`]) and the app's per-event deprovisioning applies. `now` decides whether
/// a deactivated account is old enough for the app's deletion after days.
pub fn plan_user(
    app: &App,
    desired: Option<Value>,
    account: Option<&AppAccount>,
    loss: AccessLoss,
    now: OffsetDateTime,
) -> UserPlan {
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
        (None, Some(account)) => plan_deprovision(app, account, loss, now),
    }
}

/// What to do with the account of a user who has no access (any more), for the reason `loss`.
/// An active account gets the app's action for that reason. A deactivated account is deleted
/// only when the deletion after days is due, or when a new reason arrived whose action is
/// `delete` (e.g. its user, deactivated for leaving the groups, is now deleted): a change of the
/// settings alone never deletes accounts that are already deactivated.
fn plan_deprovision(app: &App, account: &AppAccount, loss: AccessLoss, now: OffsetDateTime) -> UserPlan {
    let features = app.features;
    let rules = app.deprovision;
    let delete = || {
        if features.delete_users {
            UserPlan::Delete
        } else {
            UserPlan::Skip {
                reason: "deleting users is switched off for this app".into(),
            }
        }
    };
    match account.state {
        AccountState::Deleted => UserPlan::NoChange,
        AccountState::Active => match rules.action(loss) {
            DeprovisionAction::Nothing => UserPlan::NoChange,
            DeprovisionAction::Deactivate if features.deactivate_users => UserPlan::Deactivate,
            DeprovisionAction::Deactivate => UserPlan::Skip {
                reason: "deactivating users is switched off for this app".into(),
            },
            DeprovisionAction::Delete => delete(),
        },
        AccountState::Deactivated => {
            let due = match (rules.delete_deactivated_after_days, account.deactivated_at) {
                (Some(days), Some(since)) => now - since >= time::Duration::days(i64::from(days)),
                _ => false,
            };
            let new_reason = account.lost_access.is_some_and(|before| before != loss);
            if due || (new_reason && rules.action(loss) == DeprovisionAction::Delete) {
                delete()
            } else {
                UserPlan::NoChange
            }
        }
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

/// What a group should look like in an app: its name and the target ids of its members that
/// have an active account there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredGroup {
    /// The group's name (`displayName`).
    pub name: String,
    /// The members' target ids, sorted.
    pub members: Vec<String>,
}

/// What the engine will do for one group in one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupPlan {
    /// The target holds what was last pushed and that is what the directory says.
    NoChange,
    /// Create the group (after looking it up by name, to adopt an existing one).
    Create(DesiredGroup),
    /// Change the pushed group: a new name, members to add and to remove.
    Update {
        /// The group's id in the target.
        target_id: String,
        /// The new name, when it changed.
        rename: Option<String>,
        /// Members to add (target ids, sorted).
        added: Vec<String>,
        /// Members to remove (target ids, sorted).
        removed: Vec<String>,
    },
    /// Remove the pushed group from the target: the group is gone, it lost its policy for the
    /// app, or the app no longer pushes groups.
    Delete {
        /// The group's id in the target.
        target_id: String,
    },
}

/// Decides what to do for one group in one app. `desired` is present when the app should hold
/// the group (it exists, has a policy for the app, and the app pushes groups); `pushed` is the
/// engine's record of what it last pushed.
pub fn plan_group(desired: Option<&DesiredGroup>, pushed: Option<&AppGroup>) -> GroupPlan {
    match (desired, pushed) {
        (None, None) => GroupPlan::NoChange,
        (None, Some(pushed)) => GroupPlan::Delete {
            target_id: pushed.target_id.clone(),
        },
        (Some(desired), None) => GroupPlan::Create(desired.clone()),
        (Some(desired), Some(pushed)) => {
            let before: BTreeSet<&String> = pushed.pushed_members.iter().collect();
            let after: BTreeSet<&String> = desired.members.iter().collect();
            let added: Vec<String> = after.difference(&before).map(|m| (*m).clone()).collect();
            let removed: Vec<String> = before.difference(&after).map(|m| (*m).clone()).collect();
            let rename = (pushed.pushed_name != desired.name).then(|| desired.name.clone());
            if rename.is_none() && added.is_empty() && removed.is_empty() {
                GroupPlan::NoChange
            } else {
                GroupPlan::Update {
                    target_id: pushed.target_id.clone(),
                    rename,
                    added,
                    removed,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::app::{AppState, ConnectionStatus, Deprovisioning, Features, FlowControl};
    use crate::domain::mapping::Mapping;

    fn app(deprovision: Deprovisioning) -> App {
        App {
            id: uuid::Uuid::now_v7(),
            name: "App".into(),
            kind: "scim".into(),
            base_url: "http://127.0.0.1:9/v2".into(),
            features: Features::default(),
            deprovision,
            enabled: true,
            mapping: Mapping::default(),
            preset: None,
            capabilities: None,
            connection_status: ConnectionStatus::Ok,
            connection_message: None,
            connection_checked_at: None,
            flow: FlowControl::default(),
            state: AppState::Active,
            state_reason: None,
            next_probe_at: None,
            throttled_until: None,
            consecutive_failures: 0,
            sync: Default::default(),
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn account(state: AccountState, lost: Option<AccessLoss>, days_ago: i64, now: OffsetDateTime) -> AppAccount {
        AppAccount {
            app_id: uuid::Uuid::now_v7(),
            user_id: uuid::Uuid::now_v7(),
            target_id: "t".into(),
            target_username: "u".into(),
            state,
            fingerprint: String::new(),
            pushed: json!({"userName": "u"}),
            deactivated_at: (state == AccountState::Deactivated).then(|| now - time::Duration::days(days_ago)),
            lost_access: lost,
            updated_at: now,
        }
    }

    #[test]
    fn each_loss_gets_its_own_action() {
        let now = OffsetDateTime::now_utc();
        let rules = Deprovisioning {
            on_unassign: DeprovisionAction::Nothing,
            on_deactivate: DeprovisionAction::Deactivate,
            on_delete: DeprovisionAction::Delete,
            delete_deactivated_after_days: None,
        };
        let active = account(AccountState::Active, None, 0, now);
        let plan = |loss| plan_user(&app(rules), None, Some(&active), loss, now);
        assert_eq!(plan(AccessLoss::Unassigned), UserPlan::NoChange);
        assert_eq!(plan(AccessLoss::Deactivated), UserPlan::Deactivate);
        assert_eq!(plan(AccessLoss::Deleted), UserPlan::Delete);
    }

    #[test]
    fn deactivated_accounts_are_deleted_only_by_a_new_reason_or_the_days_rule() {
        let now = OffsetDateTime::now_utc();
        let mut rules = Deprovisioning::uniform(DeprovisionAction::Delete);
        let left = account(AccountState::Deactivated, Some(AccessLoss::Unassigned), 3, now);
        // Same reason as when it was deactivated: a settings change alone deletes nothing.
        assert_eq!(
            plan_user(&app(rules), None, Some(&left), AccessLoss::Unassigned, now),
            UserPlan::NoChange
        );
        // A new reason whose choice is delete.
        assert_eq!(
            plan_user(&app(rules), None, Some(&left), AccessLoss::Deleted, now),
            UserPlan::Delete
        );
        rules.on_delete = DeprovisionAction::Deactivate;
        assert_eq!(
            plan_user(&app(rules), None, Some(&left), AccessLoss::Deleted, now),
            UserPlan::NoChange
        );
        // The days rule.
        rules.delete_deactivated_after_days = Some(3);
        assert_eq!(
            plan_user(&app(rules), None, Some(&left), AccessLoss::Unassigned, now),
            UserPlan::Delete
        );
        rules.delete_deactivated_after_days = Some(4);
        assert_eq!(
            plan_user(&app(rules), None, Some(&left), AccessLoss::Unassigned, now),
            UserPlan::NoChange
        );
        // Deleting switched off: said, not done.
        let mut switched_off = app(Deprovisioning {
            delete_deactivated_after_days: Some(1),
            ..rules
        });
        switched_off.features.delete_users = false;
        assert!(matches!(
            plan_user(&switched_off, None, Some(&left), AccessLoss::Unassigned, now),
            UserPlan::Skip { .. }
        ));
    }

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

    fn pushed(name: &str, members: &[&str]) -> AppGroup {
        AppGroup {
            app_id: uuid::Uuid::now_v7(),
            group_id: uuid::Uuid::now_v7(),
            target_id: "g1".into(),
            pushed_name: name.into(),
            pushed_members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn desired(name: &str, members: &[&str]) -> DesiredGroup {
        DesiredGroup {
            name: name.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn groups_are_created_updated_and_deleted_by_difference() {
        assert_eq!(plan_group(None, None), GroupPlan::NoChange);
        assert_eq!(
            plan_group(Some(&desired("Sales", &["a"])), None),
            GroupPlan::Create(desired("Sales", &["a"]))
        );
        assert_eq!(
            plan_group(None, Some(&pushed("Sales", &["a"]))),
            GroupPlan::Delete { target_id: "g1".into() }
        );
        assert_eq!(
            plan_group(
                Some(&desired("Sales", &["a", "b"])),
                Some(&pushed("Sales", &["b", "a"]))
            ),
            GroupPlan::NoChange,
            "member order does not matter"
        );
        assert_eq!(
            plan_group(
                Some(&desired("Sales EU", &["b", "c"])),
                Some(&pushed("Sales", &["a", "b"]))
            ),
            GroupPlan::Update {
                target_id: "g1".into(),
                rename: Some("Sales EU".into()),
                added: vec!["c".into()],
                removed: vec!["a".into()],
            }
        );
        assert_eq!(
            plan_group(Some(&desired("Sales", &[])), Some(&pushed("Sales", &["a"]))),
            GroupPlan::Update {
                target_id: "g1".into(),
                rename: None,
                added: vec![],
                removed: vec!["a".into()],
            }
        );
    }
}
