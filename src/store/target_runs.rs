//! SQL for imports and reconciliations: the run records and their items, the links an import
//! makes, the import conflict queue, and the per-app schedule that queues runs on their own.

use super::TargetRunStore;
use super::jobs::insert_jobs;
use super::reports::insert_reports_in;
use super::run_rows::{insert_run_sql, parse_json, run_job};
use super::sql::{Sql, SqlStore, from_micros, get, get_bool, get_uuid, micros};
use crate::domain::app::{AccountState, AppAccount, AppGroup};
use crate::domain::job::{NewJob, Report};
use crate::domain::reconcile::ReconcileApply;
use crate::domain::target_run::{ConflictStatus, ImportConflict, RunItem, RunKind, RunStatus, TargetRun};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// Rows per multi-row insert: a part's links and items each go in one statement (at most
/// 10,000 bound values, within both databases' limits); on PostgreSQL every statement costs a
/// fixed wait, and a part of 1,000 accounts in parts of 100 rows spent about a second on it.
const CHUNK: usize = 1_000;

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Storage(format!("cannot encode: {e}")))
}

fn select_runs() -> Sql {
    Sql::new(
        "SELECT id, app_id, kind, dry_run, apply, status, cause, accounts_read, counts, error, warning, created_at, \
         started_at, finished_at FROM target_runs",
    )
}

fn run_from_row(row: &AnyRow) -> Result<TargetRun> {
    let time = |column: &str| -> Result<Option<OffsetDateTime>> {
        get::<Option<i64>>(row, column)?.map(from_micros).transpose()
    };
    Ok(TargetRun {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        kind: RunKind::parse(&get::<String>(row, "kind")?)?,
        dry_run: get_bool(row, "dry_run")?,
        apply: ReconcileApply::parse(&get::<String>(row, "apply")?)?,
        status: RunStatus::parse(&get::<String>(row, "status")?)?,
        cause: get(row, "cause")?,
        accounts_read: get(row, "accounts_read")?,
        counts: parse_json(row, "counts")?,
        error: get(row, "error")?,
        warning: get(row, "warning")?,
        created_at: from_micros(get(row, "created_at")?)?,
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
    })
}

fn item_from_row(row: &AnyRow) -> Result<RunItem> {
    Ok(RunItem {
        seq: get(row, "seq")?,
        outcome: get(row, "outcome")?,
        target_id: get(row, "target_id")?,
        target_username: get(row, "target_username")?,
        user_id: get::<Option<String>>(row, "user_id")?
            .map(|id| Uuid::parse_str(&id).map_err(|e| Error::Storage(format!("column user_id: {e}"))))
            .transpose()?,
        detail: parse_json(row, "detail")?,
        applied: get_bool(row, "applied")?,
    })
}

fn select_conflicts() -> Sql {
    Sql::new(
        "SELECT id, app_id, target_id, target_username, account, candidates, reason, status, resolved_user, \
         resolved_by, created_at, updated_at FROM import_conflicts",
    )
}

