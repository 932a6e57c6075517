//! SQL for the durable work queue: deriving jobs from the change log, claiming them under a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer makes the claim atomic), and
//! finishing them.

use super::QueueStore;
use super::jobs::insert_jobs;
use super::sql::{Sql, SqlStore, WriteTx, from_micros, get, get_uuid, micros};
use crate::domain::app::Features;
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

async fn ids(tx: &mut WriteTx, sql: Sql) -> Result<Vec<String>> {
    let rows = sql.fetch_all(tx.conn()).await?;
    rows.iter().map(|r| get(r, "id")).collect()
}

/// Apps that must reconcile `user`: those with a policy on one of the user's groups, and those
/// where the user has an account.
async fn apps_for_user(tx: &mut WriteTx, user: &str) -> Result<Vec<String>> {
    ids(
        tx,
        Sql::new(
            "SELECT p.app_id AS id FROM policies p JOIN group_members m ON m.group_id = p.group_id WHERE m.user_id = ",
        )
        .bind_text(user.to_owned())
        .push(" UNION SELECT app_id AS id FROM app_accounts WHERE user_id = ")
        .bind_text(user.to_owned()),
    )
    .await
}

/// Apps that push `group` (or pushed it): with a policy on it or a record of it, and group push on.
async fn apps_pushing_group(tx: &mut WriteTx, group: &str) -> Result<Vec<String>> {
    let rows =
        Sql::new("SELECT a.id, a.features FROM apps a WHERE a.id IN (SELECT app_id FROM policies WHERE group_id = ")
            .bind_text(group.to_owned())
            .push(" UNION SELECT app_id FROM app_groups WHERE group_id = ")
            .bind_text(group.to_owned())
            .push(")")
            .fetch_all(tx.conn())
            .await?;
    let mut out = Vec::new();
    for row in rows {
        let features: String = get(&row, "features")?;
        let features: Features =
            serde_json::from_str(&features).map_err(|e| Error::Storage(format!("app features: {e}")))?;
        if features.push_groups {
            out.push(get(&row, "id")?);
        }
    }
    Ok(out)
}

/// Whether `app` pushes groups (false for an app that is gone).
pub(super) async fn app_pushes_groups(tx: &mut WriteTx, app: &str) -> Result<bool> {
    let row = Sql::new("SELECT features FROM apps WHERE id = ")
        .bind_text(app.to_owned())
        .fetch_optional(tx.conn())
        .await?;
    match row {
        Some(row) => {
            let features: String = get(&row, "features")?;
            let features: Features =
                serde_json::from_str(&features).map_err(|e| Error::Storage(format!("app features: {e}")))?;
            Ok(features.push_groups)
        }
        None => Ok(false),
    }
}

fn user_job(app: &str, user: &str, cause: &str) -> Result<NewJob> {
    Ok(NewJob {
        app_id: Uuid::parse_str(app).map_err(|e| Error::Storage(e.to_string()))?,
        subject_kind: SubjectKind::User,
        subject_id: user.to_owned(),
        run_id: None,
        cause: cause.to_owned(),
        not_before: None,
    })
}

fn group_job(app: &str, group: &str, cause: &str) -> Result<NewJob> {
    Ok(NewJob {
        subject_kind: SubjectKind::Group,
        ..user_job(app, group, cause)?
    })
}

