//! Reconciliation: what an app should hold (from the directory, the policies and the mapping)
//! beside what it does hold, and `plan_reconcile`, the pure comparison that lists each
//! difference (a missing, unlinked, drifted, wrongly active or extra account; a pushed group
//! gone or with the wrong members). How far a run fixes them is the app's `ReconcileApply`.

use super::import::TargetAccount;
use super::mapping::{get_ignoring_case, patch_operations, restrict_to};
use provisio_scim::patch::PatchOperation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

stored_enum!(
    /// How far a reconciliation run that is told to apply goes.
    ReconcileApply {
        /// Only report; the target is never touched.
        ReportOnly => "report_only",
        /// Push the hub's state back: create missing accounts, link unlinked ones, undo drifted
        /// attributes, the active state and group memberships.
        FixDrift => "fix_drift",
        /// As `fix_drift`, and deprovision extra accounts as the app's deprovisioning settings say.
        FixAndDeprovision => "fix_and_deprovision",
    }
);

// The enum's derives come from `stored_enum!`, which has no `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for ReconcileApply {
    fn default() -> Self {
        ReconcileApply::ReportOnly
    }
}

/// What the hub expects of one user's account in the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// Assigned: an active account holding this rendering of the mapping.
    Present(Value),
    /// Deprovisioned by deactivation: the account, if it is still there, is inactive.
    Inactive,
    /// Known to the hub, with nothing to check now (its user's own job is on its way, or the
    /// app leaves such accounts as they are): never counted as extra.
    Known,
}

/// One user the hub expects something of in the app.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedAccount {
    /// The directory user.
    pub user_id: Uuid,
    /// Their username.
    pub username: String,
    /// The target id the hub knows for their account.
    pub linked: Option<String>,
    /// What the account should be.
    pub expectation: Expectation,
}

/// A group the hub pushed to the app, with the members it should have there.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedGroup {
    /// The directory group.
    pub group_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its id in the target.
    pub target_id: String,
    /// Target ids of the members it should have, sorted.
    pub members: Vec<String>,
}

/// One difference between the hub's state and the target's.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// An assigned user has no account in the target.
    Missing {
        /// The user.
        user_id: Uuid,
        /// Their username.
        username: String,
        /// The account the hub knew, gone from the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_id: Option<String>,
    },
    /// An assigned user's account exists (same userName) but the hub has not linked it.
    Unlinked {
        /// The user.
        user_id: Uuid,
        /// Their username.
        username: String,
        /// The account in the target.
        target_id: String,
    },
    /// Attributes the mapping sets hold other values in the target.
    Drifted {
        /// The user.
        user_id: Uuid,
        /// Their username.
        username: String,
        /// The account.
        target_id: String,
        /// The attributes that differ.
        attributes: Vec<String>,
        /// What pushing the hub's state would send.
        #[schema(value_type = Vec<Object>)]
        operations: Vec<PatchOperation>,
    },
    /// The account is active where it should be inactive, or the other way round.
    WrongActive {
        /// The user.
        user_id: Uuid,
        /// Their username.
        username: String,
        /// The account.
        target_id: String,
        /// The active state it should have.
        expected: bool,
    },
    /// An account in the target that no directory user the hub knows of has (every linked
    /// account has an expectation, so an extra one is never linked).
    Extra {
        /// The account.
        target_id: String,
        /// Its userName.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_name: Option<String>,
    },
    /// A pushed group is gone from the target.
    GroupMissing {
        /// The group.
        group_id: Uuid,
        /// Its name.
        name: String,
        /// Its id in the target.
        target_id: String,
    },
    /// A pushed group has other members in the target than the hub's.
    Membership {
        /// The group.
        group_id: Uuid,
        /// Its name.
        name: String,
        /// Its id in the target.
        target_id: String,
        /// Target ids that should be members and are not.
        missing: Vec<String>,
        /// Target ids that are members and should not be.
        unexpected: Vec<String>,
    },
}

impl Drift {
    /// The kind's short name.
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::Missing { .. } => "missing",
            Drift::Unlinked { .. } => "unlinked",
            Drift::Drifted { .. } => "drifted",
            Drift::WrongActive { .. } => "wrong_active",
            Drift::Extra { .. } => "extra",
            Drift::GroupMissing { .. } => "group_missing",
            Drift::Membership { .. } => "membership",
        }
    }

    /// The directory user it concerns, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Drift::Missing { user_id, .. }
            | Drift::Unlinked { user_id, .. }
            | Drift::Drifted { user_id, .. }
            | Drift::WrongActive { user_id, .. } => Some(*user_id),
            Drift::Extra { .. } | Drift::GroupMissing { .. } | Drift::Membership { .. } => None,
        }
    }

    /// Whether a run with `apply` fixes it.
    pub fn fixed_by(&self, apply: ReconcileApply) -> bool {
        match apply {
            ReconcileApply::ReportOnly => false,
            ReconcileApply::FixDrift => !matches!(self, Drift::Extra { .. }),
            ReconcileApply::FixAndDeprovision => true,
        }
    }
}

/// `active` in a resource, regardless of case.
fn active_of(resource: &Value) -> Option<bool> {
    resource
        .as_object()
        .and_then(|object| get_ignoring_case(object, "active"))
        .and_then(Value::as_bool)
}

/// What `plan_reconcile` found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcilePlan {
    /// The differences, in order.
    pub drifts: Vec<Drift>,
    /// Assigned users whose accounts hold what they should.
    pub in_step: usize,
}

