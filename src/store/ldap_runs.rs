//! SQL for the runs of LDAP sources: the queue (a waiting run of the same kind is reused; one run
//! of a source runs at a time, under a lease), scheduled syncs queued once across nodes, and the
//! change-marker watermark an incremental sync starts from.

use super::ldap::{next_sync, select_sources, source_from_row, to_json};
use super::run_rows::parse_json;
use super::sql::{Sql, SqlStore, from_micros, get, get_bool, get_uuid, micros};
use crate::domain::ldap::run::{LdapRun, LdapRunKind, LdapRunStatus, SyncMode};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use std::future::Future;
use time::OffsetDateTime;
use uuid::Uuid;

/// The runs of LDAP sources and their watermarks.
pub trait LdapRunStore: Send + Sync {
    /// Queues a run; a run of the same kind, mode and dryness already waiting is returned instead.
    fn queue_ldap_run(&self, run: &LdapRun) -> impl Future<Output = Result<LdapRun>> + Send;
    /// Takes the oldest queued run of a source with no running one, under a lease.
    fn claim_ldap_run(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<LdapRun>>> + Send;
    /// Extends a running run's lease; `false` when `owner` no longer holds it.
    fn renew_ldap_run(
        &self,
        id: Uuid,
        owner: &str,
        lease_until: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Stores a run's end (status, counts, error), if `owner` still holds it.
    fn finish_ldap_run(&self, run: &LdapRun, owner: &str) -> impl Future<Output = Result<()>> + Send;
    /// One run.
    fn get_ldap_run(&self, id: Uuid) -> impl Future<Output = Result<Option<LdapRun>>> + Send;
    /// A source's newest runs, newest first.
    fn list_ldap_runs(&self, source: Uuid, limit: u32) -> impl Future<Output = Result<Vec<LdapRun>>> + Send;
    /// Puts runs whose node stopped (lease run out) back in the queue.
    fn requeue_expired_ldap_runs(&self, now: OffsetDateTime) -> impl Future<Output = Result<u64>> + Send;
    /// Queues the scheduled syncs that are due (once, whichever node asks first).
    fn queue_due_ldap_syncs(&self, now: OffsetDateTime) -> impl Future<Output = Result<Vec<LdapRun>>> + Send;
    /// The change marker the last sync saw.
    fn ldap_watermark(&self, source: Uuid) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Stores the change marker a sync saw.
    fn set_ldap_watermark(&self, source: Uuid, watermark: Option<&str>) -> impl Future<Output = Result<()>> + Send;
}

fn select_runs() -> Sql {
    Sql::new(
        "SELECT id, source_id, kind, mode, dry_run, status, cause, counts, error, created_at, started_at, finished_at FROM ldap_runs",
    )
}

fn run_from_row(row: &AnyRow) -> Result<LdapRun> {
    let time = |column: &str| -> Result<Option<OffsetDateTime>> {
        get::<Option<i64>>(row, column)?.map(from_micros).transpose()
    };
    Ok(LdapRun {
        id: get_uuid(row, "id")?,
        source_id: get_uuid(row, "source_id")?,
        kind: LdapRunKind::parse(&get::<String>(row, "kind")?)?,
        mode: SyncMode::parse(&get::<String>(row, "mode")?)?,
        dry_run: get_bool(row, "dry_run")?,
        status: LdapRunStatus::parse(&get::<String>(row, "status")?)?,
        cause: get(row, "cause")?,
        counts: parse_json(row, "counts")?,
        error: get(row, "error")?,
        created_at: from_micros(get(row, "created_at")?)?,
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
    })
}

fn insert_run_sql(run: &LdapRun) -> Result<Sql> {
    Ok(Sql::new(
        "INSERT INTO ldap_runs (id, source_id, kind, mode, dry_run, status, cause, counts, created_at) VALUES (",
    )
    .bind_text(run.id.to_string())
    .push(", ")
    .bind_text(run.source_id.to_string())
    .push(", ")
    .bind_text(run.kind.as_str())
    .push(", ")
    .bind_text(run.mode.as_str())
    .push(", ")
    .bind_bool(run.dry_run)
    .push(", ")
    .bind_text(run.status.as_str())
    .push(", ")
    .bind_text(run.cause.clone())
    .push(", ")
    .bind_text(to_json(&run.counts)?)
    .push(", ")
    .bind_int(micros(run.created_at))
    .push(")"))
}

impl LdapRunStore for SqlStore {
    async fn queue_ldap_run(&self, run: &LdapRun) -> Result<LdapRun> {
        let mut tx = self.begin().await?;
        // A run of the same kind already waiting does the same work: it is the answer.
        let waiting = select_runs()
            .push(" WHERE source_id = ")
            .bind_text(run.source_id.to_string())
            .push(" AND kind = ")
            .bind_text(run.kind.as_str())
            .push(" AND mode = ")
            .bind_text(run.mode.as_str())
            .push(" AND dry_run = ")
            .bind_bool(run.dry_run)
            .push(" AND status = 'queued'")
            .fetch_optional(tx.conn())
            .await?;
        if let Some(row) = waiting {
            return run_from_row(&row);
        }
        insert_run_sql(run)?.execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(run.clone())
    }

    async fn claim_ldap_run(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<LdapRun>> {
        // Idle runners look often: only a queued run is worth a write transaction.
        if Sql::new("SELECT 1 AS n FROM ldap_runs WHERE status = 'queued' LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let candidate = Sql::new(
            "SELECT id FROM ldap_runs r WHERE status = 'queued' AND NOT EXISTS \
             (SELECT 1 FROM ldap_runs o WHERE o.source_id = r.source_id AND o.status = 'running') \
             ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(tx.conn())
        .await?;
        let Some(candidate) = candidate else {
            return Ok(None);
        };
        let id: String = get(&candidate, "id")?;
        let taken = Sql::new("UPDATE ldap_runs SET status = 'running', lease_owner = ")
            .bind_text(owner.to_owned())
            .push(", lease_until = ")
            .bind_int(micros(lease_until))
            .push(", started_at = ")
            .bind_int(micros(now))
            .push(" WHERE id = ")
            .bind_text(id.clone())
            .push(" AND status = 'queued'")
            .execute(tx.conn())
            .await?;
        if taken == 0 {
            return Ok(None);
        }
        let row = select_runs()
            .push(" WHERE id = ")
            .bind_text(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| Error::Internal("a claimed LDAP run vanished".into()))?;
        let run = run_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn renew_ldap_run(&self, id: Uuid, owner: &str, lease_until: OffsetDateTime) -> Result<bool> {
        let mut tx = self.begin().await?;
        let renewed = Sql::new("UPDATE ldap_runs SET lease_until = ")
            .bind_int(micros(lease_until))
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .push(" AND status = 'running' AND lease_owner = ")
            .bind_text(owner.to_owned())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(renewed > 0)
    }

    async fn finish_ldap_run(&self, run: &LdapRun, owner: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("UPDATE ldap_runs SET status = ")
            .bind_text(run.status.as_str())
            .push(", counts = ")
            .bind_text(to_json(&run.counts)?)
            .push(", error = ")
            .bind_opt_text(run.error.clone())
            .push(", finished_at = ")
            .bind_opt_int(run.finished_at.map(micros))
            .push(", lease_owner = NULL, lease_until = NULL WHERE id = ")
            .bind_text(run.id.to_string())
            .push(" AND lease_owner = ")
            .bind_text(owner.to_owned())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    async fn get_ldap_run(&self, id: Uuid) -> Result<Option<LdapRun>> {
        let row = select_runs()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_ldap_runs(&self, source: Uuid, limit: u32) -> Result<Vec<LdapRun>> {
        let rows = select_runs()
            .push(" WHERE source_id = ")
            .bind_text(source.to_string())
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn requeue_expired_ldap_runs(&self, now: OffsetDateTime) -> Result<u64> {
        let expired = Sql::new("SELECT 1 AS n FROM ldap_runs WHERE status = 'running' AND lease_until < ")
            .bind_int(micros(now))
            .push(" LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if expired.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let requeued = Sql::new(
            "UPDATE ldap_runs SET status = 'queued', lease_owner = NULL, lease_until = NULL WHERE status = 'running' AND lease_until < ",
        )
        .bind_int(micros(now))
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(requeued)
    }

    async fn queue_due_ldap_syncs(&self, now: OffsetDateTime) -> Result<Vec<LdapRun>> {
        let due = Sql::new("SELECT 1 AS n FROM ldap_sources WHERE next_sync_at IS NOT NULL AND next_sync_at <= ")
            .bind_int(micros(now))
            .push(" LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let rows = select_sources()
            .push(" WHERE next_sync_at IS NOT NULL AND next_sync_at <= ")
            .bind_int(micros(now))
            .fetch_all(tx.conn())
            .await?;
        let mut queued = Vec::new();
        for row in &rows {
            let source = source_from_row(row)?;
            // Moving the next time on first makes the queueing once-only across nodes.
            let moved = Sql::new("UPDATE ldap_sources SET next_sync_at = ")
                .bind_opt_int(next_sync(&source, now))
                .push(" WHERE id = ")
                .bind_text(source.id.to_string())
                .push(" AND next_sync_at <= ")
                .bind_int(micros(now))
                .execute(tx.conn())
                .await?;
            if moved == 0 {
                continue;
            }
            let mode = if source.settings.change_marker.is_some() {
                SyncMode::Incremental
            } else {
                SyncMode::Full
            };
            let run = LdapRun::queued(source.id, LdapRunKind::Sync, mode, false, "schedule", now);
            let waiting = Sql::new("SELECT id FROM ldap_runs WHERE source_id = ")
                .bind_text(source.id.to_string())
                .push(" AND kind = 'sync' AND status = 'queued'")
                .fetch_optional(tx.conn())
                .await?;
            if waiting.is_none() {
                insert_run_sql(&run)?.execute(tx.conn()).await?;
                queued.push(run);
            }
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn ldap_watermark(&self, source: Uuid) -> Result<Option<String>> {
        let row = Sql::new("SELECT watermark FROM ldap_sources WHERE id = ")
            .bind_text(source.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => get(&row, "watermark"),
            None => Ok(None),
        }
    }

    async fn set_ldap_watermark(&self, source: Uuid, watermark: Option<&str>) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("UPDATE ldap_sources SET watermark = ")
            .bind_opt_text(watermark.map(str::to_owned))
            .push(" WHERE id = ")
            .bind_text(source.to_string())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }
}
