//! SQL for provisioning report records.

use super::ReportStore;
use super::sql::{Sql, SqlStore, from_micros, get, get_uuid, micros};
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;

macro_rules! report_columns {
    () => {
        "id, started_at, duration_ms, app_id, app_name, subject_kind, subject_id, username, email, target_id, operation, \
         outcome, attempt, http_method, http_path, http_status, diff, message, correlation_id"
    };
}

/// Maps a row of the report table.
pub(super) fn report_from_row(row: &AnyRow) -> Result<Report> {
    let diff: Option<String> = get(row, "diff")?;
    Ok(Report {
        id: get_uuid(row, "id")?,
        started_at: from_micros(get(row, "started_at")?)?,
        duration_ms: get(row, "duration_ms")?,
        app_id: get_uuid(row, "app_id")?,
        app_name: get(row, "app_name")?,
        subject_kind: SubjectKind::parse(&get::<String>(row, "subject_kind")?)?,
        subject_id: get(row, "subject_id")?,
        username: get(row, "username")?,
        email: get(row, "email")?,
        target_id: get(row, "target_id")?,
        operation: Operation::parse(&get::<String>(row, "operation")?)?,
        outcome: Outcome::parse(&get::<String>(row, "outcome")?)?,
        attempt: get(row, "attempt")?,
        http_method: get(row, "http_method")?,
        http_path: get(row, "http_path")?,
        http_status: get(row, "http_status")?,
        diff: diff
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| Error::Storage(format!("report diff: {e}")))?,
        message: get(row, "message")?,
        correlation_id: get(row, "correlation_id")?,
    })
}

impl ReportStore for SqlStore {
    async fn insert_report(&self, r: &Report) -> Result<()> {
        Sql::new(concat!(
            "INSERT INTO provisioning_reports (",
            report_columns!(),
            ") VALUES ("
        ))
        .bind_text(r.id.to_string())
        .push(", ")
        .bind_int(micros(r.started_at))
        .push(", ")
        .bind_int(r.duration_ms)
        .push(", ")
        .bind_text(r.app_id.to_string())
        .push(", ")
        .bind_text(r.app_name.clone())
        .push(", ")
        .bind_text(r.subject_kind.as_str())
        .push(", ")
        .bind_text(r.subject_id.clone())
        .push(", ")
        .bind_opt_text(r.username.clone())
        .push(", ")
        .bind_opt_text(r.email.clone())
        .push(", ")
        .bind_opt_text(r.target_id.clone())
        .push(", ")
        .bind_text(r.operation.as_str())
        .push(", ")
        .bind_text(r.outcome.as_str())
        .push(", ")
        .bind_int(r.attempt)
        .push(", ")
        .bind_opt_text(r.http_method.clone())
        .push(", ")
        .bind_opt_text(r.http_path.clone())
        .push(", ")
        .bind_opt_int(r.http_status)
        .push(", ")
        .bind_opt_text(r.diff.as_ref().map(|d| d.to_string()))
        .push(", ")
        .bind_opt_text(r.message.clone())
        .push(", ")
        .bind_text(r.correlation_id.clone())
        .push(")")
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reports_for_correlation(&self, correlation_id: &str) -> Result<Vec<Report>> {
        let rows = Sql::new(concat!(
            "SELECT ",
            report_columns!(),
            " FROM provisioning_reports WHERE correlation_id = "
        ))
        .bind_text(correlation_id.to_owned())
        .push(" ORDER BY started_at, id")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report_from_row).collect()
    }
}
