//! Console pages: the dashboard (every app's accounts, queued work, dead letters and health;
//! provisioning actions and failures per hour and per day as server-drawn charts) and
//! Provisioning Reports (search, record detail, CSV export).

mod chart;
mod export;
pub(super) mod format;
mod search;

use super::{ConsoleState, Layout, PageError, Viewer, render};
use crate::domain::app::{AppState, ConnectionStatus};
use crate::service::dashboard::{AppSummary, Bucket};
use askama::Template;
use axum::Router;
use axum::response::Response;
use axum::routing::get;
use chart::{ChartSpec, bar_chart};

/// A chart with its numbers (for the summary text and the table read by screen readers).
struct Chart {
    id: &'static str,
    heading: &'static str,
    unit: &'static str,
    svg: String,
    succeeded: i64,
    failed: i64,
    rows: Vec<(String, i64, i64)>,
}

impl Chart {
    fn new(
        spec: &ChartSpec<'static>,
        (heading, unit): (&'static str, &'static str),
        buckets: &[Bucket],
        label: impl Fn(&Bucket) -> String,
    ) -> Self {
        Self {
            id: spec.id,
            heading,
            unit,
            svg: bar_chart(spec, buckets, &label),
            succeeded: buckets.iter().map(|b| b.succeeded).sum(),
            failed: buckets.iter().map(|b| b.failed).sum(),
            rows: buckets.iter().map(|b| (label(b), b.succeeded, b.failed)).collect(),
        }
    }
}

/// One app's line on the dashboard.
struct AppRow {
    id: String,
    name: String,
    active: i64,
    deactivated: i64,
    pending: i64,
    dead_letters: i64,
    connection: &'static str,
    connection_class: &'static str,
    connection_message: String,
    state: &'static str,
    state_class: &'static str,
    state_reason: String,
}

impl From<AppSummary> for AppRow {
    fn from(s: AppSummary) -> Self {
        let app = s.app;
        let (connection_class, state_class) = (
            match app.connection_status {
                ConnectionStatus::Ok => "ok",
                ConnectionStatus::Unchecked => "warn",
                ConnectionStatus::Failed => "bad",
            },
            match app.state {
                AppState::Active => "ok",
                AppState::Paused => "warn",
                AppState::Quarantined => "bad",
            },
        );
        Self {
            id: app.id.to_string(),
            name: app.name,
            active: s.active_accounts,
            deactivated: s.deactivated_accounts,
            pending: s.pending_jobs,
            dead_letters: s.dead_letters,
            connection: app.connection_status.as_str(),
            connection_class,
            connection_message: app.connection_message.unwrap_or_default(),
            state: app.state.as_str(),
            state_class,
            state_reason: app.state_reason.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "reports/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    apps: Vec<AppRow>,
    charts: Vec<Chart>,
}

/// `GET /console/`: the dashboard.
async fn dashboard(viewer: Viewer) -> Result<Response, PageError> {
    let numbers = viewer.console.app.reports.dashboard().await?;
    let hourly = Chart::new(
        &ChartSpec {
            id: "chart-hours",
            title: "Provisioning in the last 24 hours",
            label_every: 3,
        },
        ("Last 24 hours", "Hour (UTC)"),
        &numbers.hourly,
        |b| format!("{:02}:00", b.start.hour()),
    );
    let daily = Chart::new(
        &ChartSpec {
            id: "chart-days",
            title: "Provisioning in the last 30 days",
            label_every: 5,
        },
        ("Last 30 days", "Day (UTC)"),
        &numbers.daily,
        |b| format!("{:02}-{:02}", u8::from(b.start.month()), b.start.day()),
    );
    Ok(render(&DashboardPage {
        layout: viewer.layout("Dashboard", "dashboard"),
        apps: numbers.apps.into_iter().map(AppRow::from).collect(),
        charts: vec![hourly, daily],
    }))
}

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/", get(dashboard))
        .route("/console/reports", get(search::reports))
        .route("/console/reports.csv", get(export::csv))
        .route("/console/reports/{id}", get(search::detail))
}
