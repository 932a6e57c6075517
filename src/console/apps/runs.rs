//! One import or reconciliation run of an app: its status, counts, warning and error (a fragment
//! that refreshes itself while the run is queued or running), and its items, a page of 500 at a
//! time, each with the account, the directory user it concerns and the reason or note the run
//! left.

use super::{AppSummary, when};
use crate::console::{Layout, PageError, Viewer, render};
use crate::domain::Error;
use crate::domain::app::App;
use crate::domain::target_run::{RunItem, RunKind, RunStatus, TargetRun};
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// How many items the run page shows at a time.
const ITEMS_PER_PAGE: u32 = 500;

/// A run, for people: what it is, where it is, what it found.
#[derive(Debug, Clone)]
pub(super) struct RunView {
    /// The run's id.
    pub id: String,
    /// Its app's id (for the URLs).
    pub app_id: String,
    /// `import` or `reconcile`.
    pub kind: &'static str,
    /// "Import" or "Reconciliation".
    pub kind_words: &'static str,
    /// Whether it only planned.
    pub dry_run: bool,
    /// How it runs, in words: "dry run: nothing changed", "real run", "real run (fix drift)".
    pub mode: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: &'static str,
    /// The status badge's class.
    pub status_class: &'static str,
    /// Whether it is still to end (the fragment polls then).
    pub active: bool,
    /// Items by outcome: (outcome in words, count).
    pub counts: Vec<(String, i64)>,
    /// Accounts read from the target.
    pub accounts_read: i64,
    /// Why it failed (empty: it did not).
    pub error: String,
    /// What the administrator should know (empty: nothing).
    pub warning: String,
    /// Who asked.
    pub cause: String,
    /// When it was asked for.
    pub created: String,
    /// When it started (empty: not yet).
    pub started: String,
    /// When it ended (empty: not yet).
    pub finished: String,
}

impl RunView {
    /// The view of `run`.
    pub fn of(run: &TargetRun) -> Self {
        let (kind, kind_words) = match run.kind {
            RunKind::Import => ("import", "Import"),
            RunKind::Reconcile => ("reconcile", "Reconciliation"),
        };
        let mode = match (run.kind, run.dry_run) {
            (_, true) => "dry run: nothing changed".to_owned(),
            (RunKind::Import, false) => "real run".to_owned(),
            (RunKind::Reconcile, false) => format!("real run ({})", words(&apply_name(run))),
        };
        let status_class = match run.status {
            RunStatus::Queued | RunStatus::Running => "warn",
            RunStatus::Done => "ok",
            RunStatus::Failed => "bad",
        };
        Self {
            id: run.id.to_string(),
            app_id: run.app_id.to_string(),
            kind,
            kind_words,
            dry_run: run.dry_run,
            mode,
            status: run.status.as_str(),
            status_class,
            active: matches!(run.status, RunStatus::Queued | RunStatus::Running),
            counts: run.counts.iter().map(|(k, v)| (words(k), *v)).collect(),
            accounts_read: run.accounts_read,
            error: run.error.clone().unwrap_or_default(),
            warning: run.warning.clone().unwrap_or_default(),
            cause: run.cause.clone(),
            created: when(run.created_at),
            started: run.started_at.map(when).unwrap_or_default(),
            finished: run.finished_at.map(when).unwrap_or_default(),
        }
    }

