//! The HTTP layer: the admin REST API under `/api/v1`, its OpenAPI document, health, readiness
//! and metrics. Handlers are thin: they parse, call a service, and map the result.

mod admins;
mod apps;
mod attributes;
mod auth;
mod changes;
mod config_doc;
pub mod error;
mod extract;
mod groups;
mod ldap;
mod mapping;
pub mod rate_limit;
mod reports;
mod runs;
pub mod scim;
mod users;

pub use apps::{Affected, QueuedJob, SyncAnswer, SyncRequest};
pub use auth::{IssuedTokenBody, LoginRequest, NewToken};
pub use error::{ErrorBody, ErrorDetail};
pub use extract::ClientAddr;
pub use groups::MembershipChange;
pub use runs::{ImportRequest, ReconcileRequest};

use crate::domain::Error;
use crate::outbound::Wake;
use crate::secrets::SecretKey;
use crate::service::scim::ScimLimits;
use crate::service::{AppService, AuthService, DirectoryService, ReportService, ScimService};
use crate::store::SqlStore;
use crate::telemetry::Metrics;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler can reach: the services over the store, and the metrics.
#[derive(Clone)]
pub struct HubState {
    /// Directory operations.
    pub directory: DirectoryService<SqlStore>,
    /// Authentication.
    pub auth: AuthService<SqlStore>,
    /// Apps, policies and provisioning.
    pub apps: AppService<SqlStore>,
    /// The provisioning report.
    pub reports: ReportService<SqlStore>,
    /// The SCIM server that identity providers push into.
    pub scim: ScimService<SqlStore>,
    /// LDAP and Active Directory sources.
    pub ldap: crate::service::ldap::LdapService<SqlStore>,
    /// Configuration as code: export, plan and apply.
    pub config: crate::service::config_doc::ConfigService<SqlStore>,
    /// Wakes the engine after local changes.
    pub wake: Wake,
    /// The store, for readiness checks.
    pub store: SqlStore,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The request rate limit per bearer token (off unless the server sets one).
    pub rate_limiter: Arc<rate_limit::RateLimiter>,
}

impl HubState {
    /// Builds the state over a migrated store.
    pub fn new(store: SqlStore, key: SecretKey, wake: Wake, metrics: Arc<Metrics>, max_body_bytes: usize) -> Self {
        let directory = DirectoryService::new(store.clone());
        Self {
            scim: ScimService::with_directory(directory.clone(), store.clone(), ScimLimits::default()),
            ldap: crate::service::ldap::LdapService::new(store.clone(), key.clone(), directory.clone()),
            config: crate::service::config_doc::ConfigService::new(store.clone(), key.clone(), directory.clone()),
            apps: AppService::new(store.clone(), key).with_directory(directory.clone()),
            directory,
            auth: AuthService::new(store.clone()),
            reports: ReportService::new(store.clone()),
            wake,
            store,
            metrics,
            max_body_bytes,
            rate_limiter: Arc::new(rate_limit::RateLimiter::new(rate_limit::RateLimit::OFF)),
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Provisio admin API", description = "Directory, apps and provisioning of a Provisio hub."),
    modifiers(&BearerAuth),
    tags((name = "users"), (name = "groups"), (name = "attributes"), (name = "auth"), (name = "changes"), (name = "apps"), (name = "policies"), (name = "reports"), (name = "admins"), (name = "ldap"))
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<HubState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user, users::update_user, users::delete_user))
        .routes(routes!(users::deactivate_user))
        .routes(routes!(users::activate_user))
        .routes(routes!(users::user_groups))
        .routes(routes!(groups::create_group, groups::list_groups))
        .routes(routes!(groups::get_group, groups::rename_group, groups::delete_group))
        .routes(routes!(groups::list_members))
        .routes(routes!(groups::add_member, groups::remove_member))
        .routes(routes!(attributes::create_attribute, attributes::list_attributes))
        .routes(routes!(
            attributes::get_attribute,
            attributes::update_attribute,
            attributes::delete_attribute
        ))
        .routes(routes!(auth::login))
        .routes(routes!(admins::create_admin, admins::list_admins))
        .routes(routes!(admins::change_admin))
        .routes(routes!(admins::reset_password))
        .routes(routes!(admins::audit_log))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::create_scim_token, auth::list_scim_tokens))
        .routes(routes!(auth::revoke_scim_token))
        .routes(routes!(changes::list_changes))
        .routes(routes!(apps::create_app, apps::list_apps))
        .routes(routes!(apps::get_app, apps::update_app, apps::delete_app))
        .routes(routes!(apps::test_app))
        .routes(routes!(mapping::mapping_rows))
        .routes(routes!(mapping::set_rule, mapping::remove_rule))
        .routes(routes!(apps::preview))
        .routes(routes!(apps::accounts))
        .routes(routes!(apps::provision))
        .routes(routes!(apps::sync))
        .routes(routes!(apps::sync_run))
        .routes(routes!(apps::job))
        .routes(routes!(apps::list_presets))
        .routes(routes!(apps::create_policy, apps::list_policies))
        .routes(routes!(apps::delete_policy))
        .routes(routes!(apps::pause))
        .routes(routes!(apps::resume))
        .routes(routes!(apps::dead_letters, apps::discard_dead_letters))
        .routes(routes!(apps::retry_dead_letters))
        .routes(routes!(runs::start_import))
        .routes(routes!(runs::start_reconcile))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::run_items))
        .routes(routes!(runs::list_conflicts))
        .routes(routes!(runs::resolve_conflict))
        .routes(routes!(runs::schedule))
        .routes(routes!(ldap::create_ldap_source, ldap::list_ldap_sources))
        .routes(routes!(
            ldap::get_ldap_source,
            ldap::update_ldap_source,
            ldap::delete_ldap_source
        ))
        .routes(routes!(ldap::start_ldap_sync))
        .routes(routes!(ldap::test_ldap_source))
        .routes(routes!(ldap::list_ldap_runs))
        .routes(routes!(ldap::get_ldap_run))
        .routes(routes!(ldap::ldap_run_reports))
        .routes(routes!(reports::search))
        .routes(routes!(reports::timeline))
        .routes(routes!(config_doc::export_config))
        .routes(routes!(config_doc::plan_config))
        .routes(routes!(config_doc::apply_config))
}

