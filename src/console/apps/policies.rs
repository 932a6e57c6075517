//! Policies (app x group: the group's active members get accounts in the app): the list, the
//! "Add policy" form, and deletion.

use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::Error;
use crate::service::apps::{NewPolicy, PolicyView};
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// What the "Add policy" form holds.
#[derive(Debug, Default)]
struct PolicyValues {
    name: String,
    app: String,
    group: String,
}

#[derive(Template)]
#[template(path = "apps/policies.html")]
struct PoliciesPage {
    layout: Layout,
    policies: Vec<PolicyView>,
    /// (id, name) of every app.
    apps: Vec<(String, String)>,
    /// (id, name) of the groups.
    groups: Vec<(String, String)>,
    form: PolicyValues,
    errors: FormErrors,
}

async fn policies_page(viewer: &Viewer, form: PolicyValues, errors: FormErrors) -> Result<PoliciesPage, Error> {
    let state = &viewer.console.app;
    let apps = state
        .apps
        .list_apps()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.name))
        .collect();
    let groups = super::offered_groups(&state.directory).await?;
    Ok(PoliciesPage {
        layout: viewer.layout("Policies", "policies"),
        policies: state.apps.list_policies(None).await?,
        apps,
        groups,
        form,
        errors,
    })
}

/// `GET /console/policies`.
pub async fn list(viewer: Viewer) -> Result<Response, PageError> {
    Ok(render(
        &policies_page(&viewer, PolicyValues::default(), FormErrors::default()).await?,
    ))
}

/// The "Add policy" form's fields.
#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    group: String,
}

/// `POST /console/policies`: links a group to an app.
pub async fn create(editor: Editor, Form(form): Form<PolicyForm>) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    if form.app.is_empty() {
        errors.add("app", "choose an app");
    }
    if form.group.is_empty() {
        errors.add("group", "choose a group");
    }
    if !errors.any() {
        let input = NewPolicy {
            name: (!form.name.trim().is_empty()).then(|| form.name.clone()),
            app: form.app.clone(),
            group: form.group.clone(),
        };
        match editor
            .console
            .app
            .apps
            .create_policy(input, &editor.principal().actor)
            .await
        {
            Ok(policy) => {
                editor.console.app.wake.jobs_queued();
                return Ok(editor.redirect(
                    "/console/policies",
                    &format!(
                        "The policy {} was added: the group's active members will get accounts.",
                        policy.name
                    ),
                ));
            }
            Err(Error::NotFound { kind, id }) => {
                let field = if kind == "app" { "app" } else { "group" };
                errors.add(field, format!("{kind} '{id}' was not found"));
            }
            Err(error) => errors = FormErrors::from_error(error, "group")?,
        }
    }
    let values = PolicyValues {
        name: form.name,
        app: form.app,
        group: form.group,
    };
    Ok(render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &policies_page(&editor, values, errors).await?,
    ))
}

/// `POST /console/policies/{policy}/delete`: removes a policy; its group's members lose their
/// accounts unless another policy keeps them.
pub async fn delete(editor: Editor, Path(policy): Path<String>) -> Result<Response, PageError> {
    let removed = editor
        .console
        .app
        .apps
        .delete_policy(&policy, &editor.principal().actor)
        .await?;
    editor.console.app.wake.jobs_queued();
    Ok(editor.redirect(
        "/console/policies",
        &format!("The policy {} was deleted.", removed.name),
    ))
}
