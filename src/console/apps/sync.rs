//! An app's full synchronisation: the dry-run plan (what would be created, updated, deactivated
//! or deleted, by user and group name, with nothing sent) and "Sync now" with its progress,
//! polled from a fragment until the run is done.

use super::AppSummary;
use crate::console::{Editor, Layout, PageError, Viewer, render};
use crate::domain::Error;
use crate::domain::app::App;
use crate::domain::job::SubjectKind;
use crate::service::apps::PlanLine;
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::Response;
use serde::Deserialize;

/// One line of the plan, for people.
struct PlanView {
    kind: &'static str,
    name: String,
    /// The action's key (`create`, `update`, `no_change`, ...).
    action: String,
    /// The action in words.
    words: &'static str,
    /// The attributes that change, the reason of a skip, the members of a group.
    detail: String,
}

impl PlanView {
    fn of(line: &PlanLine) -> Self {
        let action = line.plan.key().to_owned();
        let words = line.plan.words();
        let detail = line.plan.detail(false);
        Self {
            kind: match line.subject_kind {
                SubjectKind::Group => "group",
                _ => "user",
            },
            name: line.name.clone(),
            action,
            words,
            detail,
        }
    }
}

/// How many lines of the plan do what.
#[derive(Default)]
struct PlanCounts {
    creates: usize,
    updates: usize,
    deactivates: usize,
    deletes: usize,
    unchanged: usize,
}

#[derive(Template)]
#[template(path = "apps/sync.html")]
struct SyncPage {
    layout: Layout,
    app: AppSummary,
    /// The groups whose members get accounts: (policy name, group name).
    policies: Vec<(String, String)>,
    plan: Option<Vec<PlanView>>,
    counts: PlanCounts,
    /// The progress fragment of a run, rendered (empty: no run).
    progress: String,
}

async fn sync_page(
    viewer: &Viewer,
    app: &App,
    plan: Option<Vec<PlanView>>,
    progress: String,
) -> Result<SyncPage, Error> {
    let policies = viewer
        .console
        .app
        .apps
        .list_policies(Some(&app.id.to_string()))
        .await?
        .into_iter()
        .map(|p| (p.policy.name, p.group_name))
        .collect();
    let mut counts = PlanCounts::default();
    for line in plan.iter().flatten() {
        match line.action.as_str() {
            "create" | "group_create" => counts.creates += 1,
            "update" | "reactivate" | "group_update" => counts.updates += 1,
            "deactivate" => counts.deactivates += 1,
            "delete" | "group_delete" => counts.deletes += 1,
            _ => counts.unchanged += 1,
        }
    }
    Ok(SyncPage {
        layout: viewer.layout(format!("{}: sync", app.name), "apps"),
        app: AppSummary::of(app, "sync"),
        policies,
        plan,
        counts,
        progress,
    })
}

/// The sync page's query: the run to follow.
#[derive(Debug, Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    run: String,
}

/// `GET /console/apps/{app}/sync?run=`: the buttons, and a run's progress.
pub async fn page(viewer: Viewer, Path(app): Path<String>, Query(q): Query<RunQuery>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    let progress = if q.run.is_empty() {
        String::new()
    } else {
        progress_of(&viewer, &app.id.to_string(), &q.run)
            .await?
            .render()
            .map_err(|e| Error::Storage(format!("the progress failed to render: {e}")))?
    };
    Ok(render(&sync_page(&viewer, &app, None, progress).await?))
}

/// `POST /console/apps/{app}/plan`: the dry run (it computes from the directory and what was last
/// pushed, contacts nothing, and records the plan in the provisioning report).
pub async fn plan(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let lines = apps.dry_run(&app.id.to_string()).await?;
    let plan = lines.iter().map(PlanView::of).collect();
    Ok(render(&sync_page(&editor, &app, Some(plan), String::new()).await?))
}

/// `POST /console/apps/{app}/sync`: queues a full reconciliation and follows its progress.
pub async fn run(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let run = apps.sync(&app.id.to_string()).await?;
    if run.total == 0 {
        return Ok(editor.redirect(
            &format!("/console/apps/{}/sync", app.id),
            "Nothing to synchronise: no user or group is in scope (add a policy for a group).",
        ));
    }
    editor.console.app.wake.jobs_queued();
    Ok(editor.redirect(
        &format!("/console/apps/{}/sync?run={}", app.id, run.run_id),
        &format!("A full synchronisation of {} is queued.", app.name),
    ))
}

/// A run's progress; polls itself until the run is done.
#[derive(Template)]
#[template(path = "apps/progress.html")]
struct ProgressFragment {
    app_id: String,
    run_id: String,
    total: i64,
    done: i64,
    failed: i64,
    finished: bool,
}

async fn progress_of(viewer: &Viewer, app_id: &str, run_id: &str) -> Result<ProgressFragment, Error> {
    let (total, done, failed) = match viewer.console.app.apps.sync_progress(run_id).await {
        Ok(run) => (run.total, run.done, run.failed),
        // Every job of the run was already queued (and kept its place): nothing of its own.
        Err(Error::NotFound { .. }) => (0, 0, 0),
        Err(other) => return Err(other),
    };
    Ok(ProgressFragment {
        app_id: app_id.to_owned(),
        run_id: run_id.to_owned(),
        total,
        done,
        failed,
        finished: done + failed >= total,
    })
}

/// `GET /console/apps/{app}/sync/progress?run=`: the fragment the sync page polls.
pub async fn progress(
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    Ok(render(&progress_of(&viewer, &app.id.to_string(), &q.run).await?))
}
