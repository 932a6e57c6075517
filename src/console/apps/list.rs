//! The apps list and the "Add app" form (preset, name, SCIM base URL, write-only bearer token).

use super::{ConnectionView, preset_title, state_words};
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::mapping::{Mapping, MappingRule, Preset, Source};
use crate::service::apps::NewApp;
use askama::Template;
use axum::Form;
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;

/// One line of the apps list.
struct AppRow {
    id: String,
    name: String,
    preset: String,
    base_url: String,
    state: &'static str,
    state_class: &'static str,
    enabled: bool,
    connection: ConnectionView,
    accounts: i64,
}

#[derive(Template)]
#[template(path = "apps/list.html")]
struct ListPage {
    layout: Layout,
    apps: Vec<AppRow>,
}

/// `GET /console/apps`: every app with its state, connection and number of accounts.
pub async fn list(viewer: Viewer) -> Result<Response, PageError> {
    let apps = &viewer.console.app.apps;
    let counts = apps.account_counts().await?;
    let rows = apps
        .list_apps()
        .await?
        .into_iter()
        .map(|app| {
            let (state, state_class) = state_words(app.state);
            AppRow {
                id: app.id.to_string(),
                preset: preset_title(&app),
                base_url: app.base_url.clone(),
                state,
                state_class,
                enabled: app.enabled,
                connection: ConnectionView::of(&app, None),
                accounts: counts.get(&app.id).copied().unwrap_or(0),
                name: app.name,
            }
        })
        .collect();
    Ok(render(&ListPage {
        layout: viewer.layout("Apps", "apps"),
        apps: rows,
    }))
}

/// What the "Add app" form holds (never the token).
#[derive(Debug, Default)]
struct NewAppValues {
    preset: String,
    name: String,
    base_url: String,
    create_attributes: bool,
}

#[derive(Template)]
#[template(path = "apps/new.html")]
struct NewAppPage {
    layout: Layout,
    presets: Vec<Preset>,
    form: NewAppValues,
    errors: FormErrors,
}

/// The choice that starts from an empty mapping (only `userName`).
const BLANK: &str = "blank";

/// `GET /console/apps/new`.
pub async fn new_form(editor: Editor) -> Result<Response, PageError> {
    Ok(render(&NewAppPage {
        layout: editor.layout("Add app", "apps"),
        presets: editor.console.app.apps.presets()?,
        form: NewAppValues {
            preset: "monday".into(),
            create_attributes: true,
            ..NewAppValues::default()
        },
        errors: FormErrors::default(),
    }))
}

/// The "Add app" form's fields.
#[derive(Deserialize)]
pub struct NewAppForm {
    #[serde(default)]
    preset: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    create_attributes: Option<String>,
}

/// `POST /console/apps/new`: connects the app; its connection check is queued.
pub async fn create(editor: Editor, Form(form): Form<NewAppForm>) -> Result<Response, PageError> {
    let values = NewAppValues {
        preset: form.preset.clone(),
        name: form.name.clone(),
        base_url: form.base_url.clone(),
        create_attributes: form.create_attributes.is_some(),
    };
    let blank = form.preset == BLANK;
    let input = NewApp {
        name: form.name,
        base_url: form.base_url.trim().to_owned(),
        token: form.token.unwrap_or_else(|| SecretString::from(String::new())),
        preset: (!blank && !form.preset.is_empty()).then_some(form.preset),
        mapping: blank.then(|| Mapping {
            rules: vec![MappingRule {
                target: "userName".into(),
                source: Source::Attribute("username".into()),
            }],
        }),
        features: None,
        deprovision: None,
        enabled: None,
        flow: None,
        create_attributes: values.create_attributes,
    };
    let apps = &editor.console.app.apps;
    match apps.create_app(input, &editor.principal().actor).await {
        Ok(app) => {
            editor.console.app.wake.jobs_queued();
            Ok(editor.redirect(
                &format!("/console/apps/{}", app.id),
                &format!("The app {} was added; its connection is being checked.", app.name),
            ))
        }
        Err(error) => {
            let found = FormErrors::from_error(error, "name")?;
            // Mapping problems are the preset's (custom attributes it needs): shown beside it.
            let mut errors = FormErrors::default();
            for (field, message) in found.all() {
                let field = if field.starts_with("mapping") { "preset" } else { field };
                errors.add(field, message);
            }
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &NewAppPage {
                    layout: editor.layout("Add app", "apps"),
                    presets: apps.presets()?,
                    form: values,
                    errors,
                },
            ))
        }
    }
}