    /// The counts on one line: "linked 2 · conflict 1" (empty: none yet).
    pub fn counts_line(&self) -> String {
        self.counts
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The stored name of a run's reconcile setting (`fix_drift`, ...).
fn apply_name(run: &TargetRun) -> String {
    run.apply.as_str().to_owned()
}

/// A stored name in words: `already_linked` → `already linked`.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

/// One item of a run, for people.
struct ItemView {
    seq: i64,
    /// The outcome's stored name (`linked`, `drifted`, ...).
    outcome: String,
    /// The outcome in words.
    outcome_words: String,
    username: String,
    target_id: String,
    /// The directory user's id (empty: none).
    user_id: String,
    /// Their username, or a note that they are gone.
    user_name: String,
    /// Whether they are still in the directory (their page is linked then).
    user_exists: bool,
    /// The reason or note the run left.
    reason: String,
    applied: bool,
}

impl ItemView {
    fn of(item: RunItem, names: &HashMap<Uuid, String>) -> Self {
        let reason = ["reason", "note"]
            .iter()
            .find_map(|key| item.detail.get(key).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let known = item.user_id.and_then(|id| names.get(&id));
        let user_name = match (item.user_id, known) {
            (_, Some(name)) => name.clone(),
            (Some(id), None) => format!("{id} (no longer in the directory)"),
            (None, None) => String::new(),
        };
        Self {
            seq: item.seq,
            outcome_words: words(&item.outcome),
            outcome: item.outcome,
            username: item.target_username.unwrap_or_default(),
            target_id: item.target_id.unwrap_or_default(),
            user_id: item.user_id.map(|id| id.to_string()).unwrap_or_default(),
            user_name,
            user_exists: known.is_some(),
            reason,
            applied: item.applied,
        }
    }
}

/// The usernames of the directory users `ids` (users no longer there are left out).
pub(super) async fn usernames(viewer: &Viewer, ids: Vec<Uuid>) -> Result<HashMap<Uuid, String>, Error> {
    let mut names = HashMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        match viewer.console.app.directory.get_user(&id.to_string()).await {
            Ok(user) => {
                names.insert(id, user.username);
            }
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(names)
}

/// The run `run` of `app` (a run of another app is not found here).
async fn run_of(viewer: &Viewer, app: &App, run: &str) -> Result<TargetRun, Error> {
    let found = viewer.console.app.apps.target_run(run).await?;
    if found.app_id != app.id {
        return Err(Error::not_found("run", run));
    }
    Ok(found)
}

#[derive(Template)]
#[template(path = "apps/run.html")]
struct RunPage {
    layout: Layout,
    app: AppSummary,
    run: RunView,
    items: Vec<ItemView>,
    /// Whether this page starts after the first item.
    later_page: bool,
    /// The next page's URL (empty: this is the last).
    next: String,
    /// Whether the status was fetched by the page's poller (never for the page itself).
    polled: bool,
}

/// The run page's query: items after this position.
#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    /// The position of the last item of the previous page (empty: from the first item).
    #[serde(default)]
    after: Option<String>,
}

/// `GET /console/apps/{app}/runs/{run}?after=`: the run and a page of its items.
pub async fn page(
    viewer: Viewer,
    Path((app, run)): Path<(String, String)>,
    Query(q): Query<ItemsQuery>,
) -> Result<Response, PageError> {
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| Error::BadRequest(format!("'after' must be an item position, not '{text}'")))?,
    };
    let app = viewer.console.app.apps.get_app(&app).await?;
    let run = run_of(&viewer, &app, &run).await?;
    let items = viewer
        .console
        .app
        .apps
        .target_run_items(&run.id.to_string(), after, ITEMS_PER_PAGE)
        .await?;
    let users: Vec<Uuid> = items.iter().filter_map(|i| i.user_id).collect();
    let names = usernames(&viewer, users).await?;
    let next = match items.last() {
        Some(last) if items.len() >= ITEMS_PER_PAGE as usize => {
            format!("/console/apps/{}/runs/{}?after={}", app.id, run.id, last.seq)
        }
        _ => String::new(),
    };
    let view = RunView::of(&run);
    Ok(render(&RunPage {
        layout: viewer.layout(format!("{}: {} run", app.name, view.kind_words), "apps"),
        app: AppSummary::of(&app, "imports"),
        items: items.into_iter().map(|i| ItemView::of(i, &names)).collect(),
        run: view,
        later_page: after > 0,
        next,
        polled: false,
    }))
}

/// A run's status; polls itself while the run is queued or running.
#[derive(Template)]
#[template(path = "apps/run_progress.html")]
struct ProgressFragment {
    run: RunView,
    /// Always true: only the run page's poller asks for the fragment.
    polled: bool,
}

/// `GET /console/apps/{app}/runs/{run}/progress`: the fragment the run page polls.
pub async fn progress(viewer: Viewer, Path((app, run)): Path<(String, String)>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    let run = run_of(&viewer, &app, &run).await?;
    Ok(render(&ProgressFragment {
        run: RunView::of(&run),
        polled: true,
    }))
}
