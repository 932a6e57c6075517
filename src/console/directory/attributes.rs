//! Custom attribute definitions: the list, defining one, editing one (label, type while no user
//! holds a value, required, description) and deleting one (refused while users hold values).

use super::{changed, text};
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::service::directory::{AttributeUpdate, NewAttribute};
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// The types an attribute may have: value and label.
pub const TYPES: &[(&str, &str)] = &[
    ("string", "Text"),
    ("integer", "Whole number"),
    ("boolean", "Yes/no"),
    ("datetime", "Date and time"),
    ("string_list", "List of texts"),
];

/// One row of the list.
pub struct AttributeRow {
    /// Identifier.
    pub name: String,
    /// Label.
    pub display_name: String,
    /// Type.
    pub kind: &'static str,
    /// Whether required.
    pub required: bool,
    /// Description.
    pub description: String,
}

impl From<&AttributeDefinition> for AttributeRow {
    fn from(def: &AttributeDefinition) -> Self {
        AttributeRow {
            name: def.name.clone(),
            display_name: def.display_name.clone(),
            kind: def.kind.as_str(),
            required: def.required,
            description: text(&def.description),
        }
    }
}

/// The define and edit forms' fields, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AttributeForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    required: Option<String>,
    #[serde(default)]
    description: String,
}

impl AttributeForm {
    /// Whether the required box is ticked.
    pub fn is_required(&self) -> bool {
        self.required.is_some()
    }

    /// Whether `value` is the chosen type.
    pub fn is_kind(&self, value: &str) -> bool {
        self.kind == value
    }

    fn kind(&self) -> Result<AttributeType, crate::domain::Error> {
        AttributeType::parse(&self.kind)
    }

    fn of(def: &AttributeDefinition) -> Self {
        AttributeForm {
            name: def.name.clone(),
            display_name: def.display_name.clone(),
            kind: def.kind.as_str().to_owned(),
            required: def.required.then(|| "on".to_owned()),
            description: text(&def.description),
        }
    }
}

#[derive(Template)]
#[template(path = "directory/attributes.html")]
struct AttributesPage {
    layout: Layout,
    attributes: Vec<AttributeRow>,
    form: AttributeForm,
    errors: FormErrors,
    problem: String,
    types: &'static [(&'static str, &'static str)],
}

async fn attributes_page(
    viewer: &Viewer,
    form: AttributeForm,
    errors: FormErrors,
    problem: String,
) -> Result<AttributesPage, PageError> {
    let definitions = viewer.console.app.directory.list_attributes().await?;
    Ok(AttributesPage {
        layout: viewer.layout("Custom attributes", "attributes"),
        attributes: definitions.iter().map(AttributeRow::from).collect(),
        form: AttributeForm {
            kind: if form.kind.is_empty() {
                "string".into()
            } else {
                form.kind.clone()
            },
            ..form
        },
        errors,
        problem,
        types: TYPES,
    })
}

/// `GET /console/attributes`: the definitions and the define form.
pub async fn list(viewer: Viewer) -> Result<Response, PageError> {
    let page = attributes_page(&viewer, AttributeForm::default(), FormErrors::default(), String::new()).await?;
    Ok(render(&page))
}

/// `POST /console/attributes`: defines an attribute.
pub async fn create(editor: Editor, Form(form): Form<AttributeForm>) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let created = match form.kind() {
        Ok(kind) => {
            directory
                .create_attribute(
                    NewAttribute {
                        name: form.name.trim().to_owned(),
                        display_name: Some(form.display_name.clone()),
                        kind,
                        required: form.is_required(),
                        description: Some(form.description.clone()),
                    },
                    &editor.principal().actor,
                )
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(def) => {
            changed(&editor);
            Ok(editor.redirect("/console/attributes", &format!("Attribute {} was defined.", def.name)))
        }
        Err(e) => {
            let errors = FormErrors::from_error(e, "name")?;
            let page = attributes_page(&editor, form, errors, String::new()).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "directory/attribute_edit.html")]
struct EditPage {
    layout: Layout,
    form: AttributeForm,
    errors: FormErrors,
    types: &'static [(&'static str, &'static str)],
}

/// `GET /console/attributes/{name}/edit`.
pub async fn edit_form(editor: Editor, Path(name): Path<String>) -> Result<Response, PageError> {
    let def = editor.console.app.directory.get_attribute(&name).await?;
    Ok(render(&EditPage {
        layout: editor.layout(format!("Edit attribute {}", def.name), "attributes"),
        form: AttributeForm::of(&def),
        errors: FormErrors::default(),
        types: TYPES,
    }))
}

/// `POST /console/attributes/{name}/edit`: changes label, type, required and description.
pub async fn edit(
    editor: Editor,
    Path(name): Path<String>,
    Form(form): Form<AttributeForm>,
) -> Result<Response, PageError> {
    let directory = &editor.console.app.directory;
    let def = directory.get_attribute(&name).await?;
    let updated = match form.kind() {
        Ok(kind) => {
            directory
                .update_attribute(
                    &def.name,
                    AttributeUpdate {
                        display_name: Some(form.display_name.clone()),
                        kind: Some(kind),
                        required: Some(form.is_required()),
                        description: Some(Some(form.description.clone())),
                    },
                    &editor.principal().actor,
                )
                .await
        }
        Err(e) => Err(e),
    };
    match updated {
        Ok(def) => {
            changed(&editor);
            Ok(editor.redirect("/console/attributes", &format!("Attribute {} was saved.", def.name)))
        }
        Err(e) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EditPage {
                layout: editor.layout(format!("Edit attribute {}", def.name), "attributes"),
                errors: FormErrors::from_error(e, "display_name")?,
                form: AttributeForm { name: def.name, ..form },
                types: TYPES,
            },
        )),
    }
}

/// `POST /console/attributes/{name}/delete`: deletes a definition no user holds a value for;
/// otherwise the list again with the refusal.
pub async fn delete(editor: Editor, Path(name): Path<String>) -> Result<Response, PageError> {
    match editor
        .console
        .app
        .directory
        .delete_attribute(&name, &editor.principal().actor)
        .await
    {
        Ok(()) => {
            changed(&editor);
            Ok(editor.redirect("/console/attributes", &format!("Attribute {name} was deleted.")))
        }
        Err(e @ crate::domain::Error::Conflict { .. }) => {
            let status = crate::api::error::status_of(&e);
            let problem = format!("Attribute {name} was not deleted: {}", e_message(&e));
            let page = attributes_page(&editor, AttributeForm::default(), FormErrors::default(), problem).await?;
            Ok(render_status(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

fn e_message(error: &crate::domain::Error) -> String {
    match error {
        crate::domain::Error::Conflict { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