fn conflict_from_row(row: &AnyRow) -> Result<ImportConflict> {
    Ok(ImportConflict {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        target_id: get(row, "target_id")?,
        target_username: get(row, "target_username")?,
        account: parse_json(row, "account")?,
        candidates: parse_json(row, "candidates")?,
        reason: get(row, "reason")?,
        status: ConflictStatus::parse(&get::<String>(row, "status")?)?,
        resolved_user: get::<Option<String>>(row, "resolved_user")?
            .map(|id| Uuid::parse_str(&id).map_err(|e| Error::Storage(format!("column resolved_user: {e}"))))
            .transpose()?,
        resolved_by: get(row, "resolved_by")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

impl TargetRunStore for SqlStore {
    async fn queue_target_run(&self, run: &TargetRun) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_run_sql(run)?.execute(tx.conn()).await?;
        insert_jobs(&mut tx, &[run_job(run)]).await?;
        tx.commit().await
    }

    async fn get_target_run(&self, id: Uuid) -> Result<Option<TargetRun>> {
        let row = select_runs()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_target_runs(&self, app: Uuid, limit: u32) -> Result<Vec<TargetRun>> {
        let rows = select_runs()
            .push(" WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn start_target_run(&self, id: Uuid, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("DELETE FROM target_run_items WHERE run_id = ")
            .bind_text(id.to_string())
            .execute(tx.conn())
            .await?;
        Sql::new("UPDATE target_runs SET status = 'running', error = NULL, warning = NULL, finished_at = NULL, started_at = ")
            .bind_int(micros(now))
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    async fn record_run_progress(
        &self,
        run: Uuid,
        items: &[RunItem],
        links: &[AppAccount],
        conflicts: &[ImportConflict],
        reports: &[Report],
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut linked = Vec::with_capacity(links.len());
        for chunk in links.chunks(CHUNK) {
            let chunk: Vec<&AppAccount> = chunk.iter().collect();
            let sql = super::account_rows::insert_accounts_sql(&chunk);
            // A user who got an account meanwhile (the engine created or adopted one) keeps it.
            let rows = sql
                .push(" ON CONFLICT (app_id, user_id) DO NOTHING RETURNING user_id")
                .fetch_all(tx.conn())
                .await?;
            let stored: HashSet<String> = rows
                .iter()
                .map(|row| get::<String>(row, "user_id"))
                .collect::<Result<_>>()?;
            linked.extend(chunk.iter().map(|a| stored.contains(&a.user_id.to_string())));
        }
        // The items of links that were not stored, found by their user (the links hold created
        // users' accounts too, so positions do not line up with the `linked` items).
        let refused: HashSet<uuid::Uuid> = links
            .iter()
            .zip(&linked)
            .filter(|(_, stored)| !**stored)
            .map(|(link, _)| link.user_id)
            .collect();
        let mut items = items.to_vec();
        for item in items
            .iter_mut()
            .filter(|item| item.applied && item.user_id.is_some_and(|user| refused.contains(&user)))
        {
            item.applied = false;
            item.detail["note"] = serde_json::Value::String(
                "the user got another account in the app meanwhile; this one was not linked".into(),
            );
        }
        for chunk in items.chunks(CHUNK) {
            let mut sql = Sql::new(
                "INSERT INTO target_run_items (run_id, seq, outcome, target_id, target_username, user_id, detail, applied) VALUES ",
            );
            for (i, item) in chunk.iter().enumerate() {
                sql = sql
                    .push(if i == 0 { "(" } else { ", (" })
                    .bind_text(run.to_string())
                    .push(", ")
                    .bind_int(item.seq)
                    .push(", ")
                    .bind_text(item.outcome.clone())
                    .push(", ")
                    .bind_opt_text(item.target_id.clone())
                    .push(", ")
                    .bind_opt_text(item.target_username.clone())
                    .push(", ")
                    .bind_opt_text(item.user_id.map(|id| id.to_string()))
                    .push(", ")
                    .bind_text(to_json(&item.detail)?)
                    .push(", ")
                    .bind_bool(item.applied)
                    .push(")");
            }
            sql.execute(tx.conn()).await?;
        }
        for conflict in conflicts {
            // A conflict an administrator resolved stays resolved; an open one gets the latest reason.
            Sql::new(
                "INSERT INTO import_conflicts (id, app_id, target_id, target_username, account, candidates, reason, status, \
                 created_at, updated_at) VALUES (",
            )
            .bind_text(conflict.id.to_string())
            .push(", ")
            .bind_text(conflict.app_id.to_string())
            .push(", ")
            .bind_text(conflict.target_id.clone())
            .push(", ")
            .bind_opt_text(conflict.target_username.clone())
            .push(", ")
            .bind_text(to_json(&conflict.account)?)
            .push(", ")
            .bind_text(to_json(&conflict.candidates)?)
            .push(", ")
            .bind_text(conflict.reason.clone())
            .push(", 'open', ")
            .bind_int(micros(conflict.created_at))
            .push(", ")
            .bind_int(micros(conflict.updated_at))
            .push(
                ") ON CONFLICT (app_id, target_id) DO UPDATE SET target_username = excluded.target_username, \
                 account = excluded.account, candidates = excluded.candidates, reason = excluded.reason, \
                 updated_at = excluded.updated_at WHERE import_conflicts.status = 'open'",
            )
            .execute(tx.conn())
            .await?;
        }
        insert_reports_in(&mut tx, reports).await?;
        tx.commit().await?;
        Ok(linked)
    }

    async fn record_target_run(
        &self,
        id: Uuid,
        status: RunStatus,
        accounts_read: i64,
        counts: &BTreeMap<String, i64>,
        error: Option<&str>,
        warning: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut sql = Sql::new("UPDATE target_runs SET status = ")
            .bind_text(status.as_str())
            .push(", accounts_read = ")
            .bind_int(accounts_read)
            .push(", counts = ")
            .bind_text(to_json(counts)?)
            .push(", error = ")
            .bind_opt_text(error.map(str::to_owned))
            .push(", warning = ")
            .bind_opt_text(warning.map(str::to_owned));
        if matches!(status, RunStatus::Done | RunStatus::Failed) {
            sql = sql.push(", finished_at = ").bind_int(micros(now));
        }
        let mut tx = self.begin().await?;
        sql.push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    async fn run_items(&self, run: Uuid, after: i64, limit: u32) -> Result<Vec<RunItem>> {
        let rows = Sql::new(
            "SELECT seq, outcome, target_id, target_username, user_id, detail, applied FROM target_run_items WHERE run_id = ",
        )
        .bind_text(run.to_string())
        .push(" AND seq > ")
        .bind_int(after)
        .push(" ORDER BY seq LIMIT ")
        .bind_int(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    async fn list_conflicts(&self, app: Uuid, status: Option<ConflictStatus>) -> Result<Vec<ImportConflict>> {
        let mut sql = select_conflicts().push(" WHERE app_id = ").bind_text(app.to_string());
        if let Some(status) = status {
            sql = sql.push(" AND status = ").bind_text(status.as_str());
        }
        let rows = sql.push(" ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter().map(conflict_from_row).collect()
    }

    async fn get_conflict(&self, id: Uuid) -> Result<Option<ImportConflict>> {
        let row = select_conflicts()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conflict_from_row).transpose()
    }

    async fn resolve_conflict(
        &self,
        conflict: &ImportConflict,
        link: Option<&AppAccount>,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if let Some(account) = link {
            let taken = Sql::new("SELECT user_id FROM app_accounts WHERE app_id = ")
                .bind_text(account.app_id.to_string())
                .push(" AND (user_id = ")
                .bind_text(account.user_id.to_string())
                .push(" OR target_id = ")
                .bind_text(account.target_id.clone())
                .push(")")
                .fetch_optional(tx.conn())
                .await?;
            if taken.is_some() {
                return Err(Error::conflict(
                    "user",
                    "the user already has an account in this app, or the account is already linked",
                ));
            }
            super::account_rows::save_account_sql(account)
                .execute(tx.conn())
                .await?;
        }
        let status = if link.is_some() {
            ConflictStatus::Linked
        } else {
            ConflictStatus::Ignored
        };
        let updated = Sql::new("UPDATE import_conflicts SET status = ")
            .bind_text(status.as_str())
            .push(", resolved_user = ")
            .bind_opt_text(link.map(|a| a.user_id.to_string()))
            .push(", resolved_by = ")
            .bind_text(by.to_owned())
            .push(", updated_at = ")
            .bind_int(micros(now))
            .push(" WHERE id = ")
            .bind_text(conflict.id.to_string())
            .push(" AND status = 'open'")
            .execute(tx.conn())
            .await?;
        if updated == 0 {
            return Err(Error::conflict("conflict", "the conflict is no longer open"));
        }
        tx.commit().await
    }

    async fn ignored_targets(&self, app: Uuid) -> Result<HashSet<String>> {
        let rows = Sql::new("SELECT target_id FROM import_conflicts WHERE status = 'ignored' AND app_id = ")
            .bind_text(app.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| get(row, "target_id")).collect()
    }

    async fn queue_due_runs(&self, now: OffsetDateTime) -> Result<Vec<TargetRun>> {
        super::schedule::queue_due_runs(self, now).await
    }

    async fn next_runs(&self, app: Uuid) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>)> {
        super::schedule::next_runs(self, app).await
    }

    async fn renew_lease(&self, job: &str, until: OffsetDateTime) -> Result<bool> {
        let mut tx = self.begin().await?;
        let renewed = Sql::new("UPDATE sync_jobs SET lease_until = ")
            .bind_int(micros(until))
            .push(" WHERE status = 'running' AND id = ")
            .bind_text(job.to_owned())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(renewed == 1)
    }

    async fn account_links(&self, app: Uuid) -> Result<Vec<(Uuid, String, AccountState)>> {
        let rows = Sql::new("SELECT user_id, target_id, state FROM app_accounts WHERE app_id = ")
            .bind_text(app.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    get_uuid(row, "user_id")?,
                    get(row, "target_id")?,
                    AccountState::parse(&get::<String>(row, "state")?)?,
                ))
            })
            .collect()
    }

    async fn assigned_user_ids(&self, app: Uuid) -> Result<HashSet<Uuid>> {
        let rows = Sql::new(
            "SELECT DISTINCT u.id FROM users u JOIN group_members m ON m.user_id = u.id JOIN policies p ON p.group_id = m.group_id \
             WHERE u.active = 1 AND p.app_id = ",
        )
        .bind_text(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| get_uuid(row, "id")).collect()
    }

    async fn list_app_groups(&self, app: Uuid) -> Result<Vec<AppGroup>> {
        let rows =
            Sql::new("SELECT app_id, group_id, target_id, pushed_name, pushed_members FROM app_groups WHERE app_id = ")
                .bind_text(app.to_string())
                .push(" ORDER BY pushed_name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(AppGroup {
                    app_id: get_uuid(row, "app_id")?,
                    group_id: get_uuid(row, "group_id")?,
                    target_id: get(row, "target_id")?,
                    pushed_name: get(row, "pushed_name")?,
                    pushed_members: parse_json(row, "pushed_members")?,
                })
            })
            .collect()
    }

    async fn record_fixes(
        &self,
        accounts: &[AppAccount],
        forget_accounts: &[(Uuid, Uuid)],
        groups: &[AppGroup],
        forget_groups: &[(Uuid, Uuid)],
        jobs: &[NewJob],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for account in accounts {
            super::account_rows::save_account_sql(account)
                .execute(tx.conn())
                .await?;
        }
        for (app, user) in forget_accounts {
            super::account_rows::delete_account_sql(*app, *user)
                .execute(tx.conn())
                .await?;
        }
        for group in groups {
            super::account_rows::save_app_group_sql(group)?
                .execute(tx.conn())
                .await?;
        }
        for (app, group) in forget_groups {
            super::account_rows::delete_app_group_sql(*app, *group)
                .execute(tx.conn())
                .await?;
        }
        insert_jobs(&mut tx, jobs).await?;
        tx.commit().await
    }
}
