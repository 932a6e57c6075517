//! Runs that read what an app's target holds: imports and reconciliations. The run record an
//! administrator follows (queued, running, done or failed, with its counts), the items it
//! leaves (one per account outcome or difference), the queue of import conflicts, and the
//! per-app schedule.

use super::error::Result;
use super::import::ImportSettings;
use super::reconcile::ReconcileApply;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

stored_enum!(
    /// What a run does.
    RunKind {
        /// Reads the accounts and links or creates directory users.
        Import => "import",
        /// Compares the target with the hub's state and fixes what the app's setting allows.
        Reconcile => "reconcile",
    }
);

stored_enum!(
    /// Where a run is.
    RunStatus {
        /// Waiting for the engine.
        Queued => "queued",
        /// Being read and carried out.
        Running => "running",
        /// Finished; its items and counts are final.
        Done => "done",
        /// Gave up; `error` says why.
        Failed => "failed",
    }
);

stored_enum!(
    /// Where an import conflict is.
    ConflictStatus {
        /// Waiting for an administrator.
        Open => "open",
        /// Linked to the user an administrator chose.
        Linked => "linked",
        /// Left alone for good: later imports skip the account.
        Ignored => "ignored",
    }
);

stored_enum!(
    /// How often a run repeats on its own.
    Interval {
        /// Only on demand.
        Off => "off",
        /// Every hour.
        Hourly => "hourly",
        /// Every six hours.
        SixHourly => "six_hourly",
        /// Every day.
        Daily => "daily",
        /// Every week.
        Weekly => "weekly",
    }
);

// The enum's derives come from `text_enum!`, which has no `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Interval {
    fn default() -> Self {
        Interval::Off
    }
}

impl Interval {
    /// The time between two runs; `None` when off.
    pub fn period(self) -> Option<Duration> {
        let hours = match self {
            Interval::Off => return None,
            Interval::Hourly => 1,
            Interval::SixHourly => 6,
            Interval::Daily => 24,
            Interval::Weekly => 24 * 7,
        };
        Some(Duration::from_secs(hours * 3600))
    }
}

/// An app's import and reconciliation settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// How accounts are matched and what an import may create.
    #[serde(default)]
    pub import: ImportSettings,
    /// How far a reconciliation that applies goes.
    #[serde(default)]
    pub reconcile: ReconcileApply,
    /// How often an import runs on its own (needs the `import` feature).
    #[serde(default)]
    pub import_every: Interval,
    /// How often a reconciliation runs on its own.
    #[serde(default)]
    pub reconcile_every: Interval,
}

impl SyncSettings {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        self.import.validate()
    }
}

/// One import or reconciliation of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetRun {
    /// Identifier.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// Import or reconciliation.
    pub kind: RunKind,
    /// A dry run only plans: it links, creates and fixes nothing.
    pub dry_run: bool,
    /// For a reconciliation: how far it fixes (a dry run: `report_only`).
    pub apply: ReconcileApply,
    /// Where it is.
    pub status: RunStatus,
    /// Who asked (`manual:<actor>` or `schedule`).
    pub cause: String,
    /// Accounts read from the target.
    pub accounts_read: i64,
    /// Items by outcome or kind of difference.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, i64>,
    /// Why it failed, while it is failed or retrying.
    pub error: Option<String>,
    /// Something the administrator should know (e.g. the target's listing changed while read).
    pub warning: Option<String>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the engine started it (the last attempt).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
}

/// One outcome of a run: an account's import outcome or one difference found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunItem {
    /// Position in the run.
    pub seq: i64,
    /// The import outcome (`linked`, `created`, ...) or the kind of difference (`drifted`, ...).
    pub outcome: String,
    /// The account's id in the target.
    pub target_id: Option<String>,
    /// The account's userName.
    pub target_username: Option<String>,
    /// The directory user concerned.
    pub user_id: Option<Uuid>,
    /// Details (candidates and reason; the operations a fix sends).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Whether the run carried it out (linked, created, fixed).
    pub applied: bool,
}

/// An account an import could not link on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportConflict {
    /// Identifier.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// The account's id in the target.
    pub target_id: String,
    /// The account's userName.
    pub target_username: Option<String>,
    /// The account as listed (without `meta`).
    #[schema(value_type = Object)]
    pub account: Value,
    /// The directory users that matched.
    pub candidates: Vec<Uuid>,
    /// Why it was not linked.
    pub reason: String,
    /// Where it is.
    pub status: ConflictStatus,
    /// The user it was linked to.
    pub resolved_user: Option<Uuid>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When it was first found.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// How an administrator resolves a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConflictResolution {
    /// Link the account to this directory user (id or username).
    Link {
        /// The user.
        user: String,
    },
    /// Leave the account alone; later imports skip it.
    Ignore,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_with_defaults_and_refuse_unknown_fields() {
        let settings: SyncSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, SyncSettings::default());
        assert_eq!(settings.reconcile, ReconcileApply::ReportOnly);
        assert_eq!(settings.import_every.period(), None);
        let settings: SyncSettings =
            serde_json::from_str(r#"{"reconcile":"fix_drift","reconcile_every":"hourly"}"#).unwrap();
        assert_eq!(settings.reconcile_every.period(), Some(Duration::from_secs(3600)));
        assert!(serde_json::from_str::<SyncSettings>(r#"{"reconcile":"sometimes"}"#).is_err());
        assert!(serde_json::from_str::<SyncSettings>(r#"{"typo":1}"#).is_err());
        assert_eq!(Interval::parse("weekly").unwrap(), Interval::Weekly);
        assert!(Interval::parse("yearly").is_err());
    }
}
