//! The web admin console: server-rendered pages (askama templates compiled into the binary) over
//! the same services as the REST API, under `/console`. Pages work without scripts; the small
//! script in `assets/console.js` only adds confirmations and partial updates. Every page passes
//! the session guard (`session.rs`); every state-changing request needs the session's CSRF
//! token; handlers that change anything take [`Editor`], so an auditor changes nothing.

mod access;
mod apps;
mod assets;
mod directory;
mod login;
mod reports;
pub mod session;

pub use assets::Assets;
pub use session::{Editor, Viewer};

use crate::api::HubState;
use crate::domain::Error;
use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The console's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleConfig {
    /// Whether cookies are always `Secure` (the hub is served behind a TLS proxy).
    pub secure_cookies: bool,
}

/// What console handlers reach: the API's services, the compiled-in assets and the settings.
#[derive(Clone)]
pub struct ConsoleState {
    /// The services.
    pub app: HubState,
    /// The static files.
    pub assets: Arc<Assets>,
    /// The settings.
    pub config: ConsoleConfig,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The frame every page shares: title, menu, who is logged in, the CSRF token, a notice.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page title.
    pub title: String,
    /// The menu entry the page belongs to.
    pub nav: &'static str,
    /// The administrator logged in.
    pub username: String,
    /// Their role.
    pub role: &'static str,
    /// Whether they may change anything (forms and buttons that write are shown only then).
    pub can_write: bool,
    /// The session's CSRF token, for every form.
    pub csrf: String,
    /// A notice left by the previous request.
    pub notice: Option<String>,
    /// The style sheet's URL.
    pub css: String,
    /// The script's URL.
    pub js: String,
    /// The icon's URL.
    pub icon: String,
}

/// One menu entry: where it leads, its label, its key.
pub const MENU: &[(&str, &str, &str)] = &[
    ("/console/", "Dashboard", "dashboard"),
    ("/console/users", "Users", "users"),
    ("/console/groups", "Groups", "groups"),
    ("/console/attributes", "Attributes", "attributes"),
    ("/console/apps", "Apps", "apps"),
    ("/console/policies", "Policies", "policies"),
    ("/console/reports", "Provisioning Reports", "reports"),
    ("/console/identity-providers", "Identity providers", "identity"),
    ("/console/ldap-sources", "LDAP sources", "ldap"),
    ("/console/admins", "Administrators", "admins"),
    ("/console/audit", "Audit log", "audit"),
    ("/console/api-docs", "API", "api"),
];

impl Layout {
    /// The menu entries with whether each is the current one.
    pub fn menu(&self) -> Vec<(&'static str, &'static str, bool)> {
        MENU.iter()
            .filter(|(_, _, key)| self.can_write || !matches!(*key, "admins" | "audit" | "identity"))
            .map(|(href, label, key)| (*href, *label, *key == self.nav))
            .collect()
    }
}

/// Validation messages of a form, by field, shown beside each field.
#[derive(Debug, Clone, Default)]
pub struct FormErrors(BTreeMap<String, String>);

impl FormErrors {
    /// The message for `field`, or an empty text.
    pub fn of(&self, field: &str) -> &str {
        self.0.get(field).map(String::as_str).unwrap_or("")
    }

    /// Whether there is any message.
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// Adds a message for `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.insert(field.into(), message.into());
    }

    /// The errors a service error stands for when it is about one field of the form (validation
    /// failures and clashes); any other error is given back.
    pub fn from_error(error: Error, default_field: &str) -> Result<Self, Error> {
        let mut errors = Self::default();
        match error {
            Error::Validation { field, message } => errors.add(field, message),
            Error::Conflict { field, message } => {
                errors.add(field.unwrap_or_else(|| default_field.to_owned()), message)
            }
            Error::NotFound { kind, id } if !default_field.is_empty() => {
                errors.add(default_field, format!("{kind} '{id}' was not found"))
            }
            other => return Err(other),
        }
        Ok(errors)
    }

    /// All messages, for a summary at the top of a form.
    pub fn all(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

/// Renders a template as an HTML page.
pub fn render(template: &impl Template) -> Response {
    render_status(StatusCode::OK, template)
}

/// Renders a template as an HTML page with `status` (forms with errors answer 422).
pub fn render_status(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError(Error::Storage(format!("a console page failed to render: {e}"))).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    message: String,
}

/// An error answered as a console page, with the status the API would give (the one mapping in
/// `api::error`).
#[derive(Debug)]
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(value: Error) -> Self {
        PageError(value)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.0, Error::Unauthenticated(_)) {
            return Redirect::to("/console/login").into_response();
        }
        let status = crate::api::error::status_of(&self.0);
        let message = crate::api::error::server_error_message(&self.0, status);
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_owned(),
            message,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        };
        crate::api::error::mark_storage_failure(&self.0, &mut response);
        response
    }
}

/// The console's Content-Security-Policy: only its own scripts, styles and images; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The console's routes: `/` and `/console` lead to the dashboard; `/console/login` and the
/// assets are open; everything else passes the session guard.
pub fn router(app: HubState, config: ConsoleConfig) -> Router {
    let assets = Arc::new(Assets::load());
    let metrics = middleware::from_fn_with_state(app.clone(), crate::api::record_metrics);
    let state = ConsoleState {
        app,
        assets: assets.clone(),
        config,
    };
    let guarded = Router::new()
        .merge(reports::routes())
        .merge(directory::routes())
        .merge(apps::routes())
        .merge(access::routes())
        .route("/console/logout", axum::routing::post(login::logout))
        .route(
            "/console/password",
            get(login::password_form).post(login::change_password),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), session::guard));
    let open = Router::new()
        .route("/console/login", get(login::login_form).post(login::login))
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }));
    let assets_router = Router::new()
        .route("/console/assets/{name}", get(assets::serve))
        .with_state(assets);
    guarded
        .merge(open)
        .with_state(state)
        .merge(assets_router)
        // The same request metrics, store-health tracking and engine wake-up as the API.
        .layer(metrics)
        .layer(middleware::from_fn(security_headers))
}

/// Whether `next` is a console path a login may lead back to (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with("/console/") && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}
