//! A run's row and its job as both the run store and the schedule write them.

use super::sql::{Sql, get, micros};
use crate::domain::job::{NewJob, SubjectKind};
use crate::domain::target_run::{RunKind, TargetRun};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;

/// A JSON column, decoded.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| Error::Storage(format!("column {column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Storage(format!("cannot encode: {e}")))
}

/// The job that carries a run out.
pub(super) fn run_job(run: &TargetRun) -> NewJob {
    NewJob {
        app_id: run.app_id,
        subject_kind: match run.kind {
            RunKind::Import => SubjectKind::Import,
            RunKind::Reconcile => SubjectKind::Reconcile,
        },
        subject_id: run.id.to_string(),
        run_id: None,
        cause: run.cause.clone(),
        not_before: None,
    }
}

/// The insert of a new run's row.
pub(super) fn insert_run_sql(run: &TargetRun) -> Result<Sql> {
    Ok(Sql::new(
        "INSERT INTO target_runs (id, app_id, kind, dry_run, apply, status, cause, accounts_read, counts, created_at) VALUES (",
    )
    .bind_text(run.id.to_string())
    .push(", ")
    .bind_text(run.app_id.to_string())
    .push(", ")
    .bind_text(run.kind.as_str())
    .push(", ")
    .bind_bool(run.dry_run)
    .push(", ")
    .bind_text(run.apply.as_str())
    .push(", ")
    .bind_text(run.status.as_str())
    .push(", ")
    .bind_text(run.cause.clone())
    .push(", 0, ")
    .bind_text(to_json(&run.counts)?)
    .push(", ")
    .bind_int(micros(run.created_at))
    .push(")"))
}
