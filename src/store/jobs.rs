//! Putting jobs in the queue: the one insert that the dispatcher, `enqueue` and the expiry sweep
//! share, with coalescing (a subject that already has a pending job keeps it).

use super::sql::{Sql, WriteTx, micros};
use crate::domain::job::NewJob;
use crate::domain::{Result, now};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Rows per insert: each binds only its id and subject (two values); what the rows of a chunk
/// share (app, kind, due time, run, cause) is bound once.
const JOB_CHUNK: usize = 100;

/// Inserts jobs in batches; a subject that already has a pending job keeps it (coalescing).
pub(super) async fn insert_jobs(tx: &mut WriteTx, jobs: &[NewJob]) -> Result<()> {
    let created = micros(now());
    let mut seen = BTreeSet::new();
    let unique: Vec<&NewJob> = jobs
        .iter()
        .filter(|j| seen.insert((j.app_id, j.subject_kind, j.subject_id.clone())))
        .collect();
    // Runs of jobs that share everything but their subject (a policy's fan-out is one run).
    let shared = |a: &NewJob, b: &NewJob| {
        a.app_id == b.app_id
            && a.subject_kind == b.subject_kind
            && a.not_before == b.not_before
            && a.run_id == b.run_id
            && a.cause == b.cause
    };
    for run in unique.chunk_by(|a, b| shared(a, b)) {
        for chunk in run.chunks(JOB_CHUNK) {
            let Some(first) = chunk.first() else { continue };
            // `VALUES` names its columns column1, column2 in SQLite and PostgreSQL alike.
            let mut sql = Sql::new(
                "INSERT INTO sync_jobs (id, app_id, subject_kind, subject_id, status, attempts, not_before, correlation_id, run_id, cause, created_at, updated_at) \
                 SELECT v.column1, ",
            )
            .bind_text(first.app_id.to_string())
            .push(", ")
            .bind_text(first.subject_kind.as_str())
            .push(", v.column2, 'pending', 0, ")
            .bind_int(first.not_before.map(micros).unwrap_or(created))
            .push(", v.column1, ")
            .bind_opt_text(first.run_id.clone())
            .push(", ")
            .bind_text(first.cause.clone())
            .push(", ")
            .bind_int(created)
            .push(", ")
            .bind_int(created)
            .push(" FROM (VALUES ");
            for (i, job) in chunk.iter().enumerate() {
                sql = sql
                    .push(if i == 0 { "(" } else { ", (" })
                    .bind_text(Uuid::now_v7().to_string())
                    .push(", ")
                    .bind_text(job.subject_id.clone())
                    .push(")");
            }
            // The WHERE keeps SQLite from reading ON CONFLICT as a join's ON.
            sql.push(") AS v WHERE 1 = 1 ON CONFLICT DO NOTHING")
                .execute(tx.conn())
                .await?;
        }
    }
    Ok(())
}
