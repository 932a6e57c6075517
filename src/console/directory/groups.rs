//! Groups: the list with member counts and the apps each gives access to, creating, renaming and
//! deleting, and a group's page with its members (paged), adding one with a search-as-you-type
//! picker, removing one, and the apps the group gives access to.

use super::changed;
use super::users::UserRow;
use crate::console::session::url_encode;
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::group::{Group, NewGroup};
use crate::domain::user::UserSource;
use crate::service::apps::PolicyView;
use crate::store::GroupQuery;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;

/// Groups per page of the list.
const PAGE_SIZE: u32 = 50;
/// Members per page of a group's page.
const MEMBERS_PAGE_SIZE: u32 = 25;

/// The cursor of a listing.
#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

/// One row of the groups list.
pub struct GroupRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// How many members.
    pub members: i64,
    /// The apps it gives access to.
    pub apps: Vec<String>,
    /// The question asked before deleting it.
    pub confirm: String,
}

fn deletion_question(group: &Group, apps: &[String]) -> String {
    let mut question = format!("Delete group {} ({} members)?", group.name, group.member_count);
    if !apps.is_empty() {
        question.push_str(&format!(
            " Its members lose the access it gives to {} (unless another group gives it) and their accounts there are deprovisioned.",
            apps.join(", ")
        ));
    }
    question
}

#[derive(Template)]
#[template(path = "directory/groups.html")]
struct GroupsPage {
    layout: Layout,
    groups: Vec<GroupRow>,
    cursor: String,
    next: String,
    name: String,
    errors: FormErrors,
}

async fn groups_page(
    viewer: &Viewer,
    cursor: Option<String>,
    name: String,
    errors: FormErrors,
) -> Result<GroupsPage, PageError> {
    let app = &viewer.console.app;
    let page = app
        .directory
        .list_groups(&GroupQuery {
            search: None,
            cursor: cursor.clone().filter(|c| !c.is_empty()),
            limit: PAGE_SIZE,
        })
        .await?;
    let mut apps_of: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
    for view in app.apps.list_policies(None).await? {
        apps_of.entry(view.policy.group_id).or_default().push(view.app_name);
    }
    let groups = page
        .items
        .iter()
        .map(|g| {
            let apps = apps_of.remove(&g.id).unwrap_or_default();
            GroupRow {
                id: g.id.to_string(),
                name: g.name.clone(),
                members: g.member_count,
                confirm: deletion_question(g, &apps),
                apps,
            }
        })
        .collect();
    Ok(GroupsPage {
        layout: viewer.layout("Groups", "groups"),
        groups,
        cursor: cursor.unwrap_or_default(),
        next: page
            .next_cursor
            .map(|c| format!("/console/groups?cursor={}", url_encode(&c)))
            .unwrap_or_default(),
        name,
        errors,
    })
}

/// `GET /console/groups`: the list and the create form.
pub async fn list(viewer: Viewer, Query(query): Query<CursorQuery>) -> Result<Response, PageError> {
    Ok(render(
        &groups_page(&viewer, query.cursor, String::new(), FormErrors::default()).await?,
    ))
}

