//! An app's main page: its state (Pause, Resume), its connection (Test connection, with the result
//! polled from a fragment), its settings (URL, write-only token, provisioning features,
//! deprovisioning per event), and the page that confirms its deletion.

use super::{AppSummary, ConnectionView, micros};
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::app::{App, DeprovisionAction, DeprovisioningChange, DeprovisioningFields, FeaturesPatch};
use crate::service::apps::AppUpdate;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// One provisioning feature as a checkbox.
#[derive(Debug, Clone)]
struct FeatureBox {
    /// The form field (the feature's name in the API).
    field: &'static str,
    label: &'static str,
    hint: &'static str,
    on: bool,
}

/// What the settings form holds (never the token).
#[derive(Debug, Clone)]
struct SettingsValues {
    name: String,
    base_url: String,
    enabled: bool,
    features: Vec<FeatureBox>,
    on_unassign: String,
    on_deactivate: String,
    on_delete: String,
    delete_after_days: String,
}

const FEATURES: [(&str, &str, &str); 6] = [
    ("create_users", "Create users", "accounts for newly assigned users"),
    ("update_users", "Update users", "push profile changes"),
    (
        "deactivate_users",
        "Deactivate users",
        "when deprovisioning deactivates",
    ),
    ("delete_users", "Delete users", "when deprovisioning deletes"),
    (
        "push_groups",
        "Push groups",
        "create the policy groups in the app and keep their members",
    ),
    (
        "import_users",
        "Import users",
        "link the app's existing accounts to directory users",
    ),
];

impl SettingsValues {
    fn of(app: &App) -> Self {
        let f = &app.features;
        let on = [
            f.create_users,
            f.update_users,
            f.deactivate_users,
            f.delete_users,
            f.push_groups,
            f.import_users,
        ];
        Self {
            name: app.name.clone(),
            base_url: app.base_url.clone(),
            enabled: app.enabled,
            features: FEATURES
                .iter()
                .zip(on)
                .map(|((field, label, hint), on)| FeatureBox { field, label, hint, on })
                .collect(),
            on_unassign: app.deprovision.on_unassign.as_str().to_owned(),
            on_deactivate: app.deprovision.on_deactivate.as_str().to_owned(),
            on_delete: app.deprovision.on_delete.as_str().to_owned(),
            delete_after_days: app
                .deprovision
                .delete_deactivated_after_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "apps/settings.html")]
struct SettingsPage {
    layout: Layout,
    app: AppSummary,
    conn: ConnectionView,
    form: SettingsValues,
    errors: FormErrors,
    /// The deprovisioning choices: (value, label) for leaving the groups, and for the rest.
    unassign_choices: Vec<(&'static str, &'static str)>,
    loss_choices: Vec<(&'static str, &'static str)>,
}

const CHOICES: [(&str, &str); 3] = [
    ("deactivate", "Deactivate the account"),
    ("delete", "Delete the account"),
    ("nothing", "Leave the account as it is"),
];

fn settings_page(
    viewer: &Viewer,
    app: &App,
    since: Option<i64>,
    form: SettingsValues,
    errors: FormErrors,
) -> SettingsPage {
    SettingsPage {
        layout: viewer.layout(app.name.clone(), "apps"),
        app: AppSummary::of(app, "settings"),
        conn: ConnectionView::of(app, since),
        form,
        errors,
        unassign_choices: CHOICES.to_vec(),
        loss_choices: CHOICES[..2].to_vec(),
    }
}

/// The query of the app page: a connection check newer than `since` is awaited.
#[derive(Debug, Deserialize)]
pub struct SinceQuery {
    #[serde(default)]
    since: Option<i64>,
}

/// `GET /console/apps/{app}`: state, connection and settings.
pub async fn page(viewer: Viewer, Path(app): Path<String>, Query(q): Query<SinceQuery>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    let form = SettingsValues::of(&app);
    Ok(render(&settings_page(
        &viewer,
        &app,
        q.since,
        form,
        FormErrors::default(),
    )))
}

#[derive(Template)]
#[template(path = "apps/connection.html")]
struct ConnectionFragment {
    conn: ConnectionView,
}

/// `GET /console/apps/{app}/connection?since=`: the connection state, as a fragment the app page
/// polls while a check is awaited.
pub async fn connection(
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<SinceQuery>,
) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    Ok(render(&ConnectionFragment {
        conn: ConnectionView::of(&app, q.since.filter(|s| *s > 0)),
    }))
}

/// The settings form's fields.
#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    create_users: Option<String>,
    #[serde(default)]
    update_users: Option<String>,
    #[serde(default)]
    deactivate_users: Option<String>,
    #[serde(default)]
    delete_users: Option<String>,
    #[serde(default)]
    push_groups: Option<String>,
    #[serde(default)]
    import_users: Option<String>,
    #[serde(default)]
    on_unassign: String,
    #[serde(default)]
    on_deactivate: String,
    #[serde(default)]
    on_delete: String,
    #[serde(default)]
    delete_after_days: String,
}

impl SettingsForm {
    /// What the form shows again after an error.
    fn values(&self, app: &App) -> SettingsValues {
        let mut values = SettingsValues::of(app);
        let on = [
            &self.create_users,
            &self.update_users,
            &self.deactivate_users,
            &self.delete_users,
            &self.push_groups,
            &self.import_users,
        ];
        for (feature, on) in values.features.iter_mut().zip(on) {
            feature.on = on.is_some();
        }
        SettingsValues {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            enabled: self.enabled.is_some(),
            on_unassign: self.on_unassign.clone(),
            on_deactivate: self.on_deactivate.clone(),
            on_delete: self.on_delete.clone(),
            delete_after_days: self.delete_after_days.clone(),
            ..values
        }
    }

