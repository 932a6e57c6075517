//! `provisio users ...`: the directory's users over the admin API.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{cell, print_fields, print_json, print_table, when};
use super::session::connect;
use crate::domain::Page;
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::user::User;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value};

const NO_BODY: Option<&Value> = None;

// ---------------------------------------------------------------- users

/// Profile flags shared by `users add` and `users update`.
#[derive(Debug, Clone, Args, Default)]
pub struct ProfileArgs {
    /// First name.
    #[arg(long)]
    pub given_name: Option<String>,
    /// Last name.
    #[arg(long)]
    pub family_name: Option<String>,
    /// Full name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// Formatted name.
    #[arg(long)]
    pub formatted_name: Option<String>,
    /// Email address.
    #[arg(long)]
    pub email: Option<String>,
    /// Identifier in another system.
    #[arg(long)]
    pub external_id: Option<String>,
    /// Custom attribute value, `name=value` (repeatable). Values are converted to the attribute's
    /// type; lists are comma-separated.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    pub attributes: Vec<String>,
}

/// `provisio users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        /// Login name.
        username: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Create the user inactive.
        #[arg(long)]
        inactive: bool,
    },
    /// List users, optionally searching by username, email or name.
    List {
        /// Text to search for.
        #[arg(long)]
        search: Option<String>,
        /// Only active (true) or inactive (false) users.
        #[arg(long)]
        active: Option<bool>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
    },
    /// Show one user (by id or username).
    Show {
        /// Id or username.
        user: String,
    },
    /// Change a user's profile.
    Update {
        /// Id or username.
        user: String,
        /// New username.
        #[arg(long)]
        username: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Clear a field (`email`, `given_name`, ... or `attributes.NAME`); repeatable.
        #[arg(long, value_name = "FIELD")]
        unset: Vec<String>,
    },
    /// Deactivate a user.
    Deactivate {
        /// Id or username.
        user: String,
    },
    /// Reactivate a user.
    Activate {
        /// Id or username.
        user: String,
    },
    /// Delete a user (asks first on a terminal, naming the apps that will deprovision them).
    Delete {
        /// Id or username.
        user: String,
        /// Do not ask: confirm for scripts.
        #[arg(long)]
        yes: bool,
    },
    /// Everything that happened to a user, in the directory and in every app.
    Timeline {
        /// Id or username (also of a deleted user).
        user: String,
    },
}

pub(super) async fn attribute_types(client: &Client) -> Result<Vec<AttributeDefinition>, ClientError> {
    client.request(Method::GET, "/api/v1/attributes", NO_BODY).await
}

fn convert_attribute(definitions: &[AttributeDefinition], pair: &str) -> Result<(String, Value), ClientError> {
    let (name, raw) = pair
        .split_once('=')
        .ok_or_else(|| ClientError::Usage(format!("--attr takes NAME=VALUE, got '{pair}'")))?;
    let def = definitions.iter().find(|d| d.name == name).ok_or_else(|| {
        ClientError::Usage(format!(
            "'{name}' is not a defined custom attribute (see `provisio attributes list`)"
        ))
    })?;
    let bad = |what: &str| ClientError::Usage(format!("--attr {name}: '{raw}' is not {what}"));
    let value = match def.kind {
        AttributeType::String | AttributeType::Datetime => Value::String(raw.to_owned()),
        AttributeType::Boolean => Value::Bool(raw.parse().map_err(|_| bad("true or false"))?),
        AttributeType::Integer => Value::from(raw.parse::<i64>().map_err(|_| bad("a whole number"))?),
        AttributeType::StringList => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
    };
    Ok((name.to_owned(), value))
}

fn profile_body(profile: ProfileArgs, definitions: &[AttributeDefinition]) -> Result<Map<String, Value>, ClientError> {
    let mut body = Map::new();
    let fields = [
        ("given_name", profile.given_name),
        ("family_name", profile.family_name),
        ("display_name", profile.display_name),
        ("formatted_name", profile.formatted_name),
        ("email", profile.email),
        ("external_id", profile.external_id),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            body.insert(key.to_owned(), Value::String(value));
        }
    }
    if !profile.attributes.is_empty() {
        let mut attributes = Map::new();
        for pair in &profile.attributes {
            let (name, value) = convert_attribute(definitions, pair)?;
            attributes.insert(name, value);
        }
        body.insert("attributes".to_owned(), Value::Object(attributes));
    }
    Ok(body)
}

