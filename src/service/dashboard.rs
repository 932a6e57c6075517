//! What the console's dashboard shows: every app with its accounts, queued work, dead letters and
//! health, and provisioning actions and failures counted per hour (last 24 hours) and per day
//! (last 30 days); and one report record with the other attempts of its work item.

use super::ReportService;
use crate::domain::app::{AccountState, App};
use crate::domain::job::{JobStatus, Outcome, Report};
use crate::domain::{Error, Result, now};
use crate::store::{AppStore, ChangeLogStore, OutcomeCount, ReportStore, UserStore};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

/// Provisioning actions that started in one time span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// When the span starts.
    pub start: OffsetDateTime,
    /// Actions that worked.
    pub succeeded: i64,
    /// Actions that failed (for good, or to be retried).
    pub failed: i64,
}

/// One app as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct AppSummary {
    /// The app (its connection status and active/paused/quarantined state).
    pub app: App,
    /// Accounts that exist in the app and are active.
    pub active_accounts: i64,
    /// Accounts that exist in the app, deactivated.
    pub deactivated_accounts: i64,
    /// Jobs waiting or running.
    pub pending_jobs: i64,
    /// Failed jobs waiting for an administrator (dead letters).
    pub dead_letters: i64,
}

/// The dashboard's numbers.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Every app, by name.
    pub apps: Vec<AppSummary>,
    /// The last 24 hours, one bucket per hour, oldest first (the last is the current hour).
    pub hourly: Vec<Bucket>,
    /// The last 30 days, one bucket per day (UTC), oldest first (the last is today).
    pub daily: Vec<Bucket>,
}

/// One report record with every attempt of the same work item (itself included), oldest first.
#[derive(Debug, Clone)]
pub struct ReportDetail {
    /// The record.
    pub report: Report,
    /// The records sharing its correlation id.
    pub attempts: Vec<Report>,
}

/// Spreads hourly counts over `n` buckets of `width` (whole hours) from `start` (the start of an
/// hour); successes count as succeeded, failures and retried failures as failed, skipped and
/// planned actions not at all. Hours outside the buckets are ignored.
pub fn fill_buckets(start: OffsetDateTime, width: Duration, n: usize, counts: &[OutcomeCount]) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start: start + width * i32::try_from(i).unwrap_or(i32::MAX),
            succeeded: 0,
            failed: 0,
        })
        .collect();
    let first = start.unix_timestamp();
    let seconds = width.whole_seconds().max(1);
    for count in counts {
        let offset = count.hour.saturating_mul(3600) - first;
        if offset < 0 {
            continue;
        }
        let Some(bucket) = usize::try_from(offset / seconds).ok().and_then(|i| buckets.get_mut(i)) else {
            continue;
        };
        match count.outcome {
            Outcome::Success => bucket.succeeded += count.count,
            Outcome::Failure | Outcome::Retrying => bucket.failed += count.count,
            Outcome::Skipped | Outcome::DryRun => {}
        }
    }
    buckets
}

/// The start of the hour after `at`'s hour and of the day after `at`'s day (UTC).
fn window_ends(at: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let at = at.to_offset(time::UtcOffset::UTC);
    let hour = at.replace_time(Time::from_hms(at.hour(), 0, 0).unwrap_or(Time::MIDNIGHT));
    let day = at.replace_time(Time::MIDNIGHT);
    (hour + Duration::HOUR, day + Duration::DAY)
}

impl<S> ReportService<S>
where
    S: ReportStore + AppStore + UserStore + ChangeLogStore + Clone,
{
    /// Actions and failures in `n` buckets of `width` (whole hours) ending at `end` (the start of
    /// an hour): one query counting by hour, summed into the buckets.
    async fn chart(&self, end: OffsetDateTime, width: Duration, n: usize) -> Result<Vec<Bucket>> {
        let start = end - width * i32::try_from(n).unwrap_or(i32::MAX);
        let counts = self
            .store
            .count_reports_by_hour(start.unix_timestamp() / 3600, end.unix_timestamp() / 3600)
            .await?;
        Ok(fill_buckets(start, width, n, &counts))
    }

    /// The dashboard's numbers, from aggregate queries only.
    pub async fn dashboard(&self) -> Result<Dashboard> {
        let (hour_end, day_end) = window_ends(now());
        let hourly = self.chart(hour_end, Duration::HOUR, 24).await?;
        let daily = self.chart(day_end, Duration::DAY, 30).await?;
        let mut counts: HashMap<(Uuid, &'static str), i64> = HashMap::new();
        for (app, state, n) in self.store.account_counts().await? {
            counts.insert((app, state.as_str()), n);
        }
        for (app, status, n) in self.store.job_counts().await? {
            counts.insert((app, status.as_str()), n);
        }
        let count = |app: Uuid, key: &'static str| counts.get(&(app, key)).copied().unwrap_or(0);
        let apps = self
            .store
            .list_apps()
            .await?
            .into_iter()
            .map(|app| AppSummary {
                active_accounts: count(app.id, AccountState::Active.as_str()),
                deactivated_accounts: count(app.id, AccountState::Deactivated.as_str()),
                pending_jobs: count(app.id, JobStatus::Pending.as_str()) + count(app.id, JobStatus::Running.as_str()),
                dead_letters: count(app.id, JobStatus::Failed.as_str()),
                app,
            })
            .collect();
        Ok(Dashboard { apps, hourly, daily })
    }

    /// One record by id, with the other attempts of its work item.
    pub async fn record(&self, id: &str) -> Result<ReportDetail> {
        let missing = || Error::not_found("report record", id);
        let uuid = Uuid::parse_str(id.trim()).map_err(|_| missing())?;
        let report = self.store.get_report(uuid).await?.ok_or_else(missing)?;
        let attempts = self.store.reports_for_correlation(&report.correlation_id).await?;
        Ok(ReportDetail { report, attempts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn buckets_are_filled_and_outcomes_sorted() {
        let start = datetime!(2026-03-01 10:00 UTC);
        let h = start.unix_timestamp() / 3600;
        let count = |hour, outcome, count| OutcomeCount { hour, outcome, count };
        let counts = [
            count(h, Outcome::Success, 3),
            count(h, Outcome::Retrying, 1),
            count(h + 2, Outcome::Failure, 2),
            count(h + 2, Outcome::Skipped, 9),
            count(h + 7, Outcome::Success, 5),
            count(h - 1, Outcome::Success, 5),
        ];
        let buckets = fill_buckets(start, Duration::HOUR, 3, &counts);
        assert_eq!(buckets.len(), 3);
        assert_eq!((buckets[0].succeeded, buckets[0].failed), (3, 1));
        assert_eq!((buckets[1].succeeded, buckets[1].failed), (0, 0));
        assert_eq!((buckets[2].succeeded, buckets[2].failed), (0, 2));
        assert_eq!(buckets[2].start, datetime!(2026-03-01 12:00 UTC));
        // Hours summed into days.
        let days = fill_buckets(datetime!(2026-03-01 00:00 UTC), Duration::DAY, 2, &counts);
        assert_eq!((days[0].succeeded, days[0].failed), (13, 3));
        assert_eq!(days[1].start, datetime!(2026-03-02 00:00 UTC));
    }

    #[test]
    fn windows_end_after_the_current_hour_and_day() {
        let (hour, day) = window_ends(datetime!(2026-03-01 10:42:13 UTC));
        assert_eq!(hour, datetime!(2026-03-01 11:00 UTC));
        assert_eq!(day, datetime!(2026-03-02 00:00 UTC));
    }
}