/// The OpenAPI document of the admin API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The whole HTTP application.
pub fn router(state: HubState) -> Router {
    let (api, spec) = api_routes().split_for_parts();
    let spec = Arc::new(spec);
    let limit = state.max_body_bytes;
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(spec.as_ref().clone()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/scim/v2", scim::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit_per_token,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        // Failed requests are logged where their error is mapped (once per storage outage for a
        // store that refuses work), not again per response here.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)))
        .with_state(state)
}

/// Ready when the store answers and takes writes: a write transaction is committed on every call,
/// and during a storage outage the hub stays not ready until writes have gone without a failure
/// for a short while (so a lucky small write on a full disk does not flap readiness).
async fn readyz(State(state): State<HubState>) -> Response {
    let health = &state.metrics.store;
    match state.store.probe_write().await {
        Ok(()) => health.succeeded(),
        Err(e) => {
            health.error(&e);
            if e.store_fault().is_none() {
                tracing::warn!(error = %e, "readiness check failed");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the database failed; the server log has the details",
                )
                    .into_response();
            }
        }
    }
    match health.outage() {
        None => "ready".into_response(),
        Some(fault) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, error::STORE_RETRY_AFTER_SECS.to_string())],
            format!("not ready: {}", fault.message()),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HubState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    error::ApiError(Error::NotFound {
        kind: "route",
        id: request.uri().path().to_owned(),
    })
    .into_response()
}

/// Request metrics, store health from the errors answered, and the engine woken after a
/// successful change; shared by the API and the console.
pub(crate) async fn record_metrics(State(state): State<HubState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let mutating = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let response = next.run(request).await;
    if mutating && response.status().is_success() {
        state.wake.changed();
        if !route.ends_with(".search") {
            // A mutating request succeeded, so its writes were committed.
            state.metrics.store.succeeded();
        }
    }
    if let Some(failure) = response.extensions().get::<error::StorageFailure>() {
        match failure.fault {
            Some(fault) => state.metrics.store.failed(fault, &failure.detail),
            None => state.metrics.store.error(&Error::Storage(failure.detail.clone())),
        }
    }
    state.metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
