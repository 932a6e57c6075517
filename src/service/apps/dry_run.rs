//! Dry runs: what a full reconciliation of an app would do, from the same loader and planners the
//! engine runs (`outbound::state`, `plan_user`, `plan_group`), without contacting the target.
//! Each planned action is also on record in the provisioning reports.

use super::{AppService, PlanLine};
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::{Result, now};
use crate::outbound::plan::{GroupPlan, UserPlan, attribute_diff};
use crate::outbound::state::{GroupState, UserState};
use crate::store::{AppStore, AttributeStore, ChangeLogStore, GroupStore, QueueStore, ReportStore, UserStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What a run would do for one user or group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlannedAction {
    /// Nothing: the target holds what the directory says.
    NoChange,
    /// Create the account with these attributes.
    Create {
        /// Attribute -> {old, new}.
        #[schema(value_type = Object)]
        diff: Value,
    },
    /// Update the account.
    Update {
        /// Attribute -> {old, new}.
        #[schema(value_type = Object)]
        diff: Value,
    },
    /// Reactivate (and update) a deactivated account.
    Reactivate {
        /// Attribute -> {old, new}.
        #[schema(value_type = Object)]
        diff: Value,
    },
    /// Deactivate the account.
    Deactivate,
    /// Delete the account.
    Delete,
    /// Something should happen, but a feature of the app is off.
    Skip {
        /// Why.
        reason: String,
    },
    /// Create the group with this many members.
    GroupCreate {
        /// Members with an account in the app.
        members: usize,
    },
    /// Update the pushed group.
    GroupUpdate {
        /// The new name, when it changes.
        rename: Option<String>,
        /// Members to add.
        members_added: usize,
        /// Members to remove.
        members_removed: usize,
    },
    /// Delete the pushed group.
    GroupDelete,
}

impl PlannedAction {
    /// The user plan as a planned action, and the report operation it would record.
    fn of_user(plan: &UserPlan) -> (Self, Option<Operation>) {
        match plan {
            UserPlan::NoChange => (Self::NoChange, None),
            UserPlan::Create { desired } => (
                Self::Create {
                    diff: attribute_diff(&Value::Null, desired),
                },
                Some(Operation::Create),
            ),
            UserPlan::Update {
                diff, reactivate: true, ..
            } => (Self::Reactivate { diff: diff.clone() }, Some(Operation::Reactivate)),
            UserPlan::Update { diff, .. } => (Self::Update { diff: diff.clone() }, Some(Operation::Update)),
            UserPlan::Deactivate => (Self::Deactivate, Some(Operation::Deactivate)),
            UserPlan::Delete => (Self::Delete, Some(Operation::Delete)),
            UserPlan::Skip { reason } => (Self::Skip { reason: reason.clone() }, Some(Operation::Skip)),
        }
    }

    /// The group plan as a planned action.
    fn of_group(plan: &GroupPlan) -> Self {
        match plan {
            GroupPlan::NoChange => Self::NoChange,
            GroupPlan::Create(desired) => Self::GroupCreate {
                members: desired.members.len(),
            },
            GroupPlan::Update {
                rename, added, removed, ..
            } => Self::GroupUpdate {
                rename: rename.clone(),
                members_added: added.len(),
                members_removed: removed.len(),
            },
            GroupPlan::Delete { .. } => Self::GroupDelete,
        }
    }

    /// The action's key, as in the JSON (`create`, `group_update`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            Self::NoChange => "no_change",
            Self::Create { .. } => "create",
            Self::Update { .. } => "update",
            Self::Reactivate { .. } => "reactivate",
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
            Self::Skip { .. } => "skip",
            Self::GroupCreate { .. } => "group_create",
            Self::GroupUpdate { .. } => "group_update",
            Self::GroupDelete => "group_delete",
        }
    }

    /// The action in words.
    pub fn words(&self) -> &'static str {
        match self {
            Self::NoChange => "no change",
            Self::Create { .. } => "create",
            Self::Update { .. } => "update",
            Self::Reactivate { .. } => "reactivate",
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
            Self::Skip { .. } => "skip (a feature is off)",
            Self::GroupCreate { .. } => "create the group",
            Self::GroupUpdate { .. } => "update the group",
            Self::GroupDelete => "delete the group",
        }
    }

    /// The attributes that change (`with_values`: with their old and new values), the reason of
    /// a skip, or the member counts of a group.
    pub fn detail(&self, with_values: bool) -> String {
        match self {
            Self::Create { diff } | Self::Update { diff } | Self::Reactivate { diff } => diff
                .as_object()
                .map(|diff| {
                    diff.iter()
                        .map(|(k, v)| {
                            if with_values {
                                format!("{k}: {} -> {}", v["old"], v["new"])
                            } else {
                                k.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(if with_values { "; " } else { ", " })
                })
                .unwrap_or_default(),
            Self::Skip { reason } => reason.clone(),
            Self::GroupCreate { members } => format!("{members} members"),
            Self::GroupUpdate {
                rename,
                members_added,
                members_removed,
            } => format!(
                "{members_added} members added, {members_removed} removed{}",
                rename
                    .as_ref()
                    .map(|name| format!(", renamed to {name}"))
                    .unwrap_or_default()
            ),
            _ => String::new(),
        }
    }

    /// The attribute changes, for the report record.
    fn diff(&self) -> Option<Value> {
        match self {
            Self::Create { diff } | Self::Update { diff } | Self::Reactivate { diff } => Some(diff.clone()),
            _ => None,
        }
    }
}

impl<S> AppService<S>
where
    S: AppStore + AttributeStore + UserStore + GroupStore + QueueStore + ReportStore + ChangeLogStore + Clone,
{
    /// What a full reconciliation would do, computed from the directory and what the engine last
    /// pushed, without contacting the target.
    pub async fn dry_run(&self, app: &str) -> Result<Vec<PlanLine>> {
        let app = self.get_app(app).await?;
        let (users, groups) = self.store.app_subjects(app.id).await?;
        let dry_run_id = format!("dry-run-{}", Uuid::now_v7().simple());
        let mut lines = Vec::new();
        for user_id in users {
            let state = UserState::load(&self.store, &app, user_id).await?;
            let plan = state.plan(&app, state.desired(&app)?);
            let (action, operation) = PlannedAction::of_user(&plan);
            let name = state.name().unwrap_or_default();
            if let Some(operation) = operation {
                // The plan is on record too, as what a dry run would have done.
                let record = Report {
                    id: Uuid::now_v7(),
                    started_at: now(),
                    duration_ms: 0,
                    app_id: app.id,
                    app_name: app.name.clone(),
                    subject_kind: SubjectKind::User,
                    subject_id: user_id.to_string(),
                    username: Some(name.clone()),
                    email: state.user.as_ref().and_then(|u| u.email.clone()),
                    target_id: state.account.as_ref().map(|a| a.target_id.clone()),
                    operation,
                    outcome: Outcome::DryRun,
                    attempt: 0,
                    http_method: None,
                    http_path: None,
                    http_status: None,
                    diff: action.diff(),
                    message: Some("planned by a dry run; nothing was sent".into()),
                    request_body: None,
                    response_body: None,
                    correlation_id: dry_run_id.clone(),
                    cause: "dry-run".into(),
                };
                self.store.insert_report(&record).await?;
            }
            lines.push(PlanLine {
                subject_kind: SubjectKind::User,
                subject_id: user_id.to_string(),
                name,
                plan: action,
            });
        }
        if app.features.push_groups {
            for group_id in groups {
                let state = GroupState::load(&self.store, &app, group_id).await?;
                lines.push(PlanLine {
                    subject_kind: SubjectKind::Group,
                    subject_id: group_id.to_string(),
                    name: state.name.clone().unwrap_or_default(),
                    plan: PlannedAction::of_group(&state.plan()),
                });
            }
        }
        Ok(lines)
    }
}
