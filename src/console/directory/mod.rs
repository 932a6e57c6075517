//! Console pages: directory (being built).

use super::ConsoleState;
use axum::Router;

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
}
