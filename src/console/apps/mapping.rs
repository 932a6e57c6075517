//! An app's attribute mapping: its rows in order, adding (or replacing) a row with a source
//! picker, removing and moving rows, and a live preview of the SCIM resource a user would be sent.

use super::AppSummary;
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::Error;
use crate::domain::app::App;
use crate::domain::mapping::{DEFAULT_PROFILE_ATTRIBUTES, MappingRule, Source};
use crate::domain::mapping_rows::Transform;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// One row of the mapping table.
struct RowView {
    target: String,
    source: String,
    transform: String,
    required: bool,
    first: bool,
    last: bool,
}

/// What the "Add row" form holds.
#[derive(Debug, Default)]
struct RowValues {
    target: String,
    source: String,
    value: String,
    transform: String,
}

#[derive(Template)]
#[template(path = "apps/mapping.html")]
struct MappingPage {
    layout: Layout,
    app: AppSummary,
    rows: Vec<RowView>,
    /// The source picker's choices: (value, label), default profile attributes first.
    profile: Vec<(String, String)>,
    custom: Vec<(String, String)>,
    form: RowValues,
    errors: FormErrors,
    /// A message about one row (its target), from a removal or move that was refused.
    row_error: Option<(String, String)>,
    preview_user: String,
    /// The preview fragment, rendered.
    preview: String,
}

/// A label for a default profile attribute.
fn profile_label(name: &str) -> String {
    match name {
        "id" => "Directory id".into(),
        "username" => "Username".into(),
        "given_name" => "First name".into(),
        "family_name" => "Last name".into(),
        "display_name" => "Full name (display name)".into(),
        "formatted_name" => "Formatted name".into(),
        "email" => "E-mail address".into(),
        "active" => "Active".into(),
        "external_id" => "External id".into(),
        other => other.to_owned(),
    }
}

struct PageParts {
    form: RowValues,
    errors: FormErrors,
    row_error: Option<(String, String)>,
    preview_user: String,
}

async fn mapping_page(viewer: &Viewer, app: &App, parts: PageParts) -> Result<MappingPage, Error> {
    let rows = app.mapping.rows();
    let count = rows.len();
    let custom = viewer
        .console
        .app
        .directory
        .list_attributes()
        .await?
        .into_iter()
        .map(|a| {
            (
                format!("attribute:{}", a.name),
                format!("{} ({})", a.display_name, a.name),
            )
        })
        .collect();
    let preview = preview_of(viewer, &app.id.to_string(), &parts.preview_user)
        .await?
        .render()
        .map_err(|e| Error::Storage(format!("the preview failed to render: {e}")))?;
    Ok(MappingPage {
        layout: viewer.layout(format!("{}: attribute mapping", app.name), "apps"),
        app: AppSummary::of(app, "mapping"),
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| RowView {
                target: row.target,
                source: row.source,
                transform: row.transform.unwrap_or_default(),
                required: row.required,
                first: i == 0,
                last: i + 1 == count,
            })
            .collect(),
        profile: DEFAULT_PROFILE_ATTRIBUTES
            .iter()
            .map(|name| (format!("attribute:{name}"), profile_label(name)))
            .collect(),
        custom,
        form: parts.form,
        errors: parts.errors,
        row_error: parts.row_error,
        preview_user: parts.preview_user,
        preview,
    })
}

/// The mapping page's query: a user to preview.
#[derive(Debug, Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    user: String,
}

/// `GET /console/apps/{app}/mapping`.
pub async fn page(viewer: Viewer, Path(app): Path<String>, Query(q): Query<UserQuery>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    let parts = PageParts {
        form: RowValues::default(),
        errors: FormErrors::default(),
        row_error: None,
        preview_user: q.user,
    };
    Ok(render(&mapping_page(&viewer, &app, parts).await?))
}

/// The "Add row" form's fields.
#[derive(Deserialize)]
pub struct RowForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    transform: String,
}

impl RowForm {
    /// The rule the form describes: a profile or custom attribute, a constant, or an expression
    /// (a JSON source such as `{"concat": [...]}`), optionally converted to lower or upper case.
    fn rule(&self) -> Result<MappingRule, Error> {
        let source = match self.source.as_str() {
            "constant" => Source::from_short(&format!("constant:{}", self.value.trim()))?,
            "expression" => {
                if !self.value.trim_start().starts_with('{') {
                    return Err(Error::invalid(
                        "value",
                        "an expression is a JSON source, e.g. {\"concat\": [{\"attribute\": \"given_name\"}, {\"constant\": \" \"}, {\"attribute\": \"family_name\"}]}",
                    ));
                }
                Source::from_short(&self.value).map_err(|e| match e {
                    Error::Validation { message, .. } => Error::invalid("value", message),
                    other => other,
                })?
            }
            picked => match picked.strip_prefix("attribute:") {
                Some(name) if !name.is_empty() => Source::Attribute(name.to_owned()),
                _ => return Err(Error::invalid("source", "choose where the value comes from")),
            },
        };
        let source = match self.transform.as_str() {
            "" => source,
            other => Transform::parse(other)?.apply(source),
        };
        Ok(MappingRule {
            target: self.target.trim().to_owned(),
            source,
        })
    }
}

