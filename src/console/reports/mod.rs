//! Console pages: the dashboard and Provisioning Reports (being built).

use super::{ConsoleState, Layout, Viewer, render};
use askama::Template;
use axum::Router;
use axum::response::Response;
use axum::routing::get;

#[derive(Template)]
#[template(path = "reports/dashboard.html")]
struct Dashboard {
    layout: Layout,
}

/// `GET /console/`: the dashboard.
async fn dashboard(viewer: Viewer) -> Response {
    render(&Dashboard {
        layout: viewer.layout("Dashboard", "dashboard"),
    })
}

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new().route("/console/", get(dashboard))
}
