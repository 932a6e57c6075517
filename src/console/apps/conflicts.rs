//! An app's import conflicts: the accounts an import could not link on its own, each with the
//! directory users that matched it and a form to link it to one of them (or to any user typed by
//! username) or to ignore it for good; below them, the conflicts already resolved.

use super::AppSummary;
use super::runs::usernames;
use crate::console::{Editor, Layout, PageError, Viewer, render, render_status};
use crate::domain::Error;
use crate::domain::app::App;
use crate::domain::target_run::{ConflictResolution, ConflictStatus, ImportConflict};
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// One conflict, for people.
struct ConflictView {
    id: String,
    /// The account's userName (or its id when it has none).
    account: String,
    target_id: String,
    reason: String,
    /// The users that matched: (id, username).
    candidates: Vec<(String, String)>,
    /// `open`, `linked` or `ignored`.
    status: &'static str,
    /// The username of the user it was linked to (empty: none).
    resolved_user: String,
    /// Who resolved it.
    resolved_by: String,
    /// When it last changed.
    updated: String,
}

impl ConflictView {
    fn of(conflict: &ImportConflict, names: &HashMap<Uuid, String>) -> Self {
        let name = |id: &Uuid| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("{id} (no longer in the directory)"))
        };
        Self {
            id: conflict.id.to_string(),
            account: conflict
                .target_username
                .clone()
                .unwrap_or_else(|| conflict.target_id.clone()),
            target_id: conflict.target_id.clone(),
            reason: conflict.reason.clone(),
            candidates: conflict
                .candidates
                .iter()
                .map(|id| (id.to_string(), name(id)))
                .collect(),
            status: conflict.status.as_str(),
            resolved_user: conflict.resolved_user.as_ref().map(name).unwrap_or_default(),
            resolved_by: conflict.resolved_by.clone().unwrap_or_default(),
            updated: super::when(conflict.updated_at),
        }
    }
}

/// A resolution that was refused: which conflict, why, and what was chosen.
#[derive(Debug, Clone, Default)]
struct Refused {
    conflict: String,
    message: String,
    user: String,
    other_user: String,
}

#[derive(Template)]
#[template(path = "apps/conflicts.html")]
struct ConflictsPage {
    layout: Layout,
    app: AppSummary,
    open: Vec<ConflictView>,
    resolved: Vec<ConflictView>,
    /// The refused resolution shown beside its conflict (empty conflict: none).
    refused: Refused,
}

impl ConflictsPage {
    /// Whether a refusal is to be shown above the lists (its conflict is not open any more).
    fn refused_elsewhere(&self) -> bool {
        !self.refused.message.is_empty() && !self.open.iter().any(|c| c.id == self.refused.conflict)
    }
}

async fn conflicts_page(viewer: &Viewer, app: &App, refused: Refused) -> Result<ConflictsPage, Error> {
    let conflicts = viewer
        .console
        .app
        .apps
        .import_conflicts(&app.id.to_string(), None)
        .await?;
    let users: Vec<Uuid> = conflicts
        .iter()
        .flat_map(|c| c.candidates.iter().copied().chain(c.resolved_user))
        .collect();
    let names = usernames(viewer, users).await?;
    let (open, resolved): (Vec<_>, Vec<_>) = conflicts
        .iter()
        .map(|c| ConflictView::of(c, &names))
        .partition(|c| c.status == ConflictStatus::Open.as_str());
    Ok(ConflictsPage {
        layout: viewer.layout(format!("{}: import conflicts", app.name), "apps"),
        app: AppSummary::of(app, "imports"),
        open,
        resolved,
        refused,
    })
}

/// `GET /console/apps/{app}/conflicts`: the open conflicts with their forms, then the resolved.
pub async fn page(viewer: Viewer, Path(app): Path<String>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    Ok(render(&conflicts_page(&viewer, &app, Refused::default()).await?))
}

/// A conflict form's fields.
#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    /// `link` or `ignore`.
    #[serde(default)]
    action: String,
    /// The candidate chosen (id or username).
    #[serde(default)]
    user: String,
    /// A username typed instead (wins over the candidate when given).
    #[serde(default)]
    other_user: String,
}

/// `POST /console/apps/{app}/conflicts/{id}`: links the conflict's account to a user or ignores
/// it; a refusal (the user already has an account, no such user) is shown beside the conflict.
pub async fn resolve(
    editor: Editor,
    Path((app, conflict)): Path<(String, String)>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let chosen = match form.other_user.trim() {
        "" => form.user.trim(),
        typed => typed,
    };
    let resolution = match (form.action.as_str(), chosen) {
        ("ignore", _) => Ok(ConflictResolution::Ignore),
        ("link", "") => Err(Error::invalid(
            "user",
            "choose one of the candidates, or type the username of the user to link",
        )),
        ("link", user) => Ok(ConflictResolution::Link { user: user.to_owned() }),
        (other, _) => Err(Error::invalid(
            "action",
            format!("'{other}' is not a way to resolve a conflict (link or ignore)"),
        )),
    };
    let outcome = match resolution {
        Ok(resolution) => {
            apps.resolve_conflict(&app.id.to_string(), &conflict, resolution, &editor.principal().actor)
                .await
        }
        Err(error) => Err(error),
    };
    let (status, message) = match outcome {
        Ok(resolved) => {
            let account = resolved.target_username.unwrap_or(resolved.target_id);
            let notice = match resolved.resolved_user {
                Some(user) => {
                    let names = usernames(&editor, vec![user]).await?;
                    let name = names.get(&user).cloned().unwrap_or_else(|| user.to_string());
                    format!("The account {account} was linked to {name}.")
                }
                None => format!("The account {account} will be ignored by later imports."),
            };
            return Ok(editor.redirect(&format!("/console/apps/{}/conflicts", app.id), &notice));
        }
        Err(Error::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
        Err(Error::Validation { message, .. }) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Err(error @ Error::NotFound { kind: "user", .. }) => (StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
        Err(other) => return Err(other.into()),
    };
    let refused = Refused {
        conflict,
        message,
        user: form.user,
        other_user: form.other_user,
    };
    Ok(render_status(status, &conflicts_page(&editor, &app, refused).await?))
}
