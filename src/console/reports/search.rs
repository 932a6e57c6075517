//! Provisioning Reports: the filter form (end user, app, time span, outcome, operation), the
//! result table paged newest first, and one record's detail with the other attempts of its work
//! item. The form is a GET form, so every search is a link.

use super::format::{from_local_input, when};
use crate::console::{FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::Error;
use crate::domain::job::{Outcome, Report};
use crate::service::reports::ReportParams;
use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcomes a search can ask for, with their labels.
pub const OUTCOMES: &[(&str, &str)] = &[
    ("success", "Success"),
    ("failure", "Failure"),
    ("retrying", "Failed, retrying"),
    ("skipped", "Skipped"),
    ("dry_run", "Dry run"),
];

/// The operations a search can ask for, with their labels.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("create", "Create"),
    ("update", "Update"),
    ("deactivate", "Deactivate"),
    ("reactivate", "Reactivate"),
    ("delete", "Delete"),
    ("adopt", "Adopt"),
    ("lookup", "Look up"),
    ("group_create", "Group create"),
    ("group_update", "Group update"),
    ("group_delete", "Group delete"),
    ("membership_add", "Members added"),
    ("membership_remove", "Members removed"),
    ("test_connection", "Connection check"),
    ("skip", "Nothing to do"),
];

/// The quick time spans, with their labels.
pub const SPANS: &[(&str, &str)] = &[
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

/// The search form's fields, as typed (every one may be empty).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Filter {
    /// End-user identifier: username, email, directory id or target id.
    #[serde(default)]
    pub user: String,
    /// `on` to match identifiers starting with `user`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// App id.
    #[serde(default)]
    pub app: String,
    /// A quick span (`1h`, `24h`, `7d`, `30d`).
    #[serde(default)]
    pub since: String,
    /// Start, as a `datetime-local` value (UTC).
    #[serde(default)]
    pub from: String,
    /// End (exclusive), as a `datetime-local` value (UTC).
    #[serde(default)]
    pub to: String,
    /// Outcome.
    #[serde(default)]
    pub outcome: String,
    /// Operation.
    #[serde(default)]
    pub operation: String,
    /// Where the page starts (from the previous page).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cursor: String,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Which form field a search error of the report service is about.
fn field_of(message: &str) -> &'static str {
    let fields = ["user", "match", "app", "from", "to", "outcome", "operation", "since"];
    if let Some(field) = fields.iter().find(|f| message.starts_with(&format!("{f}:"))) {
        return if *field == "match" { "user" } else { field };
    }
    if message.contains("since or from") {
        "since"
    } else if message.contains("time span") {
        "to"
    } else {
        "search"
    }
}

impl Filter {
    /// The service's search parameters for a page of `limit`; malformed times are field errors.
    pub fn params(&self, limit: u32) -> Result<ReportParams, FormErrors> {
        let mut errors = FormErrors::default();
        let mut time = |field: &str, text: &str| match given(text) {
            None => None,
            Some(text) => {
                let parsed = from_local_input(&text);
                if parsed.is_none() {
                    errors.add(field, "give a date and time, e.g. 2026-03-01T09:30 (UTC)");
                }
                parsed
            }
        };
        let from = time("from", &self.from);
        let to = time("to", &self.to);
        if errors.any() {
            return Err(errors);
        }
        Ok(ReportParams {
            user: given(&self.user),
            match_mode: (!self.prefix.is_empty() && given(&self.user).is_some()).then(|| "prefix".to_owned()),
            app: given(&self.app),
            from,
            to,
            since: given(&self.since),
            outcome: given(&self.outcome),
            operation: given(&self.operation),
            kind: None,
            cursor: given(&self.cursor),
            limit: Some(limit),
        })
    }

    /// The errors a refused search stands for, by field; other errors are given back.
    pub fn errors_of(error: Error) -> Result<FormErrors, Error> {
        match error {
            Error::BadRequest(message) => {
                let mut errors = FormErrors::default();
                errors.add(field_of(&message), message);
                Ok(errors)
            }
            other => FormErrors::from_error(other, "search"),
        }
    }

    /// This filter as a query string, without the cursor (for links and the CSV export).
    pub fn query(&self) -> String {
        let mut plain = self.clone();
        plain.cursor.clear();
        serde_urlencoded::to_string(&plain).unwrap_or_default()
    }
}

/// One result line.
pub struct Row {
    id: String,
    when: String,
    user: String,
    email: String,
    app: String,
    operation: &'static str,
    outcome: &'static str,
    outcome_class: &'static str,
    correlation: String,
    status: String,
}

fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "ok",
        Outcome::Failure => "bad",
        Outcome::Retrying => "warn",
        Outcome::Skipped | Outcome::DryRun => "",
    }
}

impl From<&Report> for Row {
    fn from(r: &Report) -> Self {
        Self {
            id: r.id.to_string(),
            when: when(r.started_at),
            user: r.username.clone().unwrap_or_else(|| r.subject_id.clone()),
            email: r.email.clone().unwrap_or_default(),
            app: r.app_name.clone(),
            operation: r.operation.as_str(),
            outcome: r.outcome.as_str(),
            outcome_class: outcome_class(r.outcome),
            correlation: r.correlation_id.clone(),
            status: r.http_status.map(|s| s.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "reports/search.html")]
struct SearchPage {
    layout: Layout,
    filter: Filter,
    apps: Vec<(String, String)>,
    errors: FormErrors,
    rows: Vec<Row>,
    next: Option<String>,
    query: String,
}

impl SearchPage {
    fn outcomes(&self) -> &'static [(&'static str, &'static str)] {
        OUTCOMES
    }
    fn operations(&self) -> &'static [(&'static str, &'static str)] {
        OPERATIONS
    }
    fn spans(&self) -> &'static [(&'static str, &'static str)] {
        SPANS
    }
}

