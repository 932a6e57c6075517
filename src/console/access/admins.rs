//! Administrator accounts: list (role and state), create with a one-time password, reset a
//! password (a new one-time password), disable and enable, change role. One-time passwords are
//! shown once, on the answer page; refusals (your own account, the last administrator) are shown
//! on the list.

use crate::console::reports::format::when;
use crate::console::{Editor, FormErrors, Layout, PageError, render, render_status};
use crate::domain::Error;
use crate::domain::admin::{AdminAccount, Role};
use crate::service::admins::AccountWithPassword;
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::Deserialize;

/// One account's line.
struct AdminRow {
    username: String,
    role: &'static str,
    state: &'static str,
    state_class: &'static str,
    state_note: String,
    created: String,
    must_change: bool,
    is_me: bool,
}

impl AdminRow {
    fn new(a: &AdminAccount, me: &str) -> Self {
        let now = crate::domain::now();
        let (state, state_class, state_note) = match (a.disabled_at, a.locked_until) {
            (Some(at), _) => ("disabled", "bad", format!("since {}", when(at))),
            (None, Some(until)) if until > now => ("locked", "warn", format!("until {}", when(until))),
            _ => ("active", "ok", String::new()),
        };
        Self {
            username: a.username.clone(),
            role: a.role.as_str(),
            state,
            state_class,
            state_note,
            created: when(a.created_at),
            must_change: a.must_change_password,
            is_me: a.username.eq_ignore_ascii_case(me),
        }
    }
}

#[derive(Template)]
#[template(path = "access/admins.html")]
struct AdminsPage {
    layout: Layout,
    admins: Vec<AdminRow>,
    /// A refused action, in words.
    error: String,
    /// The create form as typed, with its errors.
    username: String,
    role: String,
    errors: FormErrors,
    /// After a creation or reset: whose one-time password, what happened, and the password.
    issued: Option<(String, &'static str, String)>,
}

impl AdminsPage {
    fn roles(&self) -> [(&'static str, &'static str); 2] {
        [
            ("administrator", "Administrator (changes everything)"),
            ("auditor", "Auditor (reads, changes nothing, sees no secret)"),
        ]
    }
}

async fn page(editor: &Editor) -> Result<AdminsPage, PageError> {
    let me = editor.visit.session.admin.username.clone();
    let admins = editor.console.app.auth.list_admins().await?;
    Ok(AdminsPage {
        layout: editor.layout("Administrators", "admins"),
        admins: admins.iter().map(|a| AdminRow::new(a, &me)).collect(),
        error: String::new(),
        username: String::new(),
        role: "auditor".to_owned(),
        errors: FormErrors::default(),
        issued: None,
    })
}

/// The list with a refused action's reason, answered with the error's status.
async fn refused(editor: &Editor, error: Error) -> Result<Response, PageError> {
    if !matches!(
        error,
        Error::Conflict { .. } | Error::Validation { .. } | Error::NotFound { .. }
    ) {
        return Err(PageError(error));
    }
    let status = crate::api::error::status_of(&error);
    let mut page = page(editor).await?;
    page.error = match error {
        Error::Conflict { message, .. } | Error::Validation { message, .. } => message,
        other => other.to_string(),
    };
    Ok(render_status(status, &page))
}

fn issued(done: AccountWithPassword, what: &'static str) -> Option<(String, &'static str, String)> {
    Some((done.account.username, what, done.password.expose_secret().to_owned()))
}

/// `GET /console/admins`.
pub async fn list(editor: Editor) -> Result<Response, PageError> {
    Ok(render(&page(&editor).await?))
}

/// The create form.
#[derive(Deserialize)]
pub struct NewAdmin {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// `POST /console/admins`: creates an account and shows its one-time password once.
pub async fn create(editor: Editor, Form(form): Form<NewAdmin>) -> Result<Response, PageError> {
    let created = match Role::parse(&form.role) {
        Ok(role) => {
            editor
                .console
                .app
                .auth
                .create_admin(&form.username, role, &editor.principal())
                .await
        }
        Err(e) => Err(e),
    };
    let mut page = page(&editor).await?;
    match created {
        Ok(done) => {
            page.issued = issued(done, "created");
            Ok(render_status(StatusCode::CREATED, &page))
        }
        Err(e) => {
            page.errors = FormErrors::from_error(e, "username")?;
            page.username = form.username;
            page.role = form.role;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// `POST /console/admins/{username}/password`: a new one-time password, shown once; their
/// sessions end.
pub async fn reset_password(editor: Editor, Path(username): Path<String>) -> Result<Response, PageError> {
    match editor
        .console
        .app
        .auth
        .reset_password(&username, &editor.principal())
        .await
    {
        Ok(done) => {
            let mut page = page(&editor).await?;
            page.issued = issued(done, "reset");
            Ok(render(&page))
        }
        Err(e) => refused(&editor, e).await,
    }
}

async fn set_disabled(editor: Editor, username: String, disabled: bool) -> Result<Response, PageError> {
    match editor
        .console
        .app
        .auth
        .set_disabled(&username, disabled, &editor.principal())
        .await
    {
        Ok(account) => {
            let notice = if disabled {
                format!(
                    "{} was disabled: their sessions ended and their API tokens stopped.",
                    account.username
                )
            } else {
                format!("{} was enabled and may log in again.", account.username)
            };
            Ok(editor.redirect("/console/admins", &notice))
        }
        Err(e) => refused(&editor, e).await,
    }
}

/// `POST /console/admins/{username}/disable`.
pub async fn disable(editor: Editor, Path(username): Path<String>) -> Result<Response, PageError> {
    set_disabled(editor, username, true).await
}

/// `POST /console/admins/{username}/enable`.
pub async fn enable(editor: Editor, Path(username): Path<String>) -> Result<Response, PageError> {
    set_disabled(editor, username, false).await
}

/// The role form.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /console/admins/{username}/role`.
pub async fn change_role(
    editor: Editor,
    Path(username): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let changed = match Role::parse(&form.role) {
        Ok(role) => {
            editor
                .console
                .app
                .auth
                .set_role(&username, role, &editor.principal())
                .await
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok(account) => Ok(editor.redirect(
            "/console/admins",
            &format!("{} is now {}.", account.username, account.role.as_str()),
        )),
        Err(e) => refused(&editor, e).await,
    }
}
