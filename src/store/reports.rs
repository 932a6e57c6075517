//! SQL for provisioning report records: appending, searching (newest first, cursor paging) and
//! deleting old records in bounded batches.

use super::sql::{Sql, SqlStore, WriteTx, decode_cursor, encode_cursor, from_micros, get, get_uuid, micros};
use super::{OutcomeCount, ReportQuery, ReportStore, UserMatch};
use crate::domain::app::AccountState;
use crate::domain::job::{JobStatus, Operation, Outcome, Report, SubjectKind};
use crate::domain::{Error, Page, Result};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! report_columns {
    () => {
        "id, started_at, duration_ms, app_id, app_name, subject_kind, subject_id, username, email, target_id, operation, \
         outcome, attempt, http_method, http_path, http_status, diff, message, request_body, response_body, correlation_id, cause"
    };
}

/// Maps a row of the report table.
fn report_from_row(row: &AnyRow) -> Result<Report> {
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
        request_body: get(row, "request_body")?,
        response_body: get(row, "response_body")?,
        correlation_id: get(row, "correlation_id")?,
        cause: get(row, "cause")?,
    })
}

/// The smallest string greater than every string starting with `prefix`, for index range scans.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn select_reports() -> Sql {
    Sql::new(concat!("SELECT ", report_columns!(), " FROM provisioning_reports"))
}

/// Adds one identifier condition (exact or prefix) on a lower-cased or exact column.
fn identifier(sql: Sql, column: &'static str, value: &str, prefix: bool) -> Sql {
    let sql = sql.push(column);
    if prefix {
        sql.push(" >= ")
            .bind_text(value.to_owned())
            .push(" AND ")
            .push(column)
            .push(" < ")
            .bind_text(prefix_end(value))
    } else {
        sql.push(" = ").bind_text(value.to_owned())
    }
}

fn filters(mut sql: Sql, query: &ReportQuery, user_branch: Option<(&'static str, &UserMatch)>) -> Sql {
    if let Some((column, user)) = user_branch {
        let value = if column.ends_with("_key") {
            user.value.to_lowercase()
        } else {
            user.value.clone()
        };
        sql = identifier(sql.push(" AND "), column, &value, user.prefix);
    }
    if let Some(app) = query.app_id {
        sql = sql.push(" AND app_id = ").bind_text(app.to_string());
    }
    if let Some(from) = query.from {
        sql = sql.push(" AND started_at >= ").bind_int(micros(from));
    }
    if let Some(to) = query.to {
        sql = sql.push(" AND started_at < ").bind_int(micros(to));
    }
    if let Some(outcome) = query.outcome {
        sql = sql.push(" AND outcome = ").bind_text(outcome.as_str());
    }
    if let Some(operation) = query.operation {
        sql = sql.push(" AND operation = ").bind_text(operation.as_str());
    }
    if let Some(kind) = query.subject_kind {
        sql = sql.push(" AND subject_kind = ").bind_text(kind.as_str());
    }
    sql
}

fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    let text = decode_cursor(cursor)?;
    let (at, id) = text
        .split_once('/')
        .ok_or_else(|| Error::BadRequest("the cursor is malformed; pass next_cursor from a previous page".into()))?;
    let at = at
        .parse()
        .map_err(|_| Error::BadRequest("the cursor is malformed; pass next_cursor from a previous page".into()))?;
    Ok((at, id.to_owned()))
}

/// One multi-row INSERT of `reports`.
fn insert_sql(reports: &[Report]) -> Sql {
    let mut sql = Sql::new(concat!(
        "INSERT INTO provisioning_reports (",
        report_columns!(),
        ", username_key, email_key) VALUES "
    ));
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            sql = sql.push(", ");
        }
        sql = sql
            .push("(")
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
            .bind_opt_text(r.request_body.clone())
            .push(", ")
            .bind_opt_text(r.response_body.clone())
            .push(", ")
            .bind_text(r.correlation_id.clone())
            .push(", ")
            .bind_text(r.cause.clone())
            .push(", ")
            .bind_opt_text(r.username.as_ref().map(|u| u.to_lowercase()))
            .push(", ")
            .bind_opt_text(r.email.as_ref().map(|e| e.to_lowercase()))
            .push(")");
    }
    sql
}

impl ReportStore for SqlStore {
    async fn insert_report(&self, report: &Report) -> Result<()> {
        self.insert_reports(std::slice::from_ref(report)).await
    }