impl QueueStore for SqlStore {
    async fn dispatch_changes(&self, limit: u32) -> Result<usize> {
        // A read first: no write transaction (and no wait for the writers' turn) when nothing is new.
        let pending = Sql::new(
            "SELECT 1 AS n FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound') LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if pending.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        Sql::new("UPDATE change_cursors SET last_seq = last_seq WHERE name = 'outbound'")
            .execute(tx.conn())
            .await?;
        let cursor: i64 = match Sql::new("SELECT last_seq FROM change_cursors WHERE name = 'outbound'")
            .fetch_optional(tx.conn())
            .await?
        {
            Some(row) => get(&row, "last_seq")?,
            None => return Err(Error::Storage("the outbound change cursor is missing".into())),
        };
        let rows = Sql::new("SELECT seq, entity, entity_id, related_id, operation, data FROM change_log WHERE seq > ")
            .bind_int(cursor)
            .push(" ORDER BY seq LIMIT ")
            .bind_int(i64::from(limit.max(1)))
            .fetch_all(tx.conn())
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut jobs = Vec::new();
        let mut last = cursor;
        for row in &rows {
            let seq: i64 = get(row, "seq")?;
            last = seq;
            let cause = format!("change:{seq}");
            let entity: String = get(row, "entity")?;
            let entity_id: String = get(row, "entity_id")?;
            let related: Option<String> = get(row, "related_id")?;
            match entity.as_str() {
                "user" => {
                    for app in apps_for_user(&mut tx, &entity_id).await? {
                        jobs.push(user_job(&app, &entity_id, &cause)?);
                    }
                }
                "membership" => {
                    if let Some(user) = &related {
                        for app in apps_for_user(&mut tx, user).await? {
                            jobs.push(user_job(&app, user, &cause)?);
                        }
                    }
                    for app in apps_pushing_group(&mut tx, &entity_id).await? {
                        jobs.push(group_job(&app, &entity_id, &cause)?);
                    }
                }
                "group" => {
                    for app in apps_pushing_group(&mut tx, &entity_id).await? {
                        jobs.push(group_job(&app, &entity_id, &cause)?);
                    }
                }
                "policy" => {
                    let data: String = get(row, "data")?;
                    let data: serde_json::Value =
                        serde_json::from_str(&data).map_err(|e| Error::Storage(e.to_string()))?;
                    let (Some(app), Some(group)) =
                        (data["policy"]["app_id"].as_str(), data["policy"]["group_id"].as_str())
                    else {
                        continue;
                    };
                    let members = ids(
                        &mut tx,
                        Sql::new("SELECT user_id AS id FROM group_members WHERE group_id = ")
                            .bind_text(group.to_owned()),
                    )
                    .await?;
                    for user in members {
                        jobs.push(user_job(app, &user, &cause)?);
                    }
                    if app_pushes_groups(&mut tx, app).await? {
                        jobs.push(group_job(app, group, &cause)?);
                    }
                }
                "app" => {
                    let operation: String = get(row, "operation")?;
                    if operation == "deleted" {
                        continue;
                    }
                    let data: String = get(row, "data")?;
                    let changed: Vec<String> = serde_json::from_str::<serde_json::Value>(&data)
                        .ok()
                        .and_then(|d| serde_json::from_value(d["changed"].clone()).ok())
                        .unwrap_or_default();
                    if operation == "updated" && !crate::domain::app::App::change_reaches_accounts(&changed) {
                        continue;
                    }
                    let app_id = Uuid::parse_str(&entity_id).map_err(|e| Error::Storage(e.to_string()))?;
                    let (users, groups) = app_subjects_in(&mut tx, app_id).await?;
                    for user in users {
                        jobs.push(user_job(&entity_id, &user, &cause)?);
                    }
                    let push_groups = Sql::new("SELECT features, connection_status FROM apps WHERE id = ")
                        .bind_text(entity_id.clone())
                        .fetch_optional(tx.conn())
                        .await?;
                    if let Some(row) = push_groups {
                        let features: String = get(&row, "features")?;
                        let status: String = get(&row, "connection_status")?;
                        let features: Features =
                            serde_json::from_str(&features).map_err(|e| Error::Storage(e.to_string()))?;
                        if features.push_groups {
                            for group in groups {
                                jobs.push(group_job(&entity_id, &group, &cause)?);
                            }
                        }
                        if status == "unchecked" {
                            jobs.push(NewJob {
                                app_id,
                                subject_kind: SubjectKind::Connection,
                                subject_id: entity_id.clone(),
                                run_id: None,
                                cause: cause.clone(),
                                not_before: None,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        insert_jobs(&mut tx, &jobs).await?;
        Sql::new("UPDATE change_cursors SET last_seq = ")
            .bind_int(last)
            .push(" WHERE name = 'outbound'")
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(rows.len())
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

async fn app_subjects_in(tx: &mut WriteTx, app: Uuid) -> Result<(Vec<String>, Vec<String>)> {
    let users = ids(
        tx,
        Sql::new(
            "SELECT m.user_id AS id FROM group_members m JOIN policies p ON p.group_id = m.group_id WHERE p.app_id = ",
        )
        .bind_text(app.to_string())
        .push(" UNION SELECT user_id AS id FROM app_accounts WHERE app_id = ")
        .bind_text(app.to_string()),
    )
    .await?;
    let groups = ids(
        tx,
        Sql::new("SELECT group_id AS id FROM policies WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" UNION SELECT group_id AS id FROM app_groups WHERE app_id = ")
            .bind_text(app.to_string()),
    )
    .await?;
    Ok((users, groups))
}