/// `resource` without its `active` attribute (the active state is compared on its own).
fn without_active(resource: &Value) -> Value {
    let mut resource = resource.clone();
    if let Some(object) = resource.as_object_mut() {
        object.retain(|key, _| !key.eq_ignore_ascii_case("active"));
    }
    resource
}

/// Compares what the hub expects with what the target holds, in the order of `expected`, then
/// the extra accounts in the order listed, then the groups. Accounts are found by their linked
/// target id, an assigned user without a link by `userName` (regardless of case). When
/// `inactive_is_deprovisioned` (the app deactivates accounts whose users lose access), an
/// inactive account nobody owns is deprovisioned already, not extra.
/// `expected` is consumed one by one, so its renderings need not all be held at once.
pub fn plan_reconcile(
    expected: impl IntoIterator<Item = ExpectedAccount>,
    accounts: &[TargetAccount],
    links_by_target: &HashMap<String, Uuid>,
    groups: &[ExpectedGroup],
    target_groups: &HashMap<String, Vec<String>>,
    inactive_is_deprovisioned: bool,
) -> ReconcilePlan {
    let mut in_step = 0;
    let by_id: HashMap<&str, &TargetAccount> = accounts.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut by_name: HashMap<String, &TargetAccount> = HashMap::new();
    for account in accounts {
        if let Some(name) = &account.user_name {
            by_name.entry(name.to_lowercase()).or_insert(account);
        }
    }
    let mut used: HashSet<&str> = HashSet::new();
    let mut drifts = Vec::new();
    for want in expected {
        let drifts_before = drifts.len();
        let present = matches!(want.expectation, Expectation::Present(_));
        let found = want.linked.as_deref().and_then(|id| by_id.get(id).copied());
        match &want.expectation {
            Expectation::Present(desired) => {
                let account = match (found, &want.linked) {
                    (Some(account), _) => account,
                    (None, Some(gone)) => {
                        drifts.push(Drift::Missing {
                            user_id: want.user_id,
                            username: want.username.clone(),
                            target_id: Some(gone.clone()),
                        });
                        continue;
                    }
                    (None, None) => {
                        let name = desired
                            .get("userName")
                            .and_then(Value::as_str)
                            .unwrap_or(&want.username)
                            .to_lowercase();
                        match by_name.get(&name).filter(|a| !links_by_target.contains_key(&a.id)) {
                            Some(account) => {
                                used.insert(account.id.as_str());
                                drifts.push(Drift::Unlinked {
                                    user_id: want.user_id,
                                    username: want.username.clone(),
                                    target_id: account.id.clone(),
                                });
                            }
                            None => drifts.push(Drift::Missing {
                                user_id: want.user_id,
                                username: want.username.clone(),
                                target_id: None,
                            }),
                        }
                        continue;
                    }
                };
                used.insert(account.id.as_str());
                if let Some(wanted) = active_of(desired)
                    && account.active.is_some_and(|active| active != wanted)
                {
                    drifts.push(Drift::WrongActive {
                        user_id: want.user_id,
                        username: want.username.clone(),
                        target_id: account.id.clone(),
                        expected: wanted,
                    });
                }
                let desired = without_active(desired);
                let current = restrict_to(&account.resource(), &desired);
                let operations = patch_operations(&current, &desired);
                if !operations.is_empty() {
                    let mut attributes: Vec<String> = operations
                        .iter()
                        .map(|op| op.path.as_ref().map(ToString::to_string).unwrap_or_default())
                        .collect();
                    attributes.dedup();
                    drifts.push(Drift::Drifted {
                        user_id: want.user_id,
                        username: want.username.clone(),
                        target_id: account.id.clone(),
                        attributes,
                        operations,
                    });
                }
            }
            Expectation::Known => {
                if let Some(account) = found {
                    used.insert(account.id.as_str());
                }
            }
            Expectation::Inactive => {
                if let Some(account) = found {
                    used.insert(account.id.as_str());
                    if account.active == Some(true) {
                        drifts.push(Drift::WrongActive {
                            user_id: want.user_id,
                            username: want.username.clone(),
                            target_id: account.id.clone(),
                            expected: false,
                        });
                    }
                }
            }
        }
        if present && drifts.len() == drifts_before {
            in_step += 1;
        }
    }
    for account in accounts {
        let deprovisioned = inactive_is_deprovisioned && account.active == Some(false);
        if !deprovisioned && !used.contains(account.id.as_str()) {
            drifts.push(Drift::Extra {
                target_id: account.id.clone(),
                user_name: account.user_name.clone(),
            });
        }
    }
    for group in groups {
        let Some(members) = target_groups.get(&group.target_id) else {
            drifts.push(Drift::GroupMissing {
                group_id: group.group_id,
                name: group.name.clone(),
                target_id: group.target_id.clone(),
            });
            continue;
        };
        let held: HashSet<&str> = members.iter().map(String::as_str).collect();
        let wanted: HashSet<&str> = group.members.iter().map(String::as_str).collect();
        let mut missing: Vec<String> = wanted.difference(&held).map(|s| (*s).to_owned()).collect();
        let mut unexpected: Vec<String> = held.difference(&wanted).map(|s| (*s).to_owned()).collect();
        if missing.is_empty() && unexpected.is_empty() {
            continue;
        }
        missing.sort();
        unexpected.sort();
        drifts.push(Drift::Membership {
            group_id: group.group_id,
            name: group.name.clone(),
            target_id: group.target_id.clone(),
            missing,
            unexpected,
        });
    }
    ReconcilePlan { drifts, in_step }
}

#[cfg(test)]
mod tests;
