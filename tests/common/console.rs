//! Console test helpers: administrator accounts with known passwords, logging a browser in, and
//! a cookie-keeping HTTP client that posts forms like a browser (for security tests that must
//! send what a browser would not).

use super::TestHub;
use super::browser::Browser;
use provisio::domain::admin::{Principal, Role};
use provisio::service::AuthService;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use secrecy::SecretString;

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates an administrator account with `role` and the password [`PASSWORD`] (the one-time
/// password already replaced), straight in the hub's store.
pub async fn account(hub: &TestHub, username: &str, role: Role) {
    let auth = AuthService::new(hub.store.clone());
    let created = auth
        .create_admin(username, role, &Principal::system())
        .await
        .expect("create the administrator");
    auth.change_password(
        username,
        &created.password,
        &SecretString::from(PASSWORD.to_owned()),
        None,
    )
    .await
    .expect("set the test password");
}

/// Logs a browser in through the login page and waits for the console to show who is logged in.
pub async fn log_in(browser: &Browser, hub: &TestHub, username: &str, password: &str) {
    browser.goto(&format!("{}/console/login", hub.base_url)).await;
    browser.fill("#username", username).await;
    browser.fill("#password", password).await;
    browser.click("#login").await;
    browser.wait_for_text("#whoami", username).await;
}

/// A console visitor without a browser: keeps the cookies the hub sets, reads the CSRF token
/// from pages, and posts forms.
pub struct ConsoleClient {
    /// The hub's base URL.
    pub base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    /// The session's CSRF token, read from the last page that carried one.
    pub csrf: String,
    /// The `Set-Cookie` headers of the last answer, as sent.
    pub last_set_cookies: Vec<String>,
    /// The `Set-Cookie` headers of the answer to the last [`ConsoleClient::log_in`]'s form post,
    /// as sent (before `log_in` loads a page with the new session).
    pub login_cookies: Vec<String>,
}

/// The value of attribute `attr` on the first tag of HTML `html` that contains `marker`.
pub fn attribute_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let key = format!("{attr}=\"");
    let from = tag.find(&key)? + key.len();
    let to = from + tag[from..].find('"')?;
    Some(tag[from..to].to_owned())
}

impl ConsoleClient {
    /// A client that follows no redirects by itself (tests look at them).
    pub fn new(hub: &TestHub) -> Self {
        Self {
            base: hub.base_url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Vec::new(),
            csrf: String::new(),
            last_set_cookies: Vec::new(),
            login_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        self.last_set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for set in &self.last_set_cookies {
            let first = set.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(k, _)| k != name);
            let deleted = set.contains("Max-Age=0");
            if !deleted {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// GETs a path; returns status, `Location` and body. Remembers the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> (StatusCode, Option<String>, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.expect("body");
        if let Some(token) = attribute_after(&body, "data-csrf=", "data-csrf") {
            self.csrf = token;
        }
        (status, location, body)
    }

    /// POSTs a form (`fields` as given, nothing added); returns status, `Location` and body.
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).expect("form encoding"));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let response = request.send().await.expect("POST");
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, location, response.text().await.expect("body"))
    }

    /// POSTs a form with the session's CSRF token added, as the console's own forms do.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("_csrf", &csrf));
        let origin = self.base.clone();
        self.post_raw(path, &all, Some(&origin)).await
    }

    /// Logs in through the login form; returns the status and `Location` of the answer.
    pub async fn log_in(&mut self, username: &str, password: &str) -> (StatusCode, Option<String>, String) {
        let (status, _, page) = self.get("/console/login").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let token = attribute_after(&page, "name=\"_csrf\"", "value").expect("the login form's token");
        let origin = self.base.clone();
        let answer = self
            .post_raw(
                "/console/login",
                &[("username", username), ("password", password), ("_csrf", &token)],
                Some(&origin),
            )
            .await;
        self.login_cookies = self.last_set_cookies.clone();
        if answer.0 == StatusCode::SEE_OTHER {
            // Load a page to learn the session's CSRF token.
            let (status, _, page) = self.get("/console/password").await;
            assert_eq!(status, StatusCode::OK, "{page}");
        }
        answer
    }

    /// The value of a cookie the client holds.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Asserts that `text` contains none of `secrets`.
pub fn assert_no_secret(page: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !secret.is_empty() && !text.contains(secret),
            "{page} shows a secret ({}...)",
            secret.chars().take(6).collect::<String>()
        );
    }
}
