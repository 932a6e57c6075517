//! The CSV export of a report search: every record matching the filter, newest first, up to
//! [`MAX_ROWS`] (the page says so; an answer cut there carries `X-Provisio-Truncated`).

use super::search::Filter;
use crate::console::{PageError, Viewer};
use crate::domain::Error;
use crate::domain::job::Report;
use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use time::format_description::well_known::Rfc3339;

/// The most records one export holds.
pub const MAX_ROWS: usize = 10_000;
const PAGE: u32 = 1000;

/// The header line.
pub const HEADER: &[&str] = &[
    "time",
    "user",
    "email",
    "app",
    "operation",
    "outcome",
    "attempt",
    "http_method",
    "http_path",
    "http_status",
    "target_id",
    "message",
    "correlation_id",
    "cause",
    "id",
];

/// One CSV field: quoted when it holds a comma, quote or line break (quotes doubled); text a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
/// leading `'`.
pub fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One line (with its CRLF ending) from fields.
pub fn line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut out = fields.iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// A record as a CSV line.
pub fn record_line(r: &Report) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    line(&[
        r.started_at.format(&Rfc3339).unwrap_or_default(),
        r.username.clone().unwrap_or_else(|| r.subject_id.clone()),
        text(&r.email),
        r.app_name.clone(),
        r.operation.as_str().to_owned(),
        r.outcome.as_str().to_owned(),
        r.attempt.to_string(),
        text(&r.http_method),
        text(&r.http_path),
        r.http_status.map(|s| s.to_string()).unwrap_or_default(),
        text(&r.target_id),
        text(&r.message),
        r.correlation_id.clone(),
        r.cause.clone(),
        r.id.to_string(),
    ])
}

/// `GET /console/reports.csv?...`: the records of the search as CSV, as a download.
pub async fn csv(viewer: Viewer, Query(mut filter): Query<Filter>) -> Result<Response, PageError> {
    filter.cursor.clear();
    let mut body = line(HEADER);
    let mut rows = 0;
    let mut truncated = false;
    loop {
        let limit = u32::try_from(MAX_ROWS - rows).unwrap_or(PAGE).min(PAGE);
        let params = filter.params(limit).map_err(|errors| {
            let message = errors
                .all()
                .first()
                .map(|(field, message)| format!("{field}: {message}"))
                .unwrap_or_default();
            Error::BadRequest(message)
        })?;
        let page = viewer.console.app.reports.search(&params).await?;
        for record in &page.items {
            body.push_str(&record_line(record));
        }
        rows += page.items.len();
        match page.next_cursor {
            None => break,
            Some(_) if rows >= MAX_ROWS => {
                truncated = true;
                break;
            }
            Some(cursor) => filter.cursor = cursor,
        }
    }
    let stamp = crate::domain::now().unix_timestamp();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"provisioning-report-{stamp}.csv\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if truncated {
        headers.insert("x-provisio-truncated", HeaderValue::from(MAX_ROWS));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("alice"), "alice");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(line(&["a", "", "c,d"]), "a,,\"c,d\"\r\n");
    }

    #[test]
    fn formulas_are_not_run_by_spreadsheets() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("+1"), "'+1");
    }
}
