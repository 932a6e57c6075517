//! Console pages: apps (SCIM destinations) and policies (app x group). The list and the "Add app"
//! form (`list.rs`), an app's settings with its state and connection (`settings.rs`), its
//! attribute mapping with a live preview (`mapping.rs`), its dry-run plan and full
//! synchronisation (`sync.rs`), its imports and reconciliations with their settings
//! (`imports.rs`), a run's items (`runs.rs`) and the import conflict queue (`conflicts.rs`), its
//! dead letters (`dead_letters.rs`), and the policies (`policies.rs`). Every page works over `AppService`, like the REST API's handlers.

mod conflicts;
mod dead_letters;
mod imports;
mod list;
mod mapping;
mod policies;
mod runs;
mod settings;
mod sync;

use super::ConsoleState;
use crate::domain::app::{App, AppState, ConnectionStatus};
use axum::Router;
use axum::routing::{get, post};
use time::OffsetDateTime;

/// Groups a form offers in a select: the first thousand by the directory's order, as (id, name).
async fn offered_groups(
    directory: &crate::service::DirectoryService<crate::store::SqlStore>,
) -> Result<Vec<(String, String)>, crate::domain::Error> {
    Ok(directory
        .list_groups(&crate::store::GroupQuery {
            search: None,
            cursor: None,
            limit: 1000,
        })
        .await?
        .items
        .into_iter()
        .map(|g| (g.id.to_string(), g.name))
        .collect())
}

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/apps", get(list::list))
        .route("/console/apps/new", get(list::new_form).post(list::create))
        .route("/console/apps/{app}", get(settings::page))
        .route("/console/apps/{app}/settings", post(settings::save))
        .route("/console/apps/{app}/connection", get(settings::connection))
        .route("/console/apps/{app}/test", post(settings::test))
        .route("/console/apps/{app}/pause", post(settings::pause))
        .route("/console/apps/{app}/resume", post(settings::resume))
        .route(
            "/console/apps/{app}/delete",
            get(settings::delete_form).post(settings::delete),
        )
        .route("/console/apps/{app}/mapping", get(mapping::page).post(mapping::add))
        .route("/console/apps/{app}/mapping/remove", post(mapping::remove))
        .route("/console/apps/{app}/mapping/move", post(mapping::move_row))
        .route("/console/apps/{app}/preview", get(mapping::preview))
        .route("/console/apps/{app}/sync", get(sync::page).post(sync::run))
        .route("/console/apps/{app}/plan", post(sync::plan))
        .route("/console/apps/{app}/sync/progress", get(sync::progress))
        .route("/console/apps/{app}/imports", get(imports::page))
        .route("/console/apps/{app}/imports/settings", post(imports::save_settings))
        .route("/console/apps/{app}/imports/run", post(imports::run))
        .route("/console/apps/{app}/runs/{run}", get(runs::page))
        .route("/console/apps/{app}/runs/{run}/progress", get(runs::progress))
        .route("/console/apps/{app}/conflicts", get(conflicts::page))
        .route("/console/apps/{app}/conflicts/{conflict}", post(conflicts::resolve))
        .route("/console/apps/{app}/dead-letters", get(dead_letters::page))
        .route("/console/apps/{app}/dead-letters/retry", post(dead_letters::retry))
        .route("/console/apps/{app}/dead-letters/discard", post(dead_letters::discard))
        .route("/console/policies", get(policies::list).post(policies::create))
        .route("/console/policies/{policy}/delete", post(policies::delete))
}

/// A time for people: `2025-01-31 14:05:09 UTC`.
fn when(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.to_string())
}

/// Microseconds since the epoch (how a connection check's time is passed between requests).
fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The title of the preset an app was created from (`Monday.com` for `monday`).
fn preset_title(app: &App) -> String {
    let name = app.preset.clone().unwrap_or_default();
    match crate::domain::mapping::preset(&name) {
        Ok(Some(preset)) => preset.title,
        _ => name,
    }
}

/// An app's state in words, with the badge class that colours it.
fn state_words(state: AppState) -> (&'static str, &'static str) {
    match state {
        AppState::Active => ("active", "ok"),
        AppState::Paused => ("paused", "warn"),
        AppState::Quarantined => ("quarantined", "bad"),
    }
}

