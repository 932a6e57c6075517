//! `provisio attributes ...`: custom attribute definitions over the admin API.

use super::RemoteArgs;
use super::client::{ClientError, encode};
use super::output::{cell, print_fields, print_json, print_table};
use super::session::connect;
use super::users::attribute_types;
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

const NO_BODY: Option<&Value> = None;

// ---------------------------------------------------------------- attributes

/// `provisio attributes ...`.
#[derive(Debug, Subcommand)]
pub enum AttributesCommand {
    /// Define a custom attribute.
    Create {
        /// Identifier (e.g. title).
        name: String,
        /// Value type.
        #[arg(long = "type", value_parser = parse_type)]
        kind: AttributeType,
        /// Every user must have a value.
        #[arg(long)]
        required: bool,
        /// Label for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List custom attributes.
    List,
    /// Show one custom attribute.
    Show {
        /// Name.
        name: String,
    },
    /// Change a custom attribute.
    Update {
        /// Name.
        name: String,
        /// New value type (only while no user holds a value).
        #[arg(long = "type", value_parser = parse_type)]
        kind: Option<AttributeType>,
        /// Make required (true) or optional (false).
        #[arg(long)]
        required: Option<bool>,
        /// New label.
        #[arg(long)]
        display_name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a custom attribute that no user holds a value for (asks first on a terminal).
    Delete {
        /// Name.
        name: String,
        /// Do not ask: confirm for scripts.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_type(value: &str) -> Result<AttributeType, String> {
    AttributeType::parse(value).map_err(|e| e.to_string())
}

fn show_attribute(remote: &RemoteArgs, def: &AttributeDefinition) {
    if remote.json {
        print_json(def);
    } else {
        print_fields(&[
            ("name", def.name.clone()),
            ("display_name", def.display_name.clone()),
            ("type", def.kind.as_str().to_owned()),
            ("required", def.required.to_string()),
            ("description", cell(&def.description)),
        ]);
    }
}

/// `provisio attributes ...`.
pub async fn attributes(remote: &RemoteArgs, command: AttributesCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        AttributesCommand::Create {
            name,
            kind,
            required,
            display_name,
            description,
        } => {
            let body = json!({"name": name, "type": kind, "required": required, "display_name": display_name, "description": description});
            let def: AttributeDefinition = client.request(Method::POST, "/api/v1/attributes", Some(&body)).await?;
            show_attribute(remote, &def);
        }
        AttributesCommand::List => {
            let defs = attribute_types(&client).await?;
            if remote.json {
                print_json(&defs);
            } else {
                let rows: Vec<Vec<String>> = defs
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.clone(),
                            d.kind.as_str().to_owned(),
                            if d.required { "yes" } else { "no" }.to_owned(),
                            d.display_name.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "TYPE", "REQUIRED", "DISPLAY NAME"], &rows);
            }
        }
        AttributesCommand::Show { name } => {
            let def: AttributeDefinition = client
                .request(Method::GET, &format!("/api/v1/attributes/{}", encode(&name)), NO_BODY)
                .await?;
            show_attribute(remote, &def);
        }
        AttributesCommand::Update {
            name,
            kind,
            required,
            display_name,
            description,
        } => {
            let mut body = Map::new();
            if let Some(kind) = kind {
                body.insert("type".into(), json!(kind));
            }
            if let Some(required) = required {
                body.insert("required".into(), json!(required));
            }
            if let Some(display_name) = display_name {
                body.insert("display_name".into(), json!(display_name));
            }
            if let Some(description) = description {
                body.insert("description".into(), json!(description));
            }
            if body.is_empty() {
                return Err(ClientError::Usage(
                    "nothing to change: give --type, --required, --display-name or --description".into(),
                ));
            }
            let def: AttributeDefinition = client
                .request(
                    Method::PATCH,
                    &format!("/api/v1/attributes/{}", encode(&name)),
                    Some(&body),
                )
                .await?;
            show_attribute(remote, &def);
        }
        AttributesCommand::Delete { name, yes } => {
            super::prompt::confirm(&super::impact::attribute_deletion(&client, &name).await?, yes)?;
            client
                .request_empty(
                    Method::DELETE,
                    &format!("/api/v1/attributes/{}", encode(&name)),
                    NO_BODY,
                )
                .await?;
            if !remote.json {
                println!("deleted attribute {name}");
            }
        }
    }
    Ok(())
}
