//! SQL for the durable work queue: queueing jobs (one, or a whole synchronisation), the lease
//! sweep, and the jobs as the API lists, retries and discards them. Deriving jobs from the change
//! log is `dispatch.rs`, claiming them `claims.rs`, recording their ends `finish.rs`.

use super::QueueStore;
use super::jobs::insert_jobs;
use super::sql::{Sql, SqlStore, from_micros, get, get_uuid, micros};
use crate::domain::job::{Job, JobStatus, NewJob, SubjectKind};
use crate::domain::{Error, Result, now};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns `job_from_row` reads.
macro_rules! job_columns {
    () => {
        "id, app_id, subject_kind, subject_id, status, attempts, correlation_id, run_id, cause, last_error, not_before, created_at"
    };
}

pub(super) use job_columns;

/// A job from a row of `job_columns!()`.
pub(super) fn job_from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: get(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        subject_kind: SubjectKind::parse(&get::<String>(row, "subject_kind")?)?,
        subject_id: get(row, "subject_id")?,
        status: JobStatus::parse(&get::<String>(row, "status")?)?,
        attempts: get(row, "attempts")?,
        correlation_id: get(row, "correlation_id")?,
        run_id: get(row, "run_id")?,
        cause: get(row, "cause")?,
        last_error: get(row, "last_error")?,
        not_before: from_micros(get(row, "not_before")?)?,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}

impl QueueStore for SqlStore {
    async fn dispatch_changes(&self, limit: u32) -> Result<super::Dispatched> {
        self.dispatch(limit).await
    }

