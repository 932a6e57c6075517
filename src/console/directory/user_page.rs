//! One user's page (profile, custom attributes, groups, app accounts, timeline), the edit form,
//! activation, provisioning now, and deletion with its confirmation page.

use super::form::UserForm;
use super::{changed, text, value_text, when};
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status, safe_next};
use crate::domain::user::User;
use crate::service::apps::UserAccountView;
use crate::service::reports::TimelineEntry;
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// Timeline entries shown on the user's page (the newest).
const TIMELINE_SIZE: usize = 20;

/// A label and a value of the profile.
pub struct Fact {
    /// The field's name (for selectors).
    pub key: String,
    /// The label.
    pub label: String,
    /// The value, as text.
    pub value: String,
}

/// A group the user belongs to.
pub struct GroupLink {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// An account of the user in an app.
pub struct AccountRow {
    /// The app's name.
    pub app: String,
    /// The account's id in the app.
    pub target_id: String,
    /// Its userName there.
    pub target_username: String,
    /// When it was last pushed.
    pub pushed_at: String,
    /// Its state.
    pub state: &'static str,
    /// The badge class of the state.
    pub badge: &'static str,
    /// What deleting the user does in this app.
    pub on_delete: &'static str,
}

impl From<&UserAccountView> for AccountRow {
    fn from(view: &UserAccountView) -> Self {
        let state = view.account.state.as_str();
        AccountRow {
            app: view.app_name.clone(),
            target_id: view.account.target_id.clone(),
            target_username: view.account.target_username.clone(),
            pushed_at: when(&view.account.updated_at),
            state,
            badge: match state {
                "active" => "ok",
                "deactivated" => "warn",
                _ => "bad",
            },
            on_delete: view.on_delete.as_str(),
        }
    }
}

/// One line of the timeline.
pub struct TimelineRow {
    /// When.
    pub at: String,
    /// The app, or "directory" for a change in the directory.
    pub app: String,
    /// What was done.
    pub operation: String,
    /// How it ended (or who made the change).
    pub outcome: String,
    /// The badge class of the outcome.
    pub badge: &'static str,
    /// Details in words.
    pub message: String,
}

impl From<&TimelineEntry> for TimelineRow {
    fn from(entry: &TimelineEntry) -> Self {
        let at = when(&entry.at);
        if let Some(report) = &entry.report {
            let outcome = report.outcome.as_str();
            return TimelineRow {
                at,
                app: report.app_name.clone(),
                operation: report.operation.as_str().to_owned(),
                outcome: outcome.to_owned(),
                badge: match outcome {
                    "success" => "ok",
                    "failure" => "bad",
                    _ => "warn",
                },
                message: text(&report.message),
            };
        }
        let (operation, actor) = entry
            .change
            .as_ref()
            .map(|c| {
                let what = match c.related_id {
                    Some(_) => format!("group membership {}", c.operation.as_str()),
                    None => c.operation.as_str().to_owned(),
                };
                (what, c.actor.clone())
            })
            .unwrap_or_default();
        TimelineRow {
            at,
            app: "directory".into(),
            operation,
            outcome: "recorded".into(),
            badge: "",
            message: format!("by {actor}"),
        }
    }
}

#[derive(Template)]
#[template(path = "directory/user.html")]
struct UserPage {
    layout: Layout,
    id: String,
    username: String,
    active: bool,
    profile: Vec<Fact>,
    attributes: Vec<Fact>,
    groups: Vec<GroupLink>,
    accounts: Vec<AccountRow>,
    timeline: Vec<TimelineRow>,
}

/// `GET /console/users/{id}`: everything about one user.
pub async fn show(viewer: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let app = &viewer.console.app;
    let user = app.directory.get_user(&id).await?;
    let reference = user.id.to_string();
    let definitions = app.directory.list_attributes().await?;
    let groups = app.directory.groups_of_user(&reference).await?;
    let accounts = app.apps.accounts_of_user(&reference).await?;
    let timeline = app.reports.timeline(&reference).await?;
    let profile = vec![
        Fact {
            key: "username".into(),
            label: "Username".into(),
            value: user.username.clone(),
        },
        Fact {
            key: "given_name".into(),
            label: "Given name".into(),
            value: text(&user.given_name),
        },
        Fact {
            key: "family_name".into(),
            label: "Family name".into(),
            value: text(&user.family_name),
        },
        Fact {
            key: "display_name".into(),
            label: "Display name".into(),
            value: text(&user.display_name),
        },
        Fact {
            key: "email".into(),
            label: "Email".into(),
            value: text(&user.email),
        },
        Fact {
            key: "status".into(),
            label: "Status".into(),
            value: if user.active {
                "active".into()
            } else {
                "inactive".into()
            },
        },
        Fact {
            key: "source".into(),
            label: "Source".into(),
            value: user.source.as_str().into(),
        },
        Fact {
            key: "external_id".into(),
            label: "External id".into(),
            value: text(&user.external_id),
        },
        Fact {
            key: "created".into(),
            label: "Created".into(),
            value: when(&user.created_at),
        },
        Fact {
            key: "updated".into(),
            label: "Updated".into(),
            value: when(&user.updated_at),
        },
    ];
    let attributes = definitions
        .iter()
        .map(|d| Fact {
            key: d.name.clone(),
            label: d.display_name.clone(),
            value: user
                .attributes
                .get(&d.name)
                .map(|v| value_text(v, ", "))
                .unwrap_or_default(),
        })
        .collect();
    Ok(render(&UserPage {
        layout: viewer.layout(format!("User {}", user.username), "users"),
        id: reference,
        username: user.username.clone(),
        active: user.active,
        profile,
        attributes,
        groups: groups
            .iter()
            .map(|g| GroupLink {
                id: g.id.to_string(),
                name: g.name.clone(),
            })
            .collect(),
        accounts: accounts.iter().map(AccountRow::from).collect(),
        timeline: timeline
            .iter()
            .rev()
            .take(TIMELINE_SIZE)
            .map(TimelineRow::from)
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "directory/user_edit.html")]
struct EditPage {
    layout: Layout,
    id: String,
    form: UserForm,
    errors: FormErrors,
}

/// `GET /console/users/{id}/edit`: the edit form.
pub async fn edit_form(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let user = directory.get_user(&id).await?;
    let definitions = directory.list_attributes().await?;
    Ok(render(&EditPage {
        layout: editor.layout(format!("Edit {}", user.username), "users"),
        id: user.id.to_string(),
        form: UserForm::of_user(&user, &definitions),
        errors: FormErrors::default(),
    }))
}

/// `POST /console/users/{id}/edit`: saves the form, or shows it again with the problem.
pub async fn edit(
    editor: Editor,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let user = directory.get_user(&id).await?;
    let definitions = directory.list_attributes().await?;
    let form = UserForm::from_pairs(pairs, &definitions);
    let reference = user.id.to_string();
    let update = form.to_update(&definitions);
    let saved = match editor.console.app.ldap.guard_user_update(&reference, &update).await {
        Ok(()) => {
            directory
                .update_user(&reference, update, &editor.principal().actor)
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(saved) => {
            changed(&editor);
            Ok(editor.redirect(
                &format!("/console/users/{reference}"),
                &format!("User {} was saved.", saved.username),
            ))
        }
        Err(e) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EditPage {
                layout: editor.layout(format!("Edit {}", user.username), "users"),
                id: reference,
                errors: FormErrors::from_error(e, "username")?,
                form,
            },
        )),
    }
}

/// Where a row action returns to.
#[derive(Debug, Default, Deserialize)]
pub struct Back {
    #[serde(default)]
    back: Option<String>,
}

impl Back {
    fn to(&self, user: &User) -> String {
        match self.back.as_deref() {
            Some(path) if !path.is_empty() => safe_next(Some(path)),
            _ => format!("/console/users/{}", user.id),
        }
    }
}

async fn set_active(editor: Editor, id: String, back: Back, active: bool) -> Result<Response, PageError> {
    editor.console.app.ldap.guard_user_active(&id, active).await?;
    let user = editor
        .console
        .app
        .directory
        .set_active(&id, active, &editor.principal().actor)
        .await?;
    changed(&editor);
    let notice = if active {
        format!("User {} was activated.", user.username)
    } else {
        format!(
            "User {} was deactivated: their app accounts are being deprovisioned.",
            user.username
        )
    };
    Ok(editor.redirect(&back.to(&user), &notice))
}

/// `POST /console/users/{id}/activate`.
pub async fn activate(editor: Editor, Path(id): Path<String>, Form(back): Form<Back>) -> Result<Response, PageError> {
    set_active(editor, id, back, true).await
}

/// `POST /console/users/{id}/deactivate`.
pub async fn deactivate(editor: Editor, Path(id): Path<String>, Form(back): Form<Back>) -> Result<Response, PageError> {
    set_active(editor, id, back, false).await
}

/// `POST /console/users/{id}/provision`: queues the user's provisioning in every app concerned.
pub async fn provision(editor: Editor, Path(id): Path<String>, Form(back): Form<Back>) -> Result<Response, PageError> {
    let app = &editor.console.app;
    let user = app.directory.get_user(&id).await?;
    let apps = app.apps.provision_user_everywhere(&user.id.to_string()).await?;
    app.wake.jobs_queued();
    let notice = if apps.is_empty() {
        format!(
            "No app gives {} access or holds an account of theirs: nothing to provision.",
            user.username
        )
    } else {
        format!("Provisioning of {} was queued in: {}.", user.username, apps.join(", "))
    };
    Ok(editor.redirect(&back.to(&user), &notice))
}

#[derive(Template)]
#[template(path = "directory/user_delete.html")]
struct DeletePage {
    layout: Layout,
    id: String,
    username: String,
    accounts: Vec<AccountRow>,
    question: String,
}

/// `GET /console/users/{id}/delete`: what deleting the user will deprovision, and the button.
pub async fn delete_form(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let app = &editor.console.app;
    let user = app.directory.get_user(&id).await?;
    let impact = app.apps.user_deletion_impact(&user.id.to_string()).await?;
    let question = if impact.is_empty() {
        format!("Delete user {}?", user.username)
    } else {
        let names: Vec<&str> = impact.iter().map(|v| v.app_name.as_str()).collect();
        format!(
            "Delete user {}? Their accounts in {} will be deprovisioned.",
            user.username,
            names.join(", ")
        )
    };
    Ok(render(&DeletePage {
        layout: editor.layout(format!("Delete {}", user.username), "users"),
        id: user.id.to_string(),
        username: user.username.clone(),
        accounts: impact.iter().map(AccountRow::from).collect(),
        question,
    }))
}

/// `POST /console/users/{id}/delete`: deletes the user.
pub async fn delete(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let user = editor
        .console
        .app
        .directory
        .delete_user(&id, &editor.principal().actor)
        .await?;
    changed(&editor);
    Ok(editor.redirect("/console/users", &format!("User {} was deleted.", user.username)))
}