/// `GET /console/reports`: the search form and a page of results (no filter: everything, newest
/// first).
pub async fn reports(viewer: Viewer, Query(filter): Query<Filter>) -> Result<Response, PageError> {
    let app = &viewer.console.app;
    let apps = app
        .apps
        .list_apps()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.name))
        .collect();
    let query = filter.query();
    let mut page = SearchPage {
        layout: viewer.layout("Provisioning Reports", "reports"),
        filter,
        apps,
        errors: FormErrors::default(),
        rows: Vec::new(),
        next: None,
        query,
    };
    let found = match page.filter.params(50) {
        Ok(params) => app.reports.search(&params).await.map_err(Filter::errors_of),
        Err(errors) => Err(Ok(errors)),
    };
    match found {
        Ok(results) => {
            page.rows = results.items.iter().map(Row::from).collect();
            page.next = results.next_cursor.map(|c| crate::console::session::url_encode(&c));
            Ok(render(&page))
        }
        Err(Ok(errors)) => {
            page.errors = errors;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(Err(other)) => Err(PageError(other)),
    }
}

/// One attribute change: name, value before, value after.
pub struct DiffRow {
    name: String,
    old: String,
    new: String,
}

fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The rows of a record's attribute diff (`name -> {old, new}`), by name.
pub fn diff_rows(diff: Option<&Value>) -> Vec<DiffRow> {
    let Some(Value::Object(map)) = diff else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, change)| DiffRow {
            name: name.clone(),
            old: show(change.get("old")),
            new: show(change.get("new")),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "reports/detail.html")]
struct DetailPage {
    layout: Layout,
    row: Row,
    report: Report,
    duration: String,
    request: String,
    diff: Vec<DiffRow>,
    attempts: Vec<(Row, i64, bool)>,
}

/// `GET /console/reports/{id}`: one record: what was sent and answered, the attribute changes,
/// the target's error, and every attempt of the same work item.
pub async fn detail(viewer: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let found = viewer.console.app.reports.record(&id).await?;
    let report = found.report;
    let attempts = found
        .attempts
        .iter()
        .map(|a| (Row::from(a), a.attempt, a.id == report.id))
        .collect();
    let request = match (&report.http_method, &report.http_path) {
        (Some(method), Some(path)) => format!("{method} {path}"),
        _ => String::new(),
    };
    Ok(render(&DetailPage {
        layout: viewer.layout("Report record", "reports"),
        row: Row::from(&report),
        duration: format!("{} ms", report.duration_ms),
        request,
        diff: diff_rows(report.diff.as_ref()),
        attempts,
        report,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_fields_are_no_filter() {
        let params = Filter::default().params(50).unwrap();
        assert!(params.user.is_none() && params.app.is_none() && params.from.is_none());
        assert_eq!(params.limit, Some(50));
    }

    #[test]
    fn times_are_read_as_utc_and_bad_ones_are_field_errors() {
        let filter = Filter {
            from: "2026-03-01T09:30".into(),
            to: "soon".into(),
            ..Default::default()
        };
        let errors = filter.params(50).unwrap_err();
        assert!(!errors.of("to").is_empty() && errors.of("from").is_empty());
        let filter = Filter {
            user: " alice ".into(),
            prefix: "on".into(),
            from: "2026-03-01T09:30".into(),
            ..Default::default()
        };
        let params = filter.params(50).unwrap();
        assert_eq!(params.from.as_deref(), Some("2026-03-01T09:30:00Z"));
        assert_eq!(
            (params.user.as_deref(), params.match_mode.as_deref()),
            (Some("alice"), Some("prefix"))
        );
    }

    #[test]
    fn service_errors_land_beside_their_field() {
        assert_eq!(field_of("app: there is no app named 'x'"), "app");
        assert_eq!(field_of("give either since or from, not both"), "since");
        assert_eq!(
            field_of("the time span is empty or inverted: 'from' must be before 'to'"),
            "to"
        );
        assert_eq!(field_of("something else"), "search");
    }

    #[test]
    fn the_query_keeps_the_filter_but_not_the_cursor() {
        let filter = Filter {
            user: "a b&c".into(),
            cursor: "xyz".into(),
            ..Default::default()
        };
        let query = filter.query();
        assert!(query.contains("user=a+b%26c") && !query.contains("xyz"), "{query}");
    }

    #[test]
    fn diffs_show_values_plainly() {
        let diff = json!({"title": {"old": "Eng", "new": "Lead"}, "active": {"old": null, "new": true}});
        let rows = diff_rows(Some(&diff));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].old.as_str(), rows[0].new.as_str()),
            ("active", "—", "true")
        );
        assert_eq!((rows[1].old.as_str(), rows[1].new.as_str()), ("Eng", "Lead"));
    }
}
