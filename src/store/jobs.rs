//! Putting jobs in the queue: the one insert that the dispatcher, `enqueue` and the expiry sweep
//! share, with coalescing (a subject that already has a pending job keeps it).

use super::sql::{Sql, WriteTx, micros};
use crate::domain::job::NewJob;
use crate::domain::{Result, now};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Inserts jobs in batches; a subject that already has a pending job keeps it (coalescing).
pub(super) async fn insert_jobs(tx: &mut WriteTx, jobs: &[NewJob]) -> Result<()> {
    let created = micros(now());
    let mut seen = BTreeSet::new();
    let unique: Vec<&NewJob> = jobs
        .iter()
        .filter(|j| seen.insert((j.app_id, j.subject_kind, j.subject_id.clone())))
        .collect();
    for chunk in unique.chunks(50) {
        let mut sql = Sql::new(
            "INSERT INTO sync_jobs (id, app_id, subject_kind, subject_id, status, attempts, not_before, correlation_id, run_id, cause, created_at, updated_at) VALUES ",
        );
        for (i, job) in chunk.iter().enumerate() {
            let id = Uuid::now_v7().to_string();
            if i > 0 {
                sql = sql.push(", ");
            }
            sql = sql
                .push("(")
                .bind_text(id.clone())
                .push(", ")
                .bind_text(job.app_id.to_string())
                .push(", ")
                .bind_text(job.subject_kind.as_str())
                .push(", ")
                .bind_text(job.subject_id.clone())
                .push(", 'pending', 0, ")
                .bind_int(job.not_before.map(micros).unwrap_or(created))
                .push(", ")
                .bind_text(id)
                .push(", ")
                .bind_opt_text(job.run_id.clone())
                .push(", ")
                .bind_text(job.cause.clone())
                .push(", ")
                .bind_int(created)
                .push(", ")
                .bind_int(created)
                .push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING").execute(tx.conn()).await?;
    }
    Ok(())
}
