//! SQL for the console's dashboard: report records counted per time bucket and outcome, and each
//! app's accounts and queued work counted by state. Every number is one aggregate query.

use super::OutcomeCount;
use super::sql::{Sql, SqlStore, get, get_uuid};
use crate::domain::Result;
use crate::domain::app::AccountState;
use crate::domain::job::{JobStatus, Outcome};
use uuid::Uuid;

/// Microseconds in an hour: how report times become the hours of `report_counts` (migration 0006).
pub const HOUR_MICROS: i64 = 3_600_000_000;

impl SqlStore {
    /// Counts report records by hour and outcome over the hours `[from_hour, to_hour)` (whole
    /// hours since the epoch), from the counts kept as records are written (`report_counts`): at
    /// most one row per hour and outcome, however many records there are.
    pub(super) async fn count_reports_sql(&self, from_hour: i64, to_hour: i64) -> Result<Vec<OutcomeCount>> {
        let rows = Sql::new("SELECT hour, outcome, n FROM report_counts WHERE hour >= ")
            .bind_int(from_hour)
            .push(" AND hour < ")
            .bind_int(to_hour)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OutcomeCount {
                    hour: get(row, "hour")?,
                    outcome: Outcome::parse(&get::<String>(row, "outcome")?)?,
                    count: get(row, "n")?,
                })
            })
            .collect()
    }

    /// Counts account records by app and state.
    pub(super) async fn account_counts_sql(&self) -> Result<Vec<(Uuid, AccountState, i64)>> {
        let rows = Sql::new("SELECT app_id, state, COUNT(*) AS n FROM app_accounts GROUP BY app_id, state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    get_uuid(row, "app_id")?,
                    AccountState::parse(&get::<String>(row, "state")?)?,
                    get(row, "n")?,
                ))
            })
            .collect()
    }

    /// Counts unfinished and failed jobs by app and status (the status index limits the scan).
    pub(super) async fn job_counts_sql(&self) -> Result<Vec<(Uuid, JobStatus, i64)>> {
        let rows = Sql::new("SELECT app_id, status, COUNT(*) AS n FROM sync_jobs WHERE status IN (")
            .bind_text(JobStatus::Pending.as_str())
            .push(", ")
            .bind_text(JobStatus::Running.as_str())
            .push(", ")
            .bind_text(JobStatus::Failed.as_str())
            .push(") GROUP BY app_id, status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    get_uuid(row, "app_id")?,
                    JobStatus::parse(&get::<String>(row, "status")?)?,
                    get(row, "n")?,
                ))
            })
            .collect()
    }
}
