//! What a destructive command is about to do, in words, for its confirmation: which apps will
//! deprovision a deleted user or a deleted group's members, what removing an app leaves behind,
//! which mappings read an attribute. Read through the same API the command then calls.

use super::client::{Client, ClientError, encode};
use crate::domain::app::{AccountState, App, AppAccount};
use crate::domain::attribute::AttributeDefinition;
use crate::domain::group::Group;
use crate::domain::user::User;
use crate::service::apps::PolicyView;
use reqwest::Method;
use serde_json::Value;

const NO_BODY: Option<&Value> = None;

async fn apps(client: &Client) -> Result<Vec<App>, ClientError> {
    client.request(Method::GET, "/api/v1/apps", NO_BODY).await
}

async fn accounts(client: &Client, app: &App) -> Result<Vec<AppAccount>, ClientError> {
    client
        .request(Method::GET, &format!("/api/v1/apps/{}/accounts", app.id), NO_BODY)
        .await
}

/// `users delete USER`: the user and, per app holding an account, what deletion does there.
pub async fn user_deletion(client: &Client, reference: &str) -> Result<Vec<String>, ClientError> {
    let user: User = client
        .request(Method::GET, &format!("/api/v1/users/{}", encode(reference)), NO_BODY)
        .await?;
    let mut affected = Vec::new();
    for app in apps(client).await? {
        let holds = accounts(client, &app)
            .await?
            .iter()
            .any(|a| a.user_id == user.id && a.state != AccountState::Deleted);
        if holds {
            affected.push(format!("{} ({})", app.name, app.deprovision.on_delete.as_str()));
        }
    }
    let mut summary = vec![format!("Delete user '{}' ({})?", user.username, user.id)];
    summary.push(if affected.is_empty() {
        "They have no account in any app.".to_owned()
    } else {
        format!(
            "Their accounts will be deprovisioned in: {} (each app's choice for deleted users).",
            affected.join(", ")
        )
    });
    Ok(summary)
}

/// `groups delete GROUP`: the group, its members, and the apps it gives access to.
pub async fn group_deletion(client: &Client, reference: &str) -> Result<Vec<String>, ClientError> {
    let group: Group = client
        .request(Method::GET, &format!("/api/v1/groups/{}", encode(reference)), NO_BODY)
        .await?;
    let policies: Vec<PolicyView> = client.request(Method::GET, "/api/v1/policies", NO_BODY).await?;
    let apps: Vec<String> = policies
        .iter()
        .filter(|p| p.policy.group_id == group.id)
        .map(|p| p.app_name.clone())
        .collect();
    let mut summary = vec![format!(
        "Delete group '{}' with {} members?",
        group.name, group.member_count
    )];
    summary.push(if apps.is_empty() {
        "It gives access to no app.".to_owned()
    } else {
        format!(
            "Its members lose the access it gives to: {} (unless another group gives it), and their accounts there are deprovisioned.",
            apps.join(", ")
        )
    });
    Ok(summary)
}

/// `apps delete APP`: the app and the accounts left behind in it.
pub async fn app_deletion(client: &Client, reference: &str) -> Result<Vec<String>, ClientError> {
    let app: App = client
        .request(Method::GET, &format!("/api/v1/apps/{}", encode(reference)), NO_BODY)
        .await?;
    let live = accounts(client, &app)
        .await?
        .iter()
        .filter(|a| a.state != AccountState::Deleted)
        .count();
    Ok(vec![
        format!("Remove app '{}' ({}) from the hub?", app.name, app.base_url),
        format!(
            "Its {live} accounts stay in the app as they are; the hub stops managing them and its policies go (its report records stay)."
        ),
    ])
}

/// `attributes delete NAME`: the attribute and the apps whose mapping reads it.
pub async fn attribute_deletion(client: &Client, name: &str) -> Result<Vec<String>, ClientError> {
    let definition: AttributeDefinition = client
        .request(Method::GET, &format!("/api/v1/attributes/{}", encode(name)), NO_BODY)
        .await?;
    let readers: Vec<String> = apps(client)
        .await?
        .into_iter()
        .filter(|app| app.mapping.custom_attributes_used().contains(&definition.name))
        .map(|app| app.name)
        .collect();
    let mut summary = vec![format!("Delete the custom attribute '{}'?", definition.name)];
    if !readers.is_empty() {
        summary.push(format!("The mappings of these apps read it: {}.", readers.join(", ")));
    }
    Ok(summary)
}