/// Puts a service error about a rule beside the field it concerns.
fn row_errors(error: Error) -> Result<FormErrors, Error> {
    let found = FormErrors::from_error(error, "target")?;
    let mut errors = FormErrors::default();
    for (field, message) in found.all() {
        let field = if field.ends_with(".source") || field == "source" {
            "source"
        } else if field == "value" || field == "transform" {
            field
        } else {
            "target"
        };
        errors.add(field, message);
    }
    Ok(errors)
}

/// `POST /console/apps/{app}/mapping`: sets the rule for the target (replacing the rule for the
/// same attribute, else adding it at the end).
pub async fn add(editor: Editor, Path(app): Path<String>, Form(form): Form<RowForm>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let current = apps.get_app(&app).await?;
    let result = match form.rule() {
        Ok(rule) => {
            apps.set_mapping_rule(&current.id.to_string(), rule, &editor.principal().actor)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(editor.redirect(
            &format!("/console/apps/{}/mapping", current.id),
            &format!("The rule for {} was saved.", form.target.trim()),
        )),
        Err(error) => {
            let parts = PageParts {
                errors: row_errors(error)?,
                form: RowValues {
                    target: form.target,
                    source: form.source,
                    value: form.value,
                    transform: form.transform,
                },
                row_error: None,
                preview_user: String::new(),
            };
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &mapping_page(&editor, &current, parts).await?,
            ))
        }
    }
}

/// A row's buttons: which rule, and for moves, which way.
#[derive(Deserialize)]
pub struct RowAction {
    target: String,
    #[serde(default)]
    direction: String,
}

/// Shows a refused row action beside its row.
async fn row_refused(editor: &Editor, app: &App, target: String, error: Error) -> Result<Response, PageError> {
    let message = match error {
        Error::Validation { message, .. } | Error::Conflict { message, .. } => message,
        Error::NotFound { .. } => "this rule no longer exists (reload the page)".to_owned(),
        other => return Err(other.into()),
    };
    let parts = PageParts {
        form: RowValues::default(),
        errors: FormErrors::default(),
        row_error: Some((target, message)),
        preview_user: String::new(),
    };
    Ok(render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &mapping_page(editor, app, parts).await?,
    ))
}

/// `POST /console/apps/{app}/mapping/remove`: removes a row (never `userName`'s).
pub async fn remove(
    editor: Editor,
    Path(app): Path<String>,
    Form(form): Form<RowAction>,
) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let current = apps.get_app(&app).await?;
    match apps
        .remove_mapping_rule(&current.id.to_string(), &form.target, &editor.principal().actor)
        .await
    {
        Ok(_) => Ok(editor.redirect(
            &format!("/console/apps/{}/mapping", current.id),
            &format!("The rule for {} was removed.", form.target),
        )),
        Err(error) => row_refused(&editor, &current, form.target, error).await,
    }
}

/// `POST /console/apps/{app}/mapping/move`: moves a row one place up or down.
pub async fn move_row(
    editor: Editor,
    Path(app): Path<String>,
    Form(form): Form<RowAction>,
) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let current = apps.get_app(&app).await?;
    let up = form.direction == "up";
    match apps
        .move_mapping_rule(&current.id.to_string(), &form.target, up, &editor.principal().actor)
        .await
    {
        Ok(_) => Ok(editor.redirect(
            &format!("/console/apps/{}/mapping", current.id),
            &format!(
                "The rule for {} was moved {}.",
                form.target,
                if up { "up" } else { "down" }
            ),
        )),
        Err(error) => row_refused(&editor, &current, form.target, error).await,
    }
}

/// The preview of one user's SCIM resource.
#[derive(Template)]
#[template(path = "apps/preview.html")]
struct PreviewFragment {
    user: String,
    json: String,
    problem: String,
}

async fn preview_of(viewer: &Viewer, app: &str, user: &str) -> Result<PreviewFragment, Error> {
    let user = user.trim().to_owned();
    if user.is_empty() {
        return Ok(PreviewFragment {
            user,
            json: String::new(),
            problem: String::new(),
        });
    }
    match viewer.console.app.apps.preview(app, &user).await {
        Ok(resource) => Ok(PreviewFragment {
            json: serde_json::to_string_pretty(&resource).unwrap_or_default(),
            user,
            problem: String::new(),
        }),
        Err(Error::NotFound { kind: "user", id }) => Ok(PreviewFragment {
            problem: format!("No user is called '{id}'."),
            user,
            json: String::new(),
        }),
        Err(Error::Validation { message, .. }) => Ok(PreviewFragment {
            problem: format!("The mapping cannot build this user's resource: {message}"),
            user,
            json: String::new(),
        }),
        Err(other) => Err(other),
    }
}

/// `GET /console/apps/{app}/preview?user=`: the SCIM resource the user would be sent, as a
/// fragment for the live preview.
pub async fn preview(
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Response, PageError> {
    let fragment = preview_of(&viewer, &app, &q.user).await?;
    Ok(render(&fragment))
}
