//! Recording finished jobs in batches: each job's end, the account and pushed-group records its
//! actions left, the follow-up jobs and the report rows, for many jobs in one transaction.
//!
//! The common jobs (done, leaving at most one account record) go in together: one upsert of their
//! account records, one look-up of the group jobs their changed accounts call for, one UPDATE of
//! their ends, all in one savepoint. Any other job, and every job of a bulk that was refused, runs
//! inside a savepoint of its own, so one whose records are refused leaves the others of its batch
//! unharmed. A store fault fails the whole batch (nothing of it committed).

use super::account_rows::{
    delete_account_sql, delete_app_group_sql, save_account_sql, save_accounts_sql, save_app_group_sql,
};
use super::dispatch::app_pushes_groups;
use super::jobs::insert_jobs;
use super::reports::insert_reports_in;
use super::sql::{Sql, SqlStore, WriteTx, get, micros};
use crate::domain::app::AppAccount;
use crate::domain::job::{Effect, FinishedJob, JobEnd, NewJob, Report, SubjectKind};
use crate::domain::{Result, now};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Rows per multi-row statement of the bulk path (ten parameters each). SQLite's driver looks
/// each parameter's name up in a list as long as the statement's parameters, so a statement's
/// binding costs the square of its parameters: 500 keep that small.
const BULK_ROWS: usize = 50;

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
            let jobs = group_jobs(tx, *app_id, &[*user_id]).await?;
            insert_jobs(tx, &jobs).await?;
        }
    }
    Ok(())
}

/// The group jobs that changed accounts of `users` in `app` call for: one per group with a policy
/// for the app that has one of them as a member.
async fn group_jobs(tx: &mut WriteTx, app: Uuid, users: &[Uuid]) -> Result<Vec<NewJob>> {
    let rows = Sql::new(
        "SELECT p.group_id AS id, m.user_id AS user_id FROM policies p JOIN group_members m ON m.group_id = p.group_id \
         WHERE m.user_id IN ",
    )
    .bind_text_list(users.iter().map(Uuid::to_string))
    .push(" AND p.app_id = ")
    .bind_text(app.to_string())
    .push(" ORDER BY p.group_id, m.user_id")
    .fetch_all(tx.conn())
    .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let user: String = get(&row, "user_id")?;
        jobs.push(NewJob {
            app_id: app,
            subject_kind: SubjectKind::Group,
            subject_id: get(&row, "id")?,
            run_id: None,
            cause: format!("user:{user}"),
            not_before: None,
        });
    }
    Ok(jobs)
}

/// The jobs that can go in together, with one statement per kind of write: done, leaving at most
/// one account record (and perhaps the note that its account changed), and no account another
/// of them saves too (one statement may touch a row once; the second goes on its own).
fn bulk_indices(finished: &[&FinishedJob]) -> Vec<usize> {
    let mut keys = BTreeSet::new();
    (0..finished.len())
        .filter(|i| {
            let job = finished[*i];
            let saves: Vec<&AppAccount> = job
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::SaveAccount(account) => Some(account),
                    _ => None,
                })
                .collect();
            matches!(job.end, JobEnd::Done)
                && saves.len() <= 1
                && job
                    .effects
                    .iter()
                    .all(|e| matches!(e, Effect::SaveAccount(_) | Effect::UserAccountChanged { .. }))
                && saves.iter().all(|a| keys.insert((a.app_id, a.user_id)))
        })
        .collect()
}

/// Records done jobs that [`bulk_indices`] chose, together: their account records, the group jobs
/// their changed accounts call for, their ends. The caller holds a savepoint around it.
async fn apply_bulk(tx: &mut WriteTx, jobs: &[&FinishedJob]) -> Result<()> {
    let mut accounts: Vec<&AppAccount> = Vec::new();
    let mut changed: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for job in jobs {
        for effect in &job.effects {
            match effect {
                Effect::SaveAccount(account) => accounts.push(account),
                Effect::UserAccountChanged { app_id, user_id } => changed.entry(*app_id).or_default().push(*user_id),
                _ => {}
            }
        }
    }
    for chunk in accounts.chunks(BULK_ROWS) {
        save_accounts_sql(chunk).execute(tx.conn()).await?;
    }
    for (app, users) in changed {
        // Read in this transaction: group push may have been switched on while the jobs ran.
        if !app_pushes_groups(tx, &app.to_string()).await? {
            continue;
        }
        let mut jobs = Vec::new();
        for chunk in users.chunks(BULK_ROWS) {
            jobs.extend(group_jobs(tx, app, chunk).await?);
        }
        insert_jobs(tx, &jobs).await?;
    }
    let at = micros(now());
    let mut by_owner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for job in jobs {
        by_owner.entry(&job.owner).or_default().push(job.job.id.clone());
    }
    for (owner, ids) in by_owner {
        for chunk in ids.chunks(BULK_ROWS) {
            Sql::new("UPDATE sync_jobs SET status = 'done', lease_until = NULL, updated_at = ")
                .bind_int(at)
                .push(" WHERE id IN ")
                .bind_text_list(chunk.iter().cloned())
                .push(" AND status = 'running' AND lease_owner = ")
                .bind_text(owner.to_owned())
                .execute(tx.conn())
                .await?;
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
        let mut results: Vec<Option<Result<()>>> = finished.iter().map(|_| None).collect();
        let bulk = bulk_indices(finished);
        if bulk.len() > 1 {
            tx.savepoint().await?;
            let jobs: Vec<&FinishedJob> = bulk.iter().map(|i| finished[*i]).collect();
            match apply_bulk(&mut tx, &jobs).await {
                Ok(()) => {
                    tx.release_savepoint().await?;
                    for i in bulk {
                        results[i] = Some(Ok(()));
                    }
                }
                Err(e) if e.store_fault().is_some() => return Err(e),
                // One of them was refused: each goes in on its own below.
                Err(_) => tx.rollback_to_savepoint().await?,
            }
        }
        for (item, result) in finished.iter().zip(results.iter_mut()) {
            if result.is_some() {
                continue;
            }
            tx.savepoint().await?;
            match apply_one(&mut tx, item).await {
                Ok(()) => {
                    tx.release_savepoint().await?;
                    *result = Some(Ok(()));
                }
                Err(e) if e.store_fault().is_some() => return Err(e),
                Err(e) => {
                    tx.rollback_to_savepoint().await?;
                    *result = Some(Err(e));
                }
            }
        }
        let results: Vec<Result<()>> = results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect();
        // The actions happened whether or not their job's end could be recorded: their rows stay.
        let reports: Vec<Report> = finished.iter().flat_map(|f| f.reports.iter().cloned()).collect();
        insert_reports_in(&mut tx, &reports).await?;
        tx.commit().await?;
        Ok(results)
    }
}
