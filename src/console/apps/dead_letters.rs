//! An app's dead letters (jobs that failed permanently or ran out of retries): who, what, the last
//! error and the attempts, with Retry and Discard for the ones selected or all of them.

use super::{AppSummary, when};
use crate::console::{Editor, Layout, PageError, Viewer, render};
use crate::domain::job::SubjectKind;
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::response::Response;

/// How many dead letters the page lists (the rest are counted).
const SHOWN: usize = 200;

/// One dead letter, for people.
struct DeadLetterView {
    id: String,
    kind: &'static str,
    /// The username or group name (or the id when it is gone from the directory).
    name: String,
    /// What the last attempt did (`create`, `update`, ...), from its report records.
    operation: String,
    error: String,
    attempts: i64,
    queued: String,
}

#[derive(Template)]
#[template(path = "apps/dead_letters.html")]
struct DeadLettersPage {
    layout: Layout,
    app: AppSummary,
    letters: Vec<DeadLetterView>,
    total: usize,
}

/// `GET /console/apps/{app}/dead-letters`.
pub async fn page(viewer: Viewer, Path(app): Path<String>) -> Result<Response, PageError> {
    let state = &viewer.console.app;
    let app = state.apps.get_app(&app).await?;
    let jobs = state.apps.dead_letters(&app.id.to_string()).await?;
    let total = jobs.len();
    let mut letters = Vec::new();
    for job in jobs.into_iter().take(SHOWN) {
        let (kind, name) = match job.subject_kind {
            SubjectKind::User => (
                "user",
                state.directory.get_user(&job.subject_id).await.map(|u| u.username).ok(),
            ),
            SubjectKind::Group => (
                "group",
                state.directory.get_group(&job.subject_id).await.map(|g| g.name).ok(),
            ),
            SubjectKind::Connection => ("connection", Some("connection check".to_owned())),
            SubjectKind::Import => ("import", Some("import run".to_owned())),
            SubjectKind::Reconcile => ("reconcile", Some("reconciliation run".to_owned())),
        };
        let operation = state
            .apps
            .job(&job.id)
            .await?
            .reports
            .last()
            .map(|r| r.operation.as_str().to_owned())
            .unwrap_or_default();
        letters.push(DeadLetterView {
            kind,
            name: name.unwrap_or_else(|| format!("{} (no longer in the directory)", job.subject_id)),
            operation,
            error: job.last_error.unwrap_or_default(),
            attempts: job.attempts,
            queued: when(job.created_at),
            id: job.id,
        });
    }
    Ok(render(&DeadLettersPage {
        layout: viewer.layout(format!("{}: dead letters", app.name), "apps"),
        app: AppSummary::of(&app, "dead-letters"),
        letters,
        total,
    }))
}

/// The selection: `scope=all`, or the `job` fields checked.
fn selection(fields: &[(String, String)]) -> Option<Vec<String>> {
    if fields.iter().any(|(k, v)| k == "scope" && v == "all") {
        return None;
    }
    Some(
        fields
            .iter()
            .filter(|(k, _)| k == "job")
            .map(|(_, v)| v.clone())
            .collect(),
    )
}

/// `POST /console/apps/{app}/dead-letters/retry`: queues the selected dead letters (or all) again.
pub async fn retry(
    editor: Editor,
    Path(app): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    act(editor, app, fields, true).await
}

/// `POST /console/apps/{app}/dead-letters/discard`: drops the selected dead letters (or all).
pub async fn discard(
    editor: Editor,
    Path(app): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    act(editor, app, fields, false).await
}

async fn act(editor: Editor, app: String, fields: Vec<(String, String)>, retry: bool) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let id = app.id.to_string();
    let back = format!("/console/apps/{id}/dead-letters");
    let mut affected = 0;
    match selection(&fields) {
        None if retry => affected += apps.retry_dead_letters(&id, None).await?,
        None => affected += apps.discard_dead_letters(&id, None).await?,
        Some(jobs) if jobs.is_empty() => {
            return Ok(editor.redirect(&back, "Select at least one dead letter first."));
        }
        Some(jobs) => {
            for job in &jobs {
                affected += if retry {
                    apps.retry_dead_letters(&id, Some(job)).await?
                } else {
                    apps.discard_dead_letters(&id, Some(job)).await?
                };
            }
        }
    }
    if retry {
        editor.console.app.wake.jobs_queued();
    }
    let notice = match (retry, affected) {
        (true, 1) => "1 dead letter was queued again.".to_owned(),
        (true, n) => format!("{n} dead letters were queued again."),
        (false, 1) => "1 dead letter was discarded.".to_owned(),
        (false, n) => format!("{n} dead letters were discarded."),
    };
    Ok(editor.redirect(&back, &notice))
}
