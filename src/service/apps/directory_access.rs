//! What apps mean for one user or one group of the directory: a user's accounts in apps (and so
//! what deleting them deprovisions), provisioning a user in every app at once, and the apps a
//! group gives access to. Used by the console's directory pages.

use super::{AppService, PolicyView};
use crate::domain::Result;
use crate::domain::app::{AccountState, AppAccount, DeprovisionAction};
use crate::store::{AppStore, AttributeStore, ChangeLogStore, GroupStore, QueueStore, ReportStore, UserStore};
use serde::Serialize;
use uuid::Uuid;

/// One user's account in one app, with what deleting the user does there.
#[derive(Debug, Clone, Serialize)]
pub struct UserAccountView {
    /// The app's id.
    pub app_id: Uuid,
    /// The app's name.
    pub app_name: String,
    /// The account as the engine remembers it.
    pub account: AppAccount,
    /// The app's choice for deleted users.
    pub on_delete: DeprovisionAction,
}

impl<S> AppService<S>
where
    S: AppStore + AttributeStore + UserStore + GroupStore + QueueStore + ReportStore + ChangeLogStore + Clone,
{
    /// The accounts a user has (or had: deleted ones included) in apps, by app name.
    pub async fn accounts_of_user(&self, user: &str) -> Result<Vec<UserAccountView>> {
        let user = self.find_user(user).await?;
        let mut views = Vec::new();
        for app in self.store.list_apps().await? {
            if let Some(account) = self.store.get_account(app.id, user.id).await? {
                views.push(UserAccountView {
                    app_id: app.id,
                    app_name: app.name,
                    account,
                    on_delete: app.deprovision.on_delete,
                });
            }
        }
        Ok(views)
    }

    /// What deleting a user deprovisions: the apps where they hold an account that is not yet
    /// deleted, each with its choice for deleted users (the same apps `provisio users delete`
    /// names in its confirmation).
    pub async fn user_deletion_impact(&self, user: &str) -> Result<Vec<UserAccountView>> {
        let mut views = self.accounts_of_user(user).await?;
        views.retain(|v| v.account.state != AccountState::Deleted);
        Ok(views)
    }

    /// Queues one user's reconciliation now in every app that gives them access or holds an
    /// account of theirs; returns the names of those apps (empty: no app concerns the user).
    pub async fn provision_user_everywhere(&self, user: &str) -> Result<Vec<String>> {
        let user = self.find_user(user).await?;
        let mut queued = Vec::new();
        for app in self.store.list_apps().await? {
            let concerned = self.store.is_assigned(app.id, user.id).await?
                || self.store.get_account(app.id, user.id).await?.is_some();
            if !concerned {
                continue;
            }
            self.enqueue_manual(app.id, user.id).await?;
            queued.push(app.name);
        }
        Ok(queued)
    }

    /// The policies that give a group's members access to apps, with the apps' names.
    pub async fn policies_of_group(&self, group: &str) -> Result<Vec<PolicyView>> {
        let group = self.find_group(group).await?;
        let mut views = self.list_policies(None).await?;
        views.retain(|v| v.policy.group_id == group.id);
        Ok(views)
    }
}
