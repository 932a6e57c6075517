//! The schedule of imports and reconciliations: which apps' runs are due, queued by one node
//! only (the UPDATE that moves the next time decides), and when each is due next.

use super::jobs::insert_jobs;
use super::run_rows::{insert_run_sql, parse_json, run_job};
use super::sql::{Sql, SqlStore, from_micros, get, get_uuid, micros};
use crate::domain::Result;
use crate::domain::reconcile::ReconcileApply;
use crate::domain::target_run::{RunKind, RunStatus, TargetRun};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Queues the runs whose scheduled time has come and sets each next time (see
/// [`TargetRunStore::queue_due_runs`](super::TargetRunStore::queue_due_runs)).
pub(super) async fn queue_due_runs(store: &SqlStore, now: OffsetDateTime) -> Result<Vec<TargetRun>> {
    let rows =
        Sql::new("SELECT id, sync_settings, features, next_import_at, next_reconcile_at FROM apps WHERE enabled = 1")
            .fetch_all(&store.pool)
            .await?;
    let mut queued = Vec::new();
    for row in rows {
        let app = get_uuid(&row, "id")?;
        let settings: crate::domain::target_run::SyncSettings = parse_json(&row, "sync_settings")?;
        let features: crate::domain::features::Features = parse_json(&row, "features")?;
        for (kind, column, every, allowed) in [
            (
                RunKind::Import,
                "next_import_at",
                settings.import_every,
                features.import_users,
            ),
            (RunKind::Reconcile, "next_reconcile_at", settings.reconcile_every, true),
        ] {
            let next: Option<i64> = get(&row, column)?;
            let Some(period) = every.period().filter(|_| allowed) else {
                continue;
            };
            let period = i64::try_from(period.as_micros()).unwrap_or(i64::MAX);
            let now_micros = micros(now);
            // An interval just switched on runs now, then once per period.
            let due = next.is_none_or(|at| at <= now_micros);
            let following = now_micros.saturating_add(period);
            if !due {
                continue;
            }
            let mut tx = store.begin().await?;
            // Of several nodes that read the same due time, only the one whose UPDATE still finds
            // it queues the run.
            let mut sql = match column {
                "next_import_at" => Sql::new("UPDATE apps SET next_import_at = "),
                _ => Sql::new("UPDATE apps SET next_reconcile_at = "),
            }
            .bind_int(following)
            .push(" WHERE id = ")
            .bind_text(app.to_string());
            sql = match (column, next) {
                ("next_import_at", Some(at)) => sql.push(" AND next_import_at = ").bind_int(at),
                ("next_import_at", None) => sql.push(" AND next_import_at IS NULL"),
                (_, Some(at)) => sql.push(" AND next_reconcile_at = ").bind_int(at),
                (_, None) => sql.push(" AND next_reconcile_at IS NULL"),
            };
            let claimed = sql.execute(tx.conn()).await?;
            if claimed == 1 {
                let run = TargetRun {
                    id: Uuid::now_v7(),
                    app_id: app,
                    kind,
                    dry_run: false,
                    apply: match kind {
                        RunKind::Import => ReconcileApply::ReportOnly,
                        RunKind::Reconcile => settings.reconcile,
                    },
                    status: RunStatus::Queued,
                    cause: "schedule".into(),
                    accounts_read: 0,
                    counts: BTreeMap::new(),
                    error: None,
                    warning: None,
                    created_at: now,
                    started_at: None,
                    finished_at: None,
                };
                insert_run_sql(&run)?.execute(tx.conn()).await?;
                insert_jobs(&mut tx, &[run_job(&run)]).await?;
                queued.push(run);
            }
            tx.commit().await?;
        }
    }
    Ok(queued)
}

/// When an app's next scheduled import and reconciliation are due.
pub(super) async fn next_runs(store: &SqlStore, app: Uuid) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>)> {
    let row = Sql::new("SELECT next_import_at, next_reconcile_at FROM apps WHERE id = ")
        .bind_text(app.to_string())
        .fetch_optional(&store.pool)
        .await?;
    let Some(row) = row else {
        return Ok((None, None));
    };
    let at = |column: &str| -> Result<Option<OffsetDateTime>> {
        get::<Option<i64>>(&row, column)?.map(from_micros).transpose()
    };
    Ok((at("next_import_at")?, at("next_reconcile_at")?))
}