    /// The change to send: only what differs from `app` for name, URL and switch; the token only
    /// when one was typed; features and deprovisioning whole (the service keeps what is equal).
    fn update(&self, app: &App) -> Result<AppUpdate, crate::domain::Error> {
        let action = |field: &str, value: &str| DeprovisionAction::parse(&format!("deprovision.{field}"), value);
        let days = match self.delete_after_days.trim() {
            "" => 0,
            text => text.parse::<u32>().map_err(|_| {
                crate::domain::Error::invalid(
                    "deprovision.delete_deactivated_after_days",
                    "must be a whole number of days, or empty for never",
                )
            })?,
        };
        let token = self.token.as_ref().filter(|t| !t.expose_secret().is_empty()).cloned();
        Ok(AppUpdate {
            name: (self.name.trim() != app.name).then(|| self.name.clone()),
            base_url: (self.base_url.trim() != app.base_url).then(|| self.base_url.trim().to_owned()),
            token,
            mapping: None,
            features: Some(FeaturesPatch {
                create_users: Some(self.create_users.is_some()),
                update_users: Some(self.update_users.is_some()),
                deactivate_users: Some(self.deactivate_users.is_some()),
                delete_users: Some(self.delete_users.is_some()),
                push_groups: Some(self.push_groups.is_some()),
                import_users: Some(self.import_users.is_some()),
            }),
            deprovision: Some(DeprovisioningChange::Fields(DeprovisioningFields {
                on_unassign: Some(action("on_unassign", &self.on_unassign)?),
                on_deactivate: Some(action("on_deactivate", &self.on_deactivate)?),
                on_delete: Some(action("on_delete", &self.on_delete)?),
                delete_deactivated_after_days: Some(days),
            })),
            enabled: (self.enabled.is_some() != app.enabled).then_some(self.enabled.is_some()),
            flow: None,
            sync: None,
        })
    }
}

/// `POST /console/apps/{app}/settings`: saves the settings; errors beside the fields (422).
pub async fn save(
    editor: Editor,
    Path(app): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let current = apps.get_app(&app).await?;
    let saved = match form.update(&current) {
        Ok(update) => {
            apps.update_app_explained(&current.id.to_string(), update, &editor.principal().actor)
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(updated) => {
            editor.console.app.wake.jobs_queued();
            let mut notice = format!("The settings of {} were saved.", updated.app.name);
            for line in &updated.notices {
                notice.push_str(&format!(" Note: {line}."));
            }
            // A new URL or token resets the connection state: the page polls for the new check.
            Ok(editor.redirect(&format!("/console/apps/{}", current.id), &notice))
        }
        Err(error) => {
            let errors = FormErrors::from_error(error, "name")?;
            let values = form.values(&current);
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &settings_page(&editor, &current, None, values, errors),
            ))
        }
    }
}

/// `POST /console/apps/{app}/test`: queues a connection check; the page then waits for its result.
pub async fn test(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let current = apps.get_app(&app).await?;
    apps.test_connection(&current.id.to_string()).await?;
    editor.console.app.wake.jobs_queued();
    let since = current.connection_checked_at.map(micros).unwrap_or(0);
    Ok(editor.redirect(
        &format!("/console/apps/{}?since={since}", current.id),
        "A connection check is queued; its result appears below.",
    ))
}

/// `POST /console/apps/{app}/pause`: nothing is sent to the app until it is resumed.
pub async fn pause(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let app = editor.console.app.apps.pause(&app).await?;
    Ok(editor.redirect(
        &format!("/console/apps/{}", app.id),
        &format!("{} is paused: its work waits until you resume it.", app.name),
    ))
}

/// `POST /console/apps/{app}/resume`: the waiting work runs now.
pub async fn resume(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let app = editor.console.app.apps.resume(&app).await?;
    editor.console.app.wake.jobs_queued();
    Ok(editor.redirect(
        &format!("/console/apps/{}", app.id),
        &format!("{} is active again.", app.name),
    ))
}

#[derive(Template)]
#[template(path = "apps/delete.html")]
struct DeletePage {
    layout: Layout,
    app: AppSummary,
    accounts: usize,
    policies: usize,
}

/// `GET /console/apps/{app}/delete`: what deleting the app does, and the button.
pub async fn delete_form(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let id = app.id.to_string();
    Ok(render(&DeletePage {
        layout: editor.layout(format!("Delete {}", app.name), "apps"),
        accounts: apps.accounts(&id).await?.len(),
        policies: apps.list_policies(Some(&id)).await?.len(),
        app: AppSummary::of(&app, "delete"),
    }))
}

/// `POST /console/apps/{app}/delete`: removes the app from the hub.
pub async fn delete(editor: Editor, Path(app): Path<String>) -> Result<Response, PageError> {
    let app = editor
        .console
        .app
        .apps
        .delete_app(&app, &editor.principal().actor)
        .await?;
    Ok(editor.redirect(
        "/console/apps",
        &format!(
            "{} was deleted from the hub; its accounts in the app were left as they are.",
            app.name
        ),
    ))
}
