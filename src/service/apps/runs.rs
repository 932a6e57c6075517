//! Imports and reconciliations as an administrator asks for them: queue a run (the engine reads
//! the target, never the request), follow it and its items, and work through the queue of
//! import conflicts.

use super::AppService;
use crate::domain::admin::Actor;
use crate::domain::import::TargetAccount;
use crate::domain::reconcile::ReconcileApply;
use crate::domain::target_run::{
    ConflictResolution, ConflictStatus, ImportConflict, RunItem, RunKind, RunStatus, TargetRun,
};
use crate::domain::{Error, Result, now};
use crate::outbound::plan::link_record;
use crate::store::{
    AppStore, AttributeStore, ChangeLogStore, GroupStore, QueueStore, ReportStore, TargetRunStore, UserStore,
};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// When an app's scheduled runs are next due.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSchedule {
    /// The next scheduled import (absent: not scheduled).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_import_at: Option<OffsetDateTime>,
    /// The next scheduled reconciliation (absent: not scheduled).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_reconcile_at: Option<OffsetDateTime>,
}

impl<S> AppService<S>
where
    S: AppStore
        + AttributeStore
        + UserStore
        + GroupStore
        + QueueStore
        + ReportStore
        + ChangeLogStore
        + TargetRunStore
        + Clone,
{
    async fn queue_run(&self, app: &str, kind: RunKind, dry_run: bool, actor: &Actor) -> Result<TargetRun> {
        let app = self.get_app(app).await?;
        if kind == RunKind::Import && !app.features.import_users {
            return Err(Error::invalid(
                "features",
                format!(
                    "the import feature of app '{}' is off; switch it on (features: import) to import its accounts",
                    app.name
                ),
            ));
        }
        let run = TargetRun {
            id: Uuid::now_v7(),
            app_id: app.id,
            kind,
            dry_run,
            apply: match (kind, dry_run) {
                (RunKind::Reconcile, false) => app.sync.reconcile,
                _ => ReconcileApply::ReportOnly,
            },
            status: RunStatus::Queued,
            cause: format!("manual:{}", actor.label()),
            accounts_read: 0,
            counts: BTreeMap::new(),
            error: None,
            warning: None,
            created_at: now(),
            started_at: None,
            finished_at: None,
        };
        self.store.queue_target_run(&run).await?;
        Ok(run)
    }

    /// Queues an import of `app`'s accounts; a dry run only plans.
    pub async fn start_import(&self, app: &str, dry_run: bool, actor: &Actor) -> Result<TargetRun> {
        self.queue_run(app, RunKind::Import, dry_run, actor).await
    }

    /// Queues a reconciliation of `app`: with `apply`, it fixes what the app's reconcile
    /// setting allows; without, it only reports.
    pub async fn start_reconcile(&self, app: &str, apply: bool, actor: &Actor) -> Result<TargetRun> {
        self.queue_run(app, RunKind::Reconcile, !apply, actor).await
    }

    /// One run.
    pub async fn target_run(&self, id: &str) -> Result<TargetRun> {
        let id = Uuid::parse_str(id).map_err(|_| Error::not_found("run", id))?;
        self.store
            .get_target_run(id)
            .await?
            .ok_or_else(|| Error::not_found("run", id.to_string()))
    }

    /// The newest runs of an app.
    pub async fn target_runs(&self, app: &str, limit: u32) -> Result<Vec<TargetRun>> {
        let app = self.get_app(app).await?;
        self.store.list_target_runs(app.id, limit).await
    }

    /// A run's items after position `after`.
    pub async fn target_run_items(&self, id: &str, after: i64, limit: u32) -> Result<Vec<RunItem>> {
        let run = self.target_run(id).await?;
        self.store.run_items(run.id, after, limit).await
    }

    /// When the app's scheduled runs are next due.
    pub async fn run_schedule(&self, app: &str) -> Result<RunSchedule> {
        let app = self.get_app(app).await?;
        let (next_import_at, next_reconcile_at) = self.store.next_runs(app.id).await?;
        Ok(RunSchedule {
            next_import_at: next_import_at
                .filter(|_| app.sync.import_every.period().is_some() && app.features.import_users),
            next_reconcile_at: next_reconcile_at.filter(|_| app.sync.reconcile_every.period().is_some()),
        })
    }

    /// The import conflicts of an app (of one status, or all).
    pub async fn import_conflicts(&self, app: &str, status: Option<ConflictStatus>) -> Result<Vec<ImportConflict>> {
        let app = self.get_app(app).await?;
        self.store.list_conflicts(app.id, status).await
    }

    /// Resolves an open import conflict of `app`: links its account to a directory user (who
    /// must not have an account in the app yet) or ignores it for good.
    pub async fn resolve_conflict(
        &self,
        app: &str,
        conflict: &str,
        resolution: ConflictResolution,
        actor: &Actor,
    ) -> Result<ImportConflict> {
        let app = self.get_app(app).await?;
        let id = Uuid::parse_str(conflict).map_err(|_| Error::not_found("conflict", conflict))?;
        let found = self
            .store
            .get_conflict(id)
            .await?
            .filter(|c| c.app_id == app.id)
            .ok_or_else(|| Error::not_found("conflict", conflict))?;
        if found.status != ConflictStatus::Open {
            return Err(Error::conflict(
                "conflict",
                format!("the conflict was resolved already ({})", found.status.as_str()),
            ));
        }
        let link = match &resolution {
            ConflictResolution::Ignore => None,
            ConflictResolution::Link { user } => {
                let user = self.directory.get_user(user).await?;
                let account = TargetAccount::from_resource(found.account.clone())
                    .ok_or_else(|| Error::Internal("a stored conflict holds an account without an id".into()))?;
                Some(link_record(&app, &user, &account, now()))
            }
        };
        self.store
            .resolve_conflict(&found, link.as_ref(), &actor.label(), now())
            .await?;
        // A user linked by hand joins the import's group like a user an import links.
        if let (Some(link), Some(group)) = (&link, app.sync.import.assign_group) {
            self.directory
                .add_member(&group.to_string(), &link.user_id.to_string(), actor)
                .await?;
        }
        self.store
            .get_conflict(id)
            .await?
            .ok_or_else(|| Error::not_found("conflict", conflict))
    }
}
