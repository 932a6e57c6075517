//! Console pages about who reaches the hub and what it reads: identity providers (SCIM tokens
//! for IdPs pushing into `/scim/v2`), administrator accounts and the audit log (these three for
//! the administrator role only: they show credentials and account changes), LDAP sources and
//! the API documentation (any role reads them).

mod admins;
mod api_docs;
mod audit;
mod identity;
mod ldap;

use super::ConsoleState;
use axum::Router;
use axum::routing::{get, post};

/// The routes of these pages.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route(
            "/console/identity-providers",
            get(identity::list).post(identity::create),
        )
        .route("/console/identity-providers/{id}/revoke", post(identity::revoke))
        .route("/console/ldap-sources", get(ldap::list).post(ldap::create))
        .route("/console/ldap-sources/{id}/runs", post(ldap::start))
        .route("/console/ldap-sources/{id}/delete", post(ldap::delete))
        .route("/console/admins", get(admins::list).post(admins::create))
        .route("/console/admins/{username}/password", post(admins::reset_password))
        .route("/console/admins/{username}/disable", post(admins::disable))
        .route("/console/admins/{username}/enable", post(admins::enable))
        .route("/console/admins/{username}/role", post(admins::change_role))
        .route("/console/audit", get(audit::log))
        .route("/console/api-docs", get(api_docs::page))
}
