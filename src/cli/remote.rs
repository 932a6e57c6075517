//! The remote commands: each one is a call (or a few) to the admin REST API.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{cell, print_fields, print_json, print_table, when};
use crate::api::{IssuedTokenBody, MembershipChange};
use crate::domain::Page;
use crate::domain::admin::ApiToken;
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::group::Group;
use crate::domain::user::User;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::io::BufRead;
use std::path::PathBuf;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
const NO_BODY: Option<&Value> = None;

/// The CLI config file.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct CliConfig {
    server: Option<String>,
    token: Option<String>,
}

fn config_path(remote: &RemoteArgs) -> Option<PathBuf> {
    remote
        .cli_config
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/provisio/cli.toml")))
}

fn read_config(remote: &RemoteArgs) -> Result<CliConfig, ClientError> {
    let Some(path) = config_path(remote) else {
        return Ok(CliConfig::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
        Err(e) => Err(ClientError::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// A client for the hub the remote flags (or the CLI config file) name.
pub(super) fn connect(remote: &RemoteArgs) -> Result<Client, ClientError> {
    let file = read_config(remote)?;
    let server = remote
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let token = remote.token.clone().or(file.token);
    if token.is_none() {
        return Err(ClientError::Usage(
            "no API token: pass --token, set PROVISIO_TOKEN, run `provisio login`, or create one with `provisio admin-token`".into(),
        ));
    }
    Client::new(&server, token)
}

/// `provisio login`.
pub async fn login(remote: &RemoteArgs, username: &str) -> Result<(), ClientError> {
    let file = read_config(remote)?;
    let server = remote
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let client = Client::new(&server, None)?;
    let mut lines = std::io::stdin().lock().lines();
    let mut read = |prompt: &str| -> Result<String, ClientError> {
        eprint!("{prompt}: ");
        match lines.next() {
            Some(Ok(line)) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
            _ => Err(ClientError::Usage(format!("expected the {prompt} on standard input"))),
        }
    };
    let password = read("password")?;
    let body = json!({"username": username, "password": password, "token_name": "cli-login"});
    let issued: IssuedTokenBody = match client.request(Method::POST, "/api/v1/auth/login", Some(&body)).await {
        Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::FORBIDDEN => {
            eprintln!("the one-time password must be replaced");
            let new_password = read("new password")?;
            let body = json!({"username": username, "password": password, "new_password": new_password, "token_name": "cli-login"});
            client.request(Method::POST, "/api/v1/auth/login", Some(&body)).await?
        }
        other => other?,
    };
    let path = config_path(remote)
        .ok_or_else(|| ClientError::Usage("no HOME and no --cli-config: cannot save the token".into()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let config = CliConfig {
        server: Some(server),
        token: Some(issued.secret),
    };
    let text = toml::to_string(&config).map_err(|e| ClientError::Other(e.to_string()))?;
    write_private(&path, &text)?;
    eprintln!("logged in; token saved in {}", path.display());
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), ClientError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))
}

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
    /// Delete a user.
    Delete {
        /// Id or username.
        user: String,
    },
    /// Everything that happened to a user, in the directory and in every app.
    Timeline {
        /// Id or username (also of a deleted user).
        user: String,
    },
}

async fn attribute_types(client: &Client) -> Result<Vec<AttributeDefinition>, ClientError> {
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

fn user_rows(users: &[User]) -> Vec<Vec<String>> {
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
        UsersCommand::Delete { user } => {
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

// ---------------------------------------------------------------- groups

/// `provisio groups ...`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Create a group.
    Create {
        /// Group name.
        name: String,
    },
    /// List groups.
    List {
        /// Text to search for in names.
        #[arg(long)]
        search: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a group (by id or name).
    Show {
        /// Id or name.
        group: String,
    },
    /// Rename a group.
    Rename {
        /// Id or current name.
        group: String,
        /// New name.
        name: String,
    },
    /// Delete a group.
    Delete {
        /// Id or name.
        group: String,
    },
    /// Add users to a group.
    AddMember {
        /// Id or name of the group.
        group: String,
        /// Ids or usernames.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove users from a group.
    RemoveMember {
        /// Id or name of the group.
        group: String,
        /// Ids or usernames.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// List a group's members.
    Members {
        /// Id or name of the group.
        group: String,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
}

fn group_rows(groups: &[Group]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| vec![g.name.clone(), g.member_count.to_string(), g.id.to_string()])
        .collect()
}

fn show_group(remote: &RemoteArgs, group: &Group) {
    if remote.json {
        print_json(group);
    } else {
        print_fields(&[
            ("id", group.id.to_string()),
            ("name", group.name.clone()),
            ("members", group.member_count.to_string()),
            ("external_id", cell(&group.external_id)),
            ("source", group.source.as_str().to_owned()),
            ("created_at", when(group.created_at)),
            ("updated_at", when(group.updated_at)),
        ]);
    }
}

fn paged(path: &str, limit: u32, cursor: &Option<String>) -> String {
    let mut out = format!("{path}?limit={limit}");
    if let Some(c) = cursor {
        out.push_str(&format!("&cursor={}", encode(c)));
    }
    out
}

/// `provisio groups ...`.
pub async fn groups(remote: &RemoteArgs, command: GroupsCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        GroupsCommand::Create { name } => {
            let group: Group = client
                .request(Method::POST, "/api/v1/groups", Some(&json!({"name": name})))
                .await?;
            show_group(remote, &group);
        }
        GroupsCommand::List { search, limit, cursor } => {
            let mut path = paged("/api/v1/groups", limit, &cursor);
            if let Some(q) = search {
                path.push_str(&format!("&q={}", encode(&q)));
            }
            let page: Page<Group> = client.request(Method::GET, &path, NO_BODY).await?;
            if remote.json {
                print_json(&page);
            } else {
                print_table(&["NAME", "MEMBERS", "ID"], &group_rows(&page.items));
                if let Some(next) = page.next_cursor {
                    eprintln!("more groups: --cursor {next}");
                }
            }
        }
        GroupsCommand::Show { group } => {
            let group: Group = client
                .request(Method::GET, &format!("/api/v1/groups/{}", encode(&group)), NO_BODY)
                .await?;
            show_group(remote, &group);
        }
        GroupsCommand::Rename { group, name } => {
            let group: Group = client
                .request(
                    Method::PATCH,
                    &format!("/api/v1/groups/{}", encode(&group)),
                    Some(&json!({"name": name})),
                )
                .await?;
            show_group(remote, &group);
        }
        GroupsCommand::Delete { group } => {
            client
                .request_empty(Method::DELETE, &format!("/api/v1/groups/{}", encode(&group)), NO_BODY)
                .await?;
            if !remote.json {
                println!("deleted group {group}");
            }
        }
        GroupsCommand::AddMember { group, users } => {
            change_members(remote, &client, Method::PUT, &group, &users).await?
        }
        GroupsCommand::RemoveMember { group, users } => {
            change_members(remote, &client, Method::DELETE, &group, &users).await?
        }
        GroupsCommand::Members { group, limit, cursor } => {
            let path = paged(&format!("/api/v1/groups/{}/members", encode(&group)), limit, &cursor);
            let page: Page<User> = client.request(Method::GET, &path, NO_BODY).await?;
            if remote.json {
                print_json(&page);
            } else {
                print_table(&["USERNAME", "NAME", "EMAIL", "ACTIVE", "ID"], &user_rows(&page.items));
                if let Some(next) = page.next_cursor {
                    eprintln!("more members: --cursor {next}");
                }
            }
        }
    }
    Ok(())
}

async fn change_members(
    remote: &RemoteArgs,
    client: &Client,
    method: Method,
    group: &str,
    users: &[String],
) -> Result<(), ClientError> {
    let adding = method == Method::PUT;
    let mut results = Vec::new();
    for user in users {
        let path = format!("/api/v1/groups/{}/members/{}", encode(group), encode(user));
        let change: MembershipChange = client.request(method.clone(), &path, NO_BODY).await?;
        results.push(json!({"user": user, "changed": change.changed}));
        if !remote.json {
            let verb = match (adding, change.changed) {
                (true, true) => "added to",
                (true, false) => "already in",
                (false, true) => "removed from",
                (false, false) => "was not in",
            };
            println!("{user} {verb} {group}");
        }
    }
    if remote.json {
        print_json(&results);
    }
    Ok(())
}

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
    /// Delete a custom attribute that no user holds a value for.
    Delete {
        /// Name.
        name: String,
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
        AttributesCommand::Delete { name } => {
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

// ---------------------------------------------------------------- tokens

/// `provisio tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token; prints only the secret (or the whole record with --json).
    Create {
        /// A label for the token.
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

/// `provisio tokens ...` (collection `/api/v1/tokens`) and `provisio scim-tokens ...`
/// (collection `/api/v1/scim-tokens`).
pub async fn tokens(remote: &RemoteArgs, command: TokensCommand, collection: &str) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        TokensCommand::Create { name } => {
            let issued: IssuedTokenBody = client
                .request(Method::POST, collection, Some(&json!({"name": name})))
                .await?;
            if remote.json {
                print_json(&issued)
            } else {
                println!("{}", issued.secret)
            }
        }
        TokensCommand::List => {
            let tokens: Vec<ApiToken> = client.request(Method::GET, collection, NO_BODY).await?;
            if remote.json {
                print_json(&tokens);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            format!("{}...", t.prefix),
                            when(t.created_at),
                            t.revoked_at
                                .map(|r| format!("revoked {r}"))
                                .unwrap_or_else(|| "active".into()),
                            t.id.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "PREFIX", "CREATED", "STATE", "ID"], &rows);
            }
        }
        TokensCommand::Revoke { id } => {
            let token: ApiToken = client
                .request(Method::DELETE, &format!("{collection}/{}", encode(&id)), NO_BODY)
                .await?;
            if remote.json {
                print_json(&token)
            } else {
                println!("revoked token {} ({})", token.name, token.id)
            }
        }
    }
    Ok(())
}
