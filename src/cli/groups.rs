//! `provisio groups ...`: groups and memberships over the admin API.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{cell, print_fields, print_json, print_table, when};
use super::session::connect;
use super::users::user_rows;
use crate::api::MembershipChange;
use crate::domain::Page;
use crate::domain::group::Group;
use crate::domain::user::User;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

const NO_BODY: Option<&Value> = None;

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
    /// Delete a group (asks first on a terminal, naming the apps its members lose).
    Delete {
        /// Id or name.
        group: String,
        /// Do not ask: confirm for scripts.
        #[arg(long)]
        yes: bool,
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

pub(super) fn paged(path: &str, limit: u32, cursor: &Option<String>) -> String {
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
        GroupsCommand::Delete { group, yes } => {
            super::prompt::confirm(&super::impact::group_deletion(&client, &group).await?, yes)?;
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