fn print_user(user: &User) {
    let mut fields = vec![
        ("id", user.id.to_string()),
        ("username", user.username.clone()),
        ("given_name", cell(&user.given_name)),
        ("family_name", cell(&user.family_name)),
        ("display_name", cell(&user.display_name)),
        ("formatted_name", cell(&user.formatted_name)),
        ("email", cell(&user.email)),
        ("active", user.active.to_string()),
        ("external_id", cell(&user.external_id)),
        ("source", user.source.as_str().to_owned()),
        ("created_at", when(user.created_at)),
        ("updated_at", when(user.updated_at)),
    ];
    let attrs: Vec<(String, String)> = user
        .attributes
        .iter()
        .map(|(k, v)| (format!("attributes.{k}"), v.to_string()))
        .collect();
    for (key, value) in &attrs {
        fields.push((key.as_str(), value.clone()));
    }
    print_fields(&fields);
}

pub(super) fn user_rows(users: &[User]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                cell(&u.display_name),
                cell(&u.email),
                if u.active { "yes" } else { "no" }.to_owned(),
                u.id.to_string(),
            ]
        })
        .collect()
}

fn show_user(remote: &RemoteArgs, user: &User) {
    if remote.json {
        print_json(user)
    } else {
        print_user(user)
    }
}

/// `provisio users ...`.
pub async fn users(remote: &RemoteArgs, command: UsersCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        UsersCommand::Add {
            username,
            profile,
            inactive,
        } => {
            let definitions = if profile.attributes.is_empty() {
                Vec::new()
            } else {
                attribute_types(&client).await?
            };
            let mut body = profile_body(profile, &definitions)?;
            body.insert("username".into(), Value::String(username));
            if inactive {
                body.insert("active".into(), Value::Bool(false));
            }
            let user: User = client.request(Method::POST, "/api/v1/users", Some(&body)).await?;
            show_user(remote, &user);
        }
        UsersCommand::List {
            search,
            active,
            limit,
            mut cursor,
            all,
        } => {
            let mut users = Vec::new();
            let next = loop {
                let mut path = format!("/api/v1/users?limit={limit}");
                if let Some(q) = &search {
                    path.push_str(&format!("&q={}", encode(q)));
                }
                if let Some(active) = active {
                    path.push_str(&format!("&active={active}"));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", encode(c)));
                }
                let page: Page<User> = client.request(Method::GET, &path, NO_BODY).await?;
                users.extend(page.items);
                match page.next_cursor {
                    Some(next) if all => cursor = Some(next),
                    other => break other,
                }
            };
            if remote.json {
                print_json(&Page {
                    items: users,
                    next_cursor: next,
                });
            } else {
                print_table(&["USERNAME", "NAME", "EMAIL", "ACTIVE", "ID"], &user_rows(&users));
                if let Some(next) = next {
                    eprintln!("more users: --cursor {next}");
                }
            }
        }
        UsersCommand::Show { user } => {
            let user: User = client
                .request(Method::GET, &format!("/api/v1/users/{}", encode(&user)), NO_BODY)
                .await?;
            show_user(remote, &user);
        }
        UsersCommand::Update {
            user,
            username,
            profile,
            unset,
        } => {
            let needs_types = !profile.attributes.is_empty();
            let definitions = if needs_types {
                attribute_types(&client).await?
            } else {
                Vec::new()
            };
            let mut body = profile_body(profile, &definitions)?;
            if let Some(username) = username {
                body.insert("username".into(), Value::String(username));
            }
            for field in unset {
                match field.strip_prefix("attributes.") {
                    Some(name) => {
                        let attributes = body.entry("attributes").or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(map) = attributes {
                            map.insert(name.to_owned(), Value::Null);
                        }
                    }
                    None => {
                        body.insert(field, Value::Null);
                    }
                }
            }
            if body.is_empty() {
                return Err(ClientError::Usage(
                    "nothing to change: give at least one field flag or --unset".into(),
                ));
            }
            let user: User = client
                .request(Method::PATCH, &format!("/api/v1/users/{}", encode(&user)), Some(&body))
                .await?;
            show_user(remote, &user);
        }
        UsersCommand::Deactivate { user } => {
            let user: User = client
                .request(
                    Method::POST,
                    &format!("/api/v1/users/{}/deactivate", encode(&user)),
                    NO_BODY,
                )
                .await?;
            show_user(remote, &user);
        }
        UsersCommand::Activate { user } => {
            let user: User = client
                .request(
                    Method::POST,
                    &format!("/api/v1/users/{}/activate", encode(&user)),
                    NO_BODY,
                )
                .await?;
            show_user(remote, &user);
        }
        UsersCommand::Timeline { user } => super::reports::timeline(remote, &user).await?,
        UsersCommand::Delete { user, yes } => {
            super::prompt::confirm(&super::impact::user_deletion(&client, &user).await?, yes)?;
            client
                .request_empty(Method::DELETE, &format!("/api/v1/users/{}", encode(&user)), NO_BODY)
                .await?;
            if !remote.json {
                println!("deleted user {user}");
            }
        }
    }
    Ok(())
}