/// The last connection check, in plain words; `waiting` while a check is still to come.
#[derive(Debug, Clone)]
struct ConnectionView {
    /// The app's id, for the fragment's URL.
    app_id: String,
    /// `ok`, `failed` or `unchecked`.
    status: &'static str,
    /// The badge class.
    class: &'static str,
    /// A short word: Connected, Not connected, Checking.
    label: &'static str,
    /// The sentence saying what the check found.
    words: String,
    /// When it was checked, for people (empty: never).
    checked: String,
    /// Whether a check is still to come (the fragment polls then).
    waiting: bool,
    /// The check time the page waits to see passed (microseconds; 0: none).
    since: i64,
}

impl ConnectionView {
    /// The connection of `app`; a check newer than `since` (microseconds) is awaited.
    fn of(app: &App, since: Option<i64>) -> Self {
        let checked_micros = app.connection_checked_at.map(micros).unwrap_or(0);
        let newer_awaited = since.is_some_and(|since| checked_micros <= since);
        let message = app.connection_message.clone().unwrap_or_default();
        let (status, class, label, words) = match app.connection_status {
            ConnectionStatus::Ok => (
                "ok",
                "ok",
                "Connected",
                "The target answered as a SCIM server and accepted the token.".to_owned(),
            ),
            ConnectionStatus::Failed => (
                "failed",
                "bad",
                "Not connected",
                if message.is_empty() {
                    "The last connection check failed.".to_owned()
                } else {
                    format!("The last connection check failed: {message}")
                },
            ),
            ConnectionStatus::Unchecked => (
                "unchecked",
                "warn",
                "Checking",
                "The connection has not been checked yet: a check is queued.".to_owned(),
            ),
        };
        let waiting = app.connection_status == ConnectionStatus::Unchecked || newer_awaited;
        let (label, words, class) = if newer_awaited && app.connection_status != ConnectionStatus::Unchecked {
            (
                "Checking",
                format!("A new check is queued. Last result: {words}"),
                "warn",
            )
        } else {
            (label, words, class)
        };
        Self {
            app_id: app.id.to_string(),
            status: if waiting { "checking" } else { status },
            class,
            label,
            words,
            checked: app.connection_checked_at.map(when).unwrap_or_default(),
            waiting,
            since: since.unwrap_or(0),
        }
    }
}

/// What every page of one app shows at its top: name, preset, state, the tabs.
#[derive(Debug, Clone)]
struct AppSummary {
    /// Its id (used in the console's URLs).
    id: String,
    /// Its name.
    name: String,
    /// The preset it was created from.
    preset: String,
    /// Its SCIM base URL.
    base_url: String,
    /// active, paused or quarantined.
    state: &'static str,
    /// The state's badge class.
    state_class: &'static str,
    /// Why it is paused or quarantined.
    state_reason: String,
    /// Whether provisioning is switched on.
    enabled: bool,
    /// The current tab: settings, mapping, sync, dead-letters, delete.
    tab: &'static str,
}

impl AppSummary {
    fn of(app: &App, tab: &'static str) -> Self {
        let (state, state_class) = state_words(app.state);
        Self {
            id: app.id.to_string(),
            name: app.name.clone(),
            preset: preset_title(app),
            base_url: app.base_url.clone(),
            state,
            state_class,
            state_reason: app.state_reason.clone().unwrap_or_default(),
            enabled: app.enabled,
            tab,
        }
    }

    /// The tabs: (path under the app, label, key).
    fn tabs(&self) -> Vec<(String, &'static str, bool)> {
        [
            ("", "Settings", "settings"),
            ("/mapping", "Attribute mapping", "mapping"),
            ("/sync", "Sync", "sync"),
            ("/imports", "Import & reconcile", "imports"),
            ("/dead-letters", "Dead letters", "dead-letters"),
            ("/delete", "Delete", "delete"),
        ]
        .into_iter()
        .map(|(path, label, key)| (format!("/console/apps/{}{path}", self.id), label, key == self.tab))
        .collect()
    }
}