/// The create and rename forms' field.
#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /console/groups`: creates a group.
pub async fn create(editor: Editor, Form(form): Form<NameForm>) -> Result<Response, PageError> {
    let created = editor
        .console
        .app
        .directory
        .create_group(
            NewGroup {
                name: form.name.clone(),
                external_id: None,
            },
            UserSource::Local,
            &editor.principal().actor,
        )
        .await;
    match created {
        Ok(group) => {
            changed(&editor);
            Ok(editor.redirect(
                &format!("/console/groups/{}", group.id),
                &format!("Group {} was created.", group.name),
            ))
        }
        Err(e) => {
            let errors = FormErrors::from_error(e, "name")?;
            let page = groups_page(&editor, None, form.name, errors).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// One app the group gives access to.
pub struct AppLink {
    /// The policy's name.
    pub policy: String,
    /// The app's name.
    pub app: String,
}

#[derive(Template)]
#[template(path = "directory/group.html")]
struct GroupPage {
    layout: Layout,
    id: String,
    name: String,
    member_count: i64,
    members: Vec<UserRow>,
    cursor: String,
    next: String,
    apps: Vec<AppLink>,
    confirm: String,
    new_name: String,
    member: String,
    errors: FormErrors,
}

async fn group_page(
    viewer: &Viewer,
    id: &str,
    cursor: Option<String>,
    new_name: Option<String>,
    member: String,
    errors: FormErrors,
) -> Result<GroupPage, PageError> {
    let app = &viewer.console.app;
    let group = app.directory.get_group(id).await?;
    let reference = group.id.to_string();
    let cursor = cursor.filter(|c| !c.is_empty());
    let members = app
        .directory
        .list_members(&reference, cursor.clone(), MEMBERS_PAGE_SIZE)
        .await?;
    let policies: Vec<PolicyView> = app.apps.policies_of_group(&reference).await?;
    let app_names: Vec<String> = policies.iter().map(|p| p.app_name.clone()).collect();
    Ok(GroupPage {
        layout: viewer.layout(format!("Group {}", group.name), "groups"),
        id: reference.clone(),
        name: group.name.clone(),
        member_count: group.member_count,
        members: members.items.iter().map(UserRow::from).collect(),
        cursor: cursor.unwrap_or_default(),
        next: members
            .next_cursor
            .map(|c| format!("/console/groups/{reference}?cursor={}", url_encode(&c)))
            .unwrap_or_default(),
        confirm: deletion_question(&group, &app_names),
        apps: policies
            .into_iter()
            .map(|p| AppLink {
                policy: p.policy.name,
                app: p.app_name,
            })
            .collect(),
        new_name: new_name.unwrap_or(group.name),
        member,
        errors,
    })
}

/// `GET /console/groups/{id}`: the group's page.
pub async fn show(
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let page = group_page(&viewer, &id, query.cursor, None, String::new(), FormErrors::default()).await?;
    Ok(render(&page))
}

/// `POST /console/groups/{id}/rename`.
pub async fn rename(editor: Editor, Path(id): Path<String>, Form(form): Form<NameForm>) -> Result<Response, PageError> {
    let app = &editor.console.app;
    let renamed = match app.ldap.guard_group_rename(&id).await {
        Ok(()) => {
            app.directory
                .rename_group(&id, &form.name, &editor.principal().actor)
                .await
        }
        Err(e) => Err(e),
    };
    match renamed {
        Ok(group) => {
            changed(&editor);
            Ok(editor.redirect(
                &format!("/console/groups/{}", group.id),
                &format!("The group is now called {}.", group.name),
            ))
        }
        Err(e) => {
            let errors = FormErrors::from_error(e, "name")?;
            let page = group_page(&editor, &id, None, Some(form.name), String::new(), errors).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// `POST /console/groups/{id}/delete`.
pub async fn delete(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let group = editor
        .console
        .app
        .directory
        .delete_group(&id, &editor.principal().actor)
        .await?;
    changed(&editor);
    Ok(editor.redirect("/console/groups", &format!("Group {} was deleted.", group.name)))
}

/// The add-member form's field.
#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    username: String,
}

/// `POST /console/groups/{id}/members`: adds the user named in the form.
pub async fn add_member(
    editor: Editor,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let username = form.username.trim().to_owned();
    let mut errors = FormErrors::default();
    if username.is_empty() {
        errors.add("username", "type a username, or pick a user from the suggestions");
    } else {
        let directory = &editor.console.app.directory;
        let added = directory
            .add_member(&id, &username, &editor.principal().actor)
            .await
            .map(|added| (username.clone(), added));
        match added {
            Ok((name, added)) => {
                changed(&editor);
                let notice = if added {
                    format!("{name} was added to the group.")
                } else {
                    format!("{name} already was a member.")
                };
                return Ok(editor.redirect(&format!("/console/groups/{id}"), &notice));
            }
            Err(e) => errors = FormErrors::from_error(e, "username")?,
        }
    }
    let page = group_page(&editor, &id, None, None, username, errors).await?;
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// `POST /console/groups/{id}/members/{user}/remove`.
pub async fn remove_member(editor: Editor, Path((id, user)): Path<(String, String)>) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let member = directory.get_user(&user).await?;
    let removed = directory
        .remove_member(&id, &member.id.to_string(), &editor.principal().actor)
        .await?;
    changed(&editor);
    let notice = if removed {
        format!("{} was removed from the group.", member.username)
    } else {
        format!("{} was not a member.", member.username)
    };
    Ok(editor.redirect(&format!("/console/groups/{id}"), &notice))
}
