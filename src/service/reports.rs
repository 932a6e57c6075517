//! The provisioning report: searching records by end user, app, time span, outcome and operation,
//! a user's timeline across the directory and every app, and retention.

use crate::domain::change::ChangeEvent;
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::{Error, Page, Result, now};
use crate::store::{AppStore, ChangeLogStore, ReportQuery, ReportStore, UserMatch, UserStore};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Search parameters as an administrator gives them (API query string or CLI flags).
#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// End-user identifier: username, email, directory id or the target's id.
    pub user: Option<String>,
    /// `exact` (default) or `prefix`.
    #[serde(rename = "match")]
    pub match_mode: Option<String>,
    /// App name or id.
    pub app: Option<String>,
    /// Start of the time span (RFC 3339).
    pub from: Option<String>,
    /// End of the time span (RFC 3339, exclusive).
    pub to: Option<String>,
    /// A span ending now instead of `from`: e.g. `24h`, `7d`, `30d`, `90m`.
    pub since: Option<String>,
    /// `success`, `failure`, `retrying`, `skipped` or `dry_run`.
    pub outcome: Option<String>,
    /// `create`, `update`, `deactivate`, `reactivate`, `delete`, `adopt`, `group_create`, ...
    pub operation: Option<String>,
    /// `user`, `group` or `connection`.
    pub kind: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
}

/// One entry of a user's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// A change in the directory.
    pub change: Option<ChangeEvent>,
    /// A provisioning action in an app.
    pub report: Option<Report>,
}

/// Parses a relative span such as `24h`, `7d`, `30d` or `90m`.
pub fn parse_span(text: &str) -> Result<Duration> {
    let bad = || {
        Error::BadRequest(format!(
            "'{text}' is not a time span: use a number followed by m, h or d (e.g. 24h, 7d, 30d)"
        ))
    };
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| bad())?;
    if amount <= 0 || amount > 100_000 {
        return Err(bad());
    }
    match unit {
        "m" => Ok(Duration::minutes(amount)),
        "h" => Ok(Duration::hours(amount)),
        "d" => Ok(Duration::days(amount)),
        _ => Err(bad()),
    }
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        Error::BadRequest(format!(
            "{field}: '{text}' is not an RFC 3339 date-time (e.g. 2026-11-01T00:00:00Z)"
        ))
    })
}

/// Report operations over a store.
#[derive(Debug, Clone)]
pub struct ReportService<S> {
    pub(super) store: S,
}

impl<S> ReportService<S>
where
    S: ReportStore + AppStore + UserStore + ChangeLogStore + Clone,
{
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Turns what an administrator typed into a query; anything malformed is a 400 that names it.
    pub async fn query(&self, params: &ReportParams) -> Result<ReportQuery> {
        let prefix = match params.match_mode.as_deref() {
            None | Some("exact") => false,
            Some("prefix") => true,
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "match: '{other}' is not 'exact' or 'prefix'"
                )));
            }
        };
        let user = match params.user.as_deref().map(str::trim) {
            Some("") => {
                return Err(Error::BadRequest(
                    "user: give an identifier or leave the filter out".into(),
                ));
            }
            Some(value) => Some(UserMatch {
                value: value.to_owned(),
                prefix,
            }),
            None => None,
        };
        let app_id = match params.app.as_deref() {
            Some(reference) => {
                let by_id = match uuid::Uuid::parse_str(reference) {
                    Ok(id) => self.store.get_app(id).await?,
                    Err(_) => None,
                };
                let app = match by_id {
                    Some(app) => Some(app),
                    None => self.store.get_app_by_name(reference).await?,
                };
                Some(
                    app.ok_or_else(|| Error::BadRequest(format!("app: there is no app named '{reference}'")))?
                        .app
                        .id,
                )
            }
            None => None,
        };
        if params.since.is_some() && params.from.is_some() {
            return Err(Error::BadRequest("give either since or from, not both".into()));
        }
        let from = match (&params.since, &params.from) {
            (Some(span), _) => Some(now() - parse_span(span)?),
            (None, Some(from)) => Some(parse_time("from", from)?),
            (None, None) => None,
        };
        let to = params.to.as_deref().map(|to| parse_time("to", to)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(Error::BadRequest(
                "the time span is empty or inverted: 'from' must be before 'to'".into(),
            ));
        }
        let outcome = params
            .outcome
            .as_deref()
            .map(|o| {
                Outcome::parse(o).map_err(|_| {
                    Error::BadRequest(format!(
                        "outcome: '{o}' is not success, failure, retrying, skipped or dry_run"
                    ))
                })
            })
            .transpose()?;
        let operation = params
            .operation
            .as_deref()
            .map(|o| {
                Operation::parse(o)
                    .map_err(|_| Error::BadRequest(format!("operation: '{o}' is not a provisioning operation")))
            })
            .transpose()?;
        let subject_kind = params
            .kind
            .as_deref()
            .map(|k| {
                SubjectKind::parse(k)
                    .map_err(|_| Error::BadRequest(format!("kind: '{k}' is not user, group or connection")))
            })
            .transpose()?;
        Ok(ReportQuery {
            user,
            app_id,
            from,
            to,
            outcome,
            operation,
            subject_kind,
            cursor: params.cursor.clone(),
            limit: crate::domain::values::page_limit(params.limit, 50, 1000)?,
        })
    }

    /// A page of report records, newest first.
    pub async fn search(&self, params: &ReportParams) -> Result<Page<Report>> {
        let query = self.query(params).await?;
        self.store.search_reports(&query).await
    }

    /// Everything that happened to one user, oldest first: directory changes and what each app was sent.
    pub async fn timeline(&self, reference: &str) -> Result<Vec<TimelineEntry>> {
        let id = match uuid::Uuid::parse_str(reference) {
            Ok(id) => id.to_string(),
            Err(_) => match self.store.get_user_by_username(reference).await? {
                Some(user) => user.id.to_string(),
                None => {
                    // A deleted user: find their id in the report by username.
                    let page = self
                        .store
                        .search_reports(&ReportQuery {
                            user: Some(UserMatch {
                                value: reference.to_owned(),
                                prefix: false,
                            }),
                            limit: 1,
                            ..Default::default()
                        })
                        .await?;
                    page.items
                        .first()
                        .map(|r| r.subject_id.clone())
                        .ok_or_else(|| Error::not_found("user", reference))?
                }
            },
        };
        let mut entries: Vec<TimelineEntry> = self
            .store
            .changes_about(&id, 10_000)
            .await?
            .into_iter()
            .map(|change| TimelineEntry {
                at: change.occurred_at,
                change: Some(change),
                report: None,
            })
            .collect();
        entries.extend(
            self.store
                .reports_for_subject(&id, 10_000)
                .await?
                .into_iter()
                .map(|report| TimelineEntry {
                    at: report.started_at,
                    change: None,
                    report: Some(report),
                }),
        );
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }

    /// Deletes records older than `retention`, in batches, pausing between them so that the
    /// engine's own writes are never held up; returns how many were deleted.
    pub async fn enforce_retention(&self, retention: Duration, batch: u32) -> Result<u64> {
        let cutoff = now() - retention;
        let mut total = 0;
        loop {
            let deleted = self.store.delete_reports_before(cutoff, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse_span("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_span("90m").unwrap(), Duration::minutes(90));
        for bad in ["", "d", "7", "-1d", "0h", "7w", "x7d", "1.5d"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }
}
