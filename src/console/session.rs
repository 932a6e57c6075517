//! Console sessions on the HTTP side: the cookies, the guard every console page passes (session,
//! one-time password, same-origin and CSRF checks on every state-changing request), and the
//! extractors that give handlers the logged-in administrator: [`Viewer`] for any role, [`Editor`]
//! for the administrator role only.

use super::{ConsoleState, Layout, PageError};
use crate::domain::Error;
use crate::domain::admin::{Principal, Role, Session};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The session cookie: its value is the session's secret.
pub const SESSION_COOKIE: &str = "provisio_session";
/// The login form's CSRF cookie (double-submitted with the form's hidden field).
pub const LOGIN_COOKIE: &str = "provisio_login";
/// A one-shot notice shown on the next page after a redirect.
pub const NOTICE_COOKIE: &str = "provisio_notice";
/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header that carries the CSRF token on script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in a request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether this request reached the hub over TLS: directly, or through a trusted proxy that says
/// so (the listener sets `X-Forwarded-Proto` for its own TLS and removes it from anyone else).
pub fn over_tls(headers: &HeaderMap, configured: bool) -> bool {
    configured
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the console's flags: HttpOnly, SameSite=Strict, Secure over TLS.
/// `max_age` of `Some(0)` deletes the cookie; `None` makes it last as long as the browser.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("provisio_invalid=; Max-Age=0"))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the guard found: the session, the cookie flags to use and the pending notice.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The live session.
    pub session: Session,
    /// Whether cookies set in answer must be `Secure`.
    pub secure: bool,
    /// A notice left by the previous request (after a redirect).
    pub notice: Option<String>,
}

fn is_fetch(headers: &HeaderMap) -> bool {
    headers.get("x-requested-with").is_some_and(|v| v == "fetch")
}

fn to_login(parts_uri: &axum::http::Uri, fetch: bool) -> Response {
    if fetch {
        return (StatusCode::UNAUTHORIZED, "the session has ended: log in again").into_response();
    }
    let next = parts_uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console/");
    let target = format!("/console/login?next={}", url_encode(next));
    Redirect::to(&target).into_response()
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// Whether a state-changing request comes from the console's own pages: its `Origin` (when the
/// browser sends one) names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Reads the CSRF token of a state-changing request from its header or its form body, and gives
/// the body back for the handler.
async fn csrf_of(request: Request, limit: usize) -> Result<(Option<String>, Request), Error> {
    if let Some(token) = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let token = token.to_owned();
        return Ok((Some(token), request));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit })?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v));
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The guard in front of every console page but login and assets. No session: to the login page.
/// A one-time password in use: to the password page. A state-changing request from another
/// origin or without the session's CSRF token: refused with 403, nothing changed.
pub async fn guard(State(console): State<ConsoleState>, request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let fetch = is_fetch(&headers);
    let secure = over_tls(&headers, console.config.secure_cookies);
    let Some(secret) = cookie(&headers, SESSION_COOKIE) else {
        return to_login(request.uri(), fetch);
    };
    let session = match console.app.auth.session(&secret).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            let mut response = to_login(request.uri(), fetch);
            response
                .headers_mut()
                .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", Some(0), secure));
            return response;
        }
        Err(e) => return PageError(e).into_response(),
    };
    let path = request.uri().path().to_owned();
    let allowed_before_change = ["/console/password", "/console/logout"];
    if session.admin.must_change_password && !allowed_before_change.contains(&path.as_str()) {
        return Redirect::to("/console/password").into_response();
    }
    let mut request = request;
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if !same_origin(&headers) {
            return PageError(Error::Forbidden(
                "this form was sent from another site: nothing was changed".into(),
            ))
            .into_response();
        }
        let (token, rebuilt) = match csrf_of(request, console.app.max_body_bytes).await {
            Ok(found) => found,
            Err(e) => return PageError(e).into_response(),
        };
        request = rebuilt;
        if !token.is_some_and(|t| same_secret(&t, &session.csrf_token)) {
            return PageError(Error::Forbidden(
                "this form is stale or did not come from the console (its security token is missing or wrong): nothing was changed; reload the page and try again".into(),
            ))
            .into_response();
        }
    }
    let notice = cookie(&headers, NOTICE_COOKIE).and_then(|v| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("n={v}"))
            .ok()
            .and_then(|mut p| p.pop())
            .map(|(_, text)| text)
    });
    let had_notice = notice.is_some();
    request.extensions_mut().insert(Visit {
        session,
        secure,
        notice,
    });
    let mut response = next.run(request).await;
    let sets_notice = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(NOTICE_COOKIE.as_bytes()));
    if had_notice && !sets_notice {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(NOTICE_COOKIE, "", "/console", Some(0), secure),
        );
    }
    response
}

/// A redirect (303) that leaves `notice` for the next page to show.
pub fn redirect_with_notice(to: &str, notice: &str, visit: &Visit) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(NOTICE_COOKIE, &url_encode(notice), "/console", Some(60), visit.secure),
    );
    response
}

/// The logged-in administrator of a console request, with any role.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// What the guard found.
    pub visit: Visit,
    /// The console's shared state.
    pub console: ConsoleState,
}

impl Viewer {
    /// Who acts, for the change log.
    pub fn principal(&self) -> Principal {
        Principal::of_admin(&self.visit.session.admin)
    }

    /// The page frame for a page titled `title` under the menu entry `nav`.
    pub fn layout(&self, title: impl Into<String>, nav: &'static str) -> Layout {
        let session = &self.visit.session;
        Layout {
            title: title.into(),
            nav,
            username: session.admin.username.clone(),
            role: session.admin.role.as_str(),
            can_write: session.admin.role == Role::Administrator,
            csrf: session.csrf_token.clone(),
            notice: self.visit.notice.clone(),
            css: super::assets::Assets::url(&self.console.assets.css),
            js: super::assets::Assets::url(&self.console.assets.js),
            icon: super::assets::Assets::url(&self.console.assets.icon),
        }
    }

    /// A redirect (303) that leaves `notice` for the next page.
    pub fn redirect(&self, to: &str, notice: &str) -> Response {
        redirect_with_notice(to, notice, &self.visit)
    }
}

impl FromRequestParts<ConsoleState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let visit = parts
            .extensions
            .get::<Visit>()
            .cloned()
            .ok_or_else(|| PageError(Error::Unauthenticated("log in first".into())))?;
        Ok(Viewer {
            visit,
            console: state.clone(),
        })
    }
}

/// The logged-in administrator of a console request with the administrator role: handlers that
/// change anything take this, so an auditor gets a 403 page and nothing changes.
#[derive(Debug, Clone)]
pub struct Editor(pub Viewer);

impl std::ops::Deref for Editor {
    type Target = Viewer;
    fn deref(&self) -> &Viewer {
        &self.0
    }
}

impl FromRequestParts<ConsoleState> for Editor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if viewer.visit.session.admin.role != Role::Administrator {
            return Err(PageError(Error::read_only()));
        }
        Ok(Editor(viewer))
    }
}
