//! Log-in, log-out and the password page. The login form is protected against cross-site posts
//! by a double-submitted token (a cookie and a hidden field); failures are throttled and audited
//! by `AuthService::check_password`.

use super::session::{LOGIN_COOKIE, SESSION_COOKIE, Viewer, cookie, over_tls, same_secret, set_cookie};
use super::{ConsoleState, FormErrors, Layout, PageError, render, render_status, safe_next};
use crate::api::ClientAddr;
use crate::domain::Error;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    icon: String,
    csrf: String,
    next: String,
    username: String,
    error: String,
}

/// Where to go after logging in.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

fn secure(state: &ConsoleState, headers: &HeaderMap) -> bool {
    over_tls(headers, state.config.secure_cookies)
}

fn login_page(state: &ConsoleState, headers: &HeaderMap, status: StatusCode, page: LoginPage) -> Response {
    let mut response = render_status(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &page.csrf, "/console/login", None, secure(state, headers)),
    );
    response
}

fn new_login_page(state: &ConsoleState, next: String, username: String, error: String) -> LoginPage {
    let mut token = [0u8; 24];
    rand::fill(&mut token[..]);
    LoginPage {
        css: super::Assets::url(&state.assets.css),
        icon: super::Assets::url(&state.assets.icon),
        csrf: token.iter().map(|b| format!("{b:02x}")).collect(),
        next,
        username,
        error,
    }
}

/// `GET /console/login`.
pub async fn login_form(State(state): State<ConsoleState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let page = new_login_page(&state, safe_next(q.next.as_deref()), String::new(), String::new());
    login_page(&state, &headers, StatusCode::OK, page)
}

/// `POST /console/login`: checks the password and starts a session.
pub async fn login(
    State(state): State<ConsoleState>,
    ClientAddr(remote): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, &form.csrf) {
        let page = new_login_page(
            &state,
            next,
            form.username,
            "The login form had expired or did not come from this console. Please try again.".into(),
        );
        return login_page(&state, &headers, StatusCode::FORBIDDEN, page);
    }
    let checked = state
        .app
        .auth
        .check_password(form.username.trim(), &form.password, remote.as_deref())
        .await;
    let admin = match checked {
        Ok(admin) => admin,
        Err(e) => {
            let status = crate::api::error::status_of(&e);
            let message = match e {
                Error::Unauthenticated(_) => "Wrong username or password.".to_owned(),
                Error::AccountLocked { .. } | Error::Forbidden(_) => format!("{e}."),
                other => return PageError(other).into_response(),
            };
            let page = new_login_page(&state, next, form.username, message);
            return login_page(&state, &headers, status, page);
        }
    };
    let started = match state.app.auth.start_session(&admin, remote.as_deref()).await {
        Ok(started) => started,
        Err(e) => return PageError(e).into_response(),
    };
    let secure = secure(&state, &headers);
    let target = if admin.must_change_password {
        "/console/password".to_owned()
    } else {
        next
    };
    let mut response = Redirect::to(&target).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, started.secret.expose_secret(), "/", None, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/console/login", Some(0), secure),
    );
    response
}

/// `POST /console/logout`: ends the session.
pub async fn logout(viewer: Viewer, ClientAddr(remote): ClientAddr, headers: HeaderMap) -> Result<Response, PageError> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        viewer.console.app.auth.end_session(&secret, remote.as_deref()).await?;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", Some(0), viewer.visit.secure),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    must_change: bool,
    errors: FormErrors,
}

/// `GET /console/password`.
pub async fn password_form(viewer: Viewer) -> Response {
    render(&PasswordPage {
        layout: viewer.layout("Change password", ""),
        must_change: viewer.visit.session.admin.must_change_password,
        errors: FormErrors::default(),
    })
}

/// The password form's fields.
#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
    confirm_password: SecretString,
}

/// `POST /console/password`: checks the current password and sets the new one.
pub async fn change_password(
    viewer: Viewer,
    ClientAddr(remote): ClientAddr,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    if form.new_password.expose_secret() != form.confirm_password.expose_secret() {
        errors.add("confirm_password", "does not match the new password");
    } else {
        let changed = viewer
            .console
            .app
            .auth
            .change_password(
                &viewer.visit.session.admin.username,
                &form.current_password,
                &form.new_password,
                remote.as_deref(),
            )
            .await;
        match changed {
            Ok(_) => return Ok(viewer.redirect("/console/", "Your password was changed.")),
            Err(e) => errors = FormErrors::from_error(e, "current_password")?,
        }
    }
    Ok(render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &PasswordPage {
            layout: viewer.layout("Change password", ""),
            must_change: viewer.visit.session.admin.must_change_password,
            errors,
        },
    ))
}