    async fn insert_reports(&self, reports: &[Report]) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_reports_in(&mut tx, reports).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reports_for_correlation(&self, correlation_id: &str) -> Result<Vec<Report>> {
        let rows = select_reports()
            .push(" WHERE correlation_id = ")
            .bind_text(correlation_id.to_owned())
            .push(" ORDER BY started_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    async fn search_reports(&self, query: &ReportQuery) -> Result<Page<Report>> {
        let limit = i64::from(query.limit.clamp(1, 1000));
        let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
        // A user is matched on any of four identifiers; each branch reads its own index, and the
        // branches are merged newest first. Without a user, one scan of the time index.
        let branches: Vec<Option<(&'static str, &UserMatch)>> = match &query.user {
            Some(user) => ["username_key", "email_key", "subject_id", "target_id"]
                .into_iter()
                .map(|c| Some((c, user)))
                .collect(),
            None => vec![None],
        };
        let mut sql = Sql::new(concat!("SELECT ", report_columns!(), " FROM ("));
        for (i, branch) in branches.into_iter().enumerate() {
            if i > 0 {
                sql = sql.push(" UNION ");
            }
            sql = sql.push(concat!(
                "SELECT ",
                report_columns!(),
                " FROM provisioning_reports WHERE 1 = 1"
            ));
            sql = filters(sql, query, branch);
            if let Some((at, id)) = &cursor {
                sql = sql
                    .push(" AND (started_at < ")
                    .bind_int(*at)
                    .push(" OR (started_at = ")
                    .bind_int(*at)
                    .push(" AND id < ")
                    .bind_text(id.clone())
                    .push("))");
            }
        }
        let rows = sql
            .push(") matched ORDER BY started_at DESC, id DESC LIMIT ")
            .bind_int(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows.iter().map(report_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items
                .last()
                .map(|r| encode_cursor(&format!("{}/{}", micros(r.started_at), r.id)))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn delete_reports_before(&self, cutoff: OffsetDateTime, batch: u32) -> Result<u64> {
        // Hourly counts wholly before the cutoff go with their records.
        Sql::new("DELETE FROM report_counts WHERE hour < ")
            .bind_int(micros(cutoff).div_euclid(super::HOUR_MICROS))
            .execute(&self.pool)
            .await?;
        Sql::new(
            "DELETE FROM provisioning_reports WHERE id IN (SELECT id FROM provisioning_reports WHERE started_at < ",
        )
        .bind_int(micros(cutoff))
        .push(" ORDER BY started_at LIMIT ")
        .bind_int(i64::from(batch.max(1)))
        .push(")")
        .execute(&self.pool)
        .await
    }

    async fn reports_for_subject(&self, subject_id: &str, limit: u32) -> Result<Vec<Report>> {
        let rows = select_reports()
            .push(" WHERE subject_id = ")
            .bind_text(subject_id.to_owned())
            .push(" ORDER BY started_at, id LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    async fn get_report(&self, id: Uuid) -> Result<Option<Report>> {
        let row = select_reports()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    async fn count_reports_by_hour(&self, from_hour: i64, to_hour: i64) -> Result<Vec<OutcomeCount>> {
        self.count_reports_sql(from_hour, to_hour).await
    }

    async fn account_counts(&self) -> Result<Vec<(Uuid, AccountState, i64)>> {
        self.account_counts_sql().await
    }

    async fn job_counts(&self) -> Result<Vec<(Uuid, JobStatus, i64)>> {
        self.job_counts_sql().await
    }
}

/// Inserts report rows and adds them to the dashboard's hourly counts, inside `tx`. Count keys
/// are written in order, so that concurrent writers lock the rows they share in the same order.
pub(super) async fn insert_reports_in(tx: &mut WriteTx, reports: &[Report]) -> Result<()> {
    for chunk in reports.chunks(25) {
        insert_sql(chunk).execute(tx.conn()).await?;
    }
    let mut counts: std::collections::BTreeMap<(i64, &'static str), i64> = Default::default();
    for report in reports {
        let hour = micros(report.started_at).div_euclid(super::HOUR_MICROS);
        *counts.entry((hour, report.outcome.as_str())).or_default() += 1;
    }
    for ((hour, outcome), n) in counts {
        Sql::new("INSERT INTO report_counts (hour, outcome, n) VALUES (")
            .bind_int(hour)
            .push(", ")
            .bind_text(outcome)
            .push(", ")
            .bind_int(n)
            .push(") ON CONFLICT (hour, outcome) DO UPDATE SET n = report_counts.n + excluded.n")
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}
