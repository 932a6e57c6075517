//! The users list (search as you type, cursor paging, per-row actions), the user picker fragment
//! of the group page, and adding a user.

use super::form::UserForm;
use super::{changed, text};
use crate::console::session::url_encode;
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::user::{User, UserSource};
use crate::store::UserQuery;
use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// Users per page of the list.
const PAGE_SIZE: u32 = 25;
/// Users the picker offers.
const PICKER_SIZE: u32 = 8;

/// The list's query: search text and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// One row of the list.
pub struct UserRow {
    /// The user's id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Whether active.
    pub active: bool,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        let name = user.display_name.clone().or_else(|| {
            let parts: Vec<&str> = [&user.given_name, &user.family_name]
                .iter()
                .filter_map(|p| p.as_deref())
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        UserRow {
            id: user.id.to_string(),
            username: user.username.clone(),
            display_name: name.unwrap_or_default(),
            email: text(&user.email),
            active: user.active,
        }
    }
}

#[derive(Template)]
#[template(path = "directory/users.html")]
struct UsersPage {
    layout: Layout,
    q: String,
    users: Vec<UserRow>,
    first: String,
    next: String,
}

#[derive(Template)]
#[template(path = "directory/user_rows.html")]
struct UserRows {
    layout: Layout,
    q: String,
    users: Vec<UserRow>,
    first: String,
    next: String,
}

/// The list's links to its first and next pages (empty when there is none).
fn pager(query: &ListQuery, next_cursor: Option<String>) -> (String, String) {
    let q = url_encode(query.q.as_deref().unwrap_or(""));
    let first = match query.cursor.as_deref() {
        Some(c) if !c.is_empty() => format!("/console/users?q={q}"),
        _ => String::new(),
    };
    let next = next_cursor
        .map(|c| format!("/console/users?q={q}&cursor={}", url_encode(&c)))
        .unwrap_or_default();
    (first, next)
}

async fn page_of(viewer: &Viewer, query: &ListQuery, limit: u32) -> Result<(Vec<UserRow>, Option<String>), PageError> {
    let page = viewer
        .console
        .app
        .directory
        .list_users(&UserQuery {
            search: query.q.clone().filter(|q| !q.trim().is_empty()),
            cursor: query.cursor.clone().filter(|c| !c.is_empty()),
            limit,
            ..Default::default()
        })
        .await?;
    Ok((page.items.iter().map(UserRow::from).collect(), page.next_cursor))
}

/// `GET /console/users`: the list, searched by `q`, from `cursor`.
pub async fn list(viewer: Viewer, Query(query): Query<ListQuery>) -> Result<Response, PageError> {
    let (users, next_cursor) = page_of(&viewer, &query, PAGE_SIZE).await?;
    let (first, next) = pager(&query, next_cursor);
    Ok(render(&UsersPage {
        layout: viewer.layout("Users", "users"),
        q: query.q.unwrap_or_default(),
        users,
        first,
        next,
    }))
}

/// `GET /console/users/rows`: the list's table alone, for search as you type.
pub async fn rows(viewer: Viewer, Query(query): Query<ListQuery>) -> Result<Response, PageError> {
    let (users, next_cursor) = page_of(&viewer, &query, PAGE_SIZE).await?;
    let (first, next) = pager(&query, next_cursor);
    Ok(render(&UserRows {
        layout: viewer.layout("Users", "users"),
        q: query.q.unwrap_or_default(),
        users,
        first,
        next,
    }))
}

/// The picker's query: what was typed in the username field (or `q`).
#[derive(Debug, Default, Deserialize)]
pub struct PickerQuery {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "directory/picker.html")]
struct Picker {
    typed: String,
    users: Vec<UserRow>,
}

/// `GET /console/users/picker?username=TEXT`: matching users as buttons that fill the group
/// page's username field.
pub async fn picker(viewer: Viewer, Query(query): Query<PickerQuery>) -> Result<Response, PageError> {
    let typed = query.username.or(query.q).unwrap_or_default().trim().to_owned();
    let users = if typed.is_empty() {
        Vec::new()
    } else {
        let list = ListQuery {
            q: Some(typed.clone()),
            cursor: None,
        };
        page_of(&viewer, &list, PICKER_SIZE).await?.0
    };
    Ok(render(&Picker { typed, users }))
}

#[derive(Template)]
#[template(path = "directory/user_new.html")]
struct NewUserPage {
    layout: Layout,
    form: UserForm,
    errors: FormErrors,
}

/// `GET /console/users/new`: the add-user form.
pub async fn new_form(editor: Editor) -> Result<Response, PageError> {
    let definitions = editor.console.app.directory.list_attributes().await?;
    Ok(render(&NewUserPage {
        layout: editor.layout("Add user", "users"),
        form: UserForm::blank(&definitions),
        errors: FormErrors::default(),
    }))
}

/// `POST /console/users`: creates a user, or shows the form again with the problem beside its
/// field and what was typed.
pub async fn create(editor: Editor, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let definitions = directory.list_attributes().await?;
    let form = UserForm::from_pairs(pairs, &definitions);
    let created = directory
        .create_user(
            form.to_new_user(&definitions),
            UserSource::Local,
            &editor.principal().actor,
        )
        .await;
    match created {
        Ok(user) => {
            changed(&editor);
            Ok(editor.redirect(
                &format!("/console/users/{}", user.id),
                &format!("User {} was added.", user.username),
            ))
        }
        Err(e) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewUserPage {
                layout: editor.layout("Add user", "users"),
                errors: FormErrors::from_error(e, "username")?,
                form,
            },
        )),
    }
}
