//! Recording finished jobs in batches: each job's end, the account and pushed-group records its
//! actions left, the follow-up jobs and the report rows, for many jobs in one transaction. Each job
//! runs inside its own savepoint, so one whose records are refused leaves the others of its batch
//! unharmed; a store fault fails the whole batch (nothing of it committed).

use super::apps::{delete_account_sql, delete_app_group_sql, save_account_sql, save_app_group_sql};
use super::jobs::insert_jobs;
use super::queue::app_pushes_groups;
use super::reports::insert_reports_in;
use super::sql::{Sql, SqlStore, WriteTx, get, micros};
use crate::domain::job::{Effect, FinishedJob, JobEnd, NewJob, Report, SubjectKind};
use crate::domain::{Result, now};

/// Applies one write a job left.
async fn apply_effect(tx: &mut WriteTx, effect: &Effect) -> Result<()> {
    match effect {
        Effect::SaveAccount(account) => {
            save_account_sql(account).execute(tx.conn()).await?;
        }
        Effect::DeleteAccount { app_id, user_id } => {
            delete_account_sql(*app_id, *user_id).execute(tx.conn()).await?;
        }
        Effect::SaveGroup(group) => {
            save_app_group_sql(group)?.execute(tx.conn()).await?;
        }
        Effect::DeleteGroup { app_id, group_id } => {
            delete_app_group_sql(*app_id, *group_id).execute(tx.conn()).await?;
        }
        Effect::UserAccountChanged { app_id, user_id } => {
            // Read in this transaction: group push may have been switched on while the job ran.
            if !app_pushes_groups(tx, &app_id.to_string()).await? {
                return Ok(());
            }
            let rows = Sql::new(
                "SELECT p.group_id AS id FROM policies p JOIN group_members m ON m.group_id = p.group_id WHERE m.user_id = ",
            )
            .bind_text(user_id.to_string())
            .push(" AND p.app_id = ")
            .bind_text(app_id.to_string())
            .push(" ORDER BY p.group_id")
            .fetch_all(tx.conn())
            .await?;
            let mut jobs = Vec::with_capacity(rows.len());
            for row in rows {
                jobs.push(NewJob {
                    app_id: *app_id,
                    subject_kind: SubjectKind::Group,
                    subject_id: get(&row, "id")?,
                    run_id: None,
                    cause: format!("user:{user_id}"),
                    not_before: None,
                });
            }
            insert_jobs(tx, &jobs).await?;
        }
    }
    Ok(())
}

/// Records how a job ended; only the lease owner may.
async fn apply_end(tx: &mut WriteTx, finished: &FinishedJob) -> Result<()> {
    let job = &finished.job;
    let at = micros(now());
    match &finished.end {
        JobEnd::Done => {
            Sql::new("UPDATE sync_jobs SET status = 'done', lease_until = NULL, updated_at = ")
                .bind_int(at)
                .push(" WHERE id = ")
                .bind_text(job.id.clone())
                .push(" AND status = 'running' AND lease_owner = ")
                .bind_text(finished.owner.clone())
                .execute(tx.conn())
                .await?;
        }
        JobEnd::Retry {
            not_before,
            error,
            count_attempt,
        } => {
            // A newer job for the same subject already waits: it reconciles the same state, so
            // this one ends instead of going back (there is at most one pending job per subject).
            let newer = Sql::new("SELECT id FROM sync_jobs WHERE status = 'pending' AND app_id = ")
                .bind_text(job.app_id.to_string())
                .push(" AND subject_kind = ")
                .bind_text(job.subject_kind.as_str())
                .push(" AND subject_id = ")
                .bind_text(job.subject_id.clone())
                .fetch_optional(tx.conn())
                .await?;
            let sql = if newer.is_some() {
                Sql::new("UPDATE sync_jobs SET status = 'done', lease_owner = NULL, lease_until = NULL, last_error = 'superseded by a newer job', updated_at = ")
                    .bind_int(at)
            } else {
                Sql::new(
                    "UPDATE sync_jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, not_before = ",
                )
                .bind_int(micros(*not_before))
                .push(", last_error = ")
                .bind_text(error.clone())
                .push(if *count_attempt {
                    ", attempts = attempts"
                } else {
                    ", attempts = attempts - 1"
                })
                .push(", updated_at = ")
                .bind_int(at)
            };
            sql.push(" WHERE id = ")
                .bind_text(job.id.clone())
                .push(" AND status = 'running' AND lease_owner = ")
                .bind_text(finished.owner.clone())
                .execute(tx.conn())
                .await?;
        }
        JobEnd::Failed { error } => {
            Sql::new("UPDATE sync_jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, last_error = ")
                .bind_text(error.clone())
                .push(", updated_at = ")
                .bind_int(at)
                .push(" WHERE id = ")
                .bind_text(job.id.clone())
                .push(" AND status = 'running' AND lease_owner = ")
                .bind_text(finished.owner.clone())
                .execute(tx.conn())
                .await?;
        }
    }
    Ok(())
}

async fn apply_one(tx: &mut WriteTx, finished: &FinishedJob) -> Result<()> {
    for effect in &finished.effects {
        apply_effect(tx, effect).await?;
    }
    apply_end(tx, finished).await
}

impl SqlStore {
    /// Records `finished` jobs in one transaction. The outer error is a failure of the whole batch
    /// (nothing committed); otherwise each job has its own result, in order.
    pub(super) async fn finish_batch(&self, finished: &[&FinishedJob]) -> Result<Vec<Result<()>>> {
        if finished.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut results = Vec::with_capacity(finished.len());
        for item in finished {
            tx.savepoint().await?;
            match apply_one(&mut tx, item).await {
                Ok(()) => {
                    tx.release_savepoint().await?;
                    results.push(Ok(()));
                }
                Err(e) if e.store_fault().is_some() => return Err(e),
                Err(e) => {
                    tx.rollback_to_savepoint().await?;
                    results.push(Err(e));
                }
            }
        }
        // The actions happened whether or not their job's end could be recorded: their rows stay.
        let reports: Vec<Report> = finished.iter().flat_map(|f| f.reports.iter().cloned()).collect();
        insert_reports_in(&mut tx, &reports).await?;
        tx.commit().await?;
        Ok(results)
    }
}