    async fn enqueue(&self, job: &NewJob) -> Result<String> {
        let mut tx = self.begin_write().await?;
        insert_jobs(&mut tx, std::slice::from_ref(job)).await?;
        let row = Sql::new("SELECT id FROM sync_jobs WHERE status = 'pending' AND app_id = ")
            .bind_text(job.app_id.to_string())
            .push(" AND subject_kind = ")
            .bind_text(job.subject_kind.as_str())
            .push(" AND subject_id = ")
            .bind_text(job.subject_id.clone())
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| Error::Storage("the queued job vanished".into()))?;
        let id: String = get(&row, "id")?;
        if let Some(run) = &job.run_id {
            // A pending job that absorbed this one joins the run, so the run's progress counts it.
            Sql::new("UPDATE sync_jobs SET run_id = ")
                .bind_text(run.clone())
                .push(" WHERE id = ")
                .bind_text(id.clone())
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    async fn claim_batch(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: &super::ClaimLimits,
    ) -> Result<Vec<(Job, crate::domain::app::FlowControl)>> {
        self.claim_jobs(owner, now, lease_until, limits).await
    }

    async fn finish_jobs(&self, finished: &[&crate::domain::job::FinishedJob]) -> Result<Vec<Result<()>>> {
        self.finish_batch(finished).await
    }

    async fn enqueue_run(&self, jobs: &[NewJob]) -> Result<u64> {
        let mut tx = self.begin().await?;
        insert_jobs(&mut tx, jobs).await?;
        // Pending jobs that absorbed one of these join the run, so its progress counts them.
        for chunk in jobs.chunks(200) {
            let Some(first) = chunk.first() else { continue };
            let Some(run) = &first.run_id else { continue };
            for kind in [SubjectKind::User, SubjectKind::Group] {
                let ids: Vec<String> = chunk
                    .iter()
                    .filter(|j| j.subject_kind == kind && j.app_id == first.app_id)
                    .map(|j| j.subject_id.clone())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                Sql::new("UPDATE sync_jobs SET run_id = ")
                    .bind_text(run.clone())
                    .push(" WHERE status = 'pending' AND app_id = ")
                    .bind_text(first.app_id.to_string())
                    .push(" AND subject_kind = ")
                    .bind_text(kind.as_str())
                    .push(" AND subject_id IN ")
                    .bind_text_list(ids)
                    .execute(tx.conn())
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(jobs.len() as u64)
    }

    async fn queued_user_jobs(&self, app: Uuid) -> Result<u64> {
        let row = Sql::new(
            "SELECT COUNT(*) AS n FROM sync_jobs WHERE subject_kind = 'user' AND status IN ('pending', 'running') AND app_id = ",
        )
        .bind_text(app.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let n: i64 = match row {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn requeue_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let rows = Sql::new("SELECT id FROM sync_jobs WHERE status = 'running' AND lease_until < ")
            .bind_int(micros(now))
            .fetch_all(&self.pool)
            .await?;
        let mut requeued = 0;
        for row in rows {
            let id: String = get(&row, "id")?;
            let result = Sql::new("UPDATE sync_jobs SET status = 'pending', lease_until = NULL, last_error = 'its worker stopped before finishing', not_before = ")
                .bind_int(micros(now))
                .push(" WHERE status = 'running' AND lease_until < ")
                .bind_int(micros(now))
                .push(" AND id = ")
                .bind_text(id.clone())
                .execute(&self.pool)
                .await;
            match result {
                Ok(n) => requeued += n,
                // A newer job for the same subject is pending: it reconciles the same state.
                Err(Error::Conflict { .. }) => {
                    Sql::new("UPDATE sync_jobs SET status = 'done', lease_until = NULL, last_error = 'superseded by a newer job' WHERE status = 'running' AND id = ")
                        .bind_text(id)
                        .execute(&self.pool)
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(requeued)
    }

    async fn queue_expired_deactivations(&self, now: OffsetDateTime) -> Result<usize> {
        super::expiry::queue_expired_deactivations(self, now).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        let row = Sql::new(concat!("SELECT ", job_columns!(), " FROM sync_jobs WHERE id = "))
            .bind_text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn retry_failed(&self, app: Uuid, job: Option<&str>) -> Result<u64> {
        let mut retried = 0;
        let rows = Sql::new("SELECT id FROM sync_jobs WHERE status = 'failed' AND app_id = ")
            .bind_text(app.to_string())
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let id: String = get(&row, "id")?;
            if job.is_some_and(|wanted| wanted != id) {
                continue;
            }
            let result = Sql::new("UPDATE sync_jobs SET status = 'pending', attempts = 0, not_before = ")
                .bind_int(micros(now()))
                .push(", updated_at = ")
                .bind_int(micros(now()))
                .push(" WHERE status = 'failed' AND id = ")
                .bind_text(id.clone())
                .execute(&self.pool)
                .await;
            match result {
                Ok(n) => retried += n,
                // The subject already has a pending job, which reconciles the same state.
                Err(Error::Conflict { .. }) => {
                    Sql::new("UPDATE sync_jobs SET status = 'done', last_error = 'retried by a newer job' WHERE id = ")
                        .bind_text(id)
                        .execute(&self.pool)
                        .await?;
                    retried += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(wanted) = job
            && retried == 0
        {
            return Err(Error::not_found("failed job", wanted));
        }
        Ok(retried)
    }

    async fn discard_failed(&self, app: Uuid, job: Option<&str>) -> Result<u64> {
        let mut sql =
            Sql::new("DELETE FROM sync_jobs WHERE status = 'failed' AND app_id = ").bind_text(app.to_string());
        if let Some(job) = job {
            sql = sql.push(" AND id = ").bind_text(job.to_owned());
        }
        let deleted = sql.execute(&self.pool).await?;
        if let Some(job) = job
            && deleted == 0
        {
            return Err(Error::not_found("failed job", job));
        }
        Ok(deleted)
    }

    async fn list_jobs(&self, app: Uuid, status: JobStatus, limit: u32) -> Result<Vec<Job>> {
        let rows = Sql::new(concat!("SELECT ", job_columns!(), " FROM sync_jobs WHERE app_id = "))
            .bind_text(app.to_string())
            .push(" AND status = ")
            .bind_text(status.as_str())
            .push(" ORDER BY created_at, id LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn run_progress(&self, run_id: &str) -> Result<(i64, i64, i64)> {
        let row = Sql::new(
            "SELECT COUNT(*) AS total, \
             SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, \
             SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed FROM sync_jobs WHERE run_id = ",
        )
        .bind_text(run_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok((
                get(&row, "total")?,
                get::<Option<i64>>(&row, "done")?.unwrap_or(0),
                get::<Option<i64>>(&row, "failed")?.unwrap_or(0),
            )),
            None => Ok((0, 0, 0)),
        }
    }
}
