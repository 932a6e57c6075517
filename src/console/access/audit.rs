//! The audit log: logins (and failed ones), locks, logouts and account changes, newest first,
//! paged with "older" links.

use crate::console::reports::format::when;
use crate::console::session::url_encode;
use crate::console::{Editor, Layout, PageError, render};
use crate::domain::Error;
use crate::domain::admin::{AuditEvent, AuditRecord};
use askama::Template;
use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PAGE: i64 = 50;

/// One line.
struct AuditRow {
    when: String,
    event: &'static str,
    event_class: &'static str,
    username: String,
    actor: String,
    address: String,
    detail: String,
}

impl From<&AuditRecord> for AuditRow {
    fn from(r: &AuditRecord) -> Self {
        Self {
            when: when(r.occurred_at),
            event: r.event.as_str(),
            event_class: match r.event {
                AuditEvent::LoginFailed | AuditEvent::AccountLocked | AuditEvent::AdminDisabled => "bad",
                AuditEvent::LoginSucceeded | AuditEvent::LoggedOut => "ok",
                _ => "",
            },
            username: r.username.clone(),
            actor: r.actor.clone(),
            address: r.remote_addr.clone().unwrap_or_default(),
            detail: r.detail.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "access/audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<AuditRow>,
    older: Option<String>,
    paged: bool,
}

/// Where a page of the log starts.
#[derive(Deserialize)]
pub struct Before {
    #[serde(default)]
    before: String,
}

/// `GET /console/audit?before=...`.
pub async fn log(editor: Editor, Query(q): Query<Before>) -> Result<Response, PageError> {
    let before = match q.before.trim() {
        "" => None,
        text => Some(
            OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| Error::BadRequest(format!("before: '{text}' is not an RFC 3339 date-time")))?,
        ),
    };
    let records = editor.console.app.auth.audit_log(PAGE + 1, before).await?;
    let more = records.len() as i64 > PAGE;
    let shown = &records[..records.len().min(PAGE as usize)];
    let older = shown
        .last()
        .filter(|_| more)
        .and_then(|r| r.occurred_at.format(&Rfc3339).ok())
        .map(|t| url_encode(&t));
    Ok(render(&AuditPage {
        layout: editor.layout("Audit log", "audit"),
        rows: shown.iter().map(AuditRow::from).collect(),
        older,
        paged: before.is_some(),
    }))
}
