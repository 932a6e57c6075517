//! Console pages of the directory: users (list, search, add, edit, activate, provision, delete
//! with its confirmation), one user's page (profile, attributes, groups, app accounts, timeline),
//! groups (list, create, rename, delete, members with a search-as-you-type picker, the apps a
//! group gives access to) and custom attribute definitions.

mod attributes;
mod form;
mod groups;
mod user_page;
mod users;

use super::{ConsoleState, Viewer};
use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
use time::OffsetDateTime;

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/users", get(users::list).post(users::create))
        .route("/console/users/rows", get(users::rows))
        .route("/console/users/picker", get(users::picker))
        .route("/console/users/new", get(users::new_form))
        .route("/console/users/{id}", get(user_page::show))
        .route(
            "/console/users/{id}/edit",
            get(user_page::edit_form).post(user_page::edit),
        )
        .route("/console/users/{id}/activate", post(user_page::activate))
        .route("/console/users/{id}/deactivate", post(user_page::deactivate))
        .route("/console/users/{id}/provision", post(user_page::provision))
        .route(
            "/console/users/{id}/delete",
            get(user_page::delete_form).post(user_page::delete),
        )
        .route("/console/groups", get(groups::list).post(groups::create))
        .route("/console/groups/{id}", get(groups::show))
        .route("/console/groups/{id}/rename", post(groups::rename))
        .route("/console/groups/{id}/delete", post(groups::delete))
        .route("/console/groups/{id}/members", post(groups::add_member))
        .route(
            "/console/groups/{id}/members/{user}/remove",
            post(groups::remove_member),
        )
        .route("/console/attributes", get(attributes::list).post(attributes::create))
        .route(
            "/console/attributes/{name}/edit",
            get(attributes::edit_form).post(attributes::edit),
        )
        .route("/console/attributes/{name}/delete", post(attributes::delete))
}

/// Tells the engine that the directory changed, so that provisioning starts without waiting
/// for its next poll (the API does this in its metrics layer; the console's routes are outside).
fn changed(viewer: &Viewer) {
    viewer.console.app.wake.changed();
}

/// A time for people: `2026-01-02 03:04:05 UTC`.
pub fn when(at: &OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// An attribute value as text: lists joined with `sep`, nothing for null.
pub fn value_text(value: &Value, sep: &str) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(|v| value_text(v, sep)).collect::<Vec<_>>().join(sep),
        other => other.to_string(),
    }
}

/// An optional text, empty when absent.
pub fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}
