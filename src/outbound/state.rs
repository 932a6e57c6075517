//! Loading what one app should hold of one user or group, beside what the engine last pushed
//! there: the one loader the engine and the dry run share, so that a dry run predicts what a run
//! does.

use super::plan::{DesiredGroup, GroupPlan, UserPlan, access_loss, plan_group, plan_user};
use crate::domain::app::{AccessLoss, App, AppAccount, AppGroup};
use crate::domain::user::User;
use crate::domain::{Result, now};
use crate::store::{AppStore, GroupStore, UserStore};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Users read per statement by [`UserState::load_many`].
const LOAD_CHUNK: usize = 500;

/// One user as one app should see them.
#[derive(Debug, Clone)]
pub struct UserState {
    /// The directory user (`None`: deleted).
    pub user: Option<User>,
    /// What the engine remembers of the user's account in the app.
    pub account: Option<AppAccount>,
    /// Whether the user is assigned: active and in a group with a policy for the app.
    pub assigned: bool,
}

impl UserState {
    /// Loads the user, their account in `app` and whether they are assigned.
    pub async fn load<S: AppStore + UserStore>(store: &S, app: &App, user_id: Uuid) -> Result<Self> {
        let user = store.get_user(user_id).await?;
        let account = store.get_account(app.id, user_id).await?;
        let assigned = user.is_some() && store.is_assigned(app.id, user_id).await?;
        Ok(Self {
            user,
            account,
            assigned,
        })
    }

    /// Loads the states of many users in `app`, with a few statements for all of them: what
    /// [`UserState::load`] reads for each.
    pub async fn load_many<S: AppStore + UserStore>(
        store: &S,
        app: &App,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Self>> {
        let mut states = HashMap::with_capacity(user_ids.len());
        for ids in user_ids.chunks(LOAD_CHUNK) {
            let mut users: HashMap<Uuid, User> = store.get_users(ids).await?.into_iter().map(|u| (u.id, u)).collect();
            let mut accounts: HashMap<Uuid, AppAccount> = store
                .get_accounts(app.id, ids)
                .await?
                .into_iter()
                .map(|a| (a.user_id, a))
                .collect();
            let assigned: HashSet<Uuid> = store.assigned_among(app.id, ids).await?.into_iter().collect();
            for id in ids {
                let user = users.remove(id);
                states.insert(
                    *id,
                    Self {
                        assigned: user.is_some() && assigned.contains(id),
                        user,
                        account: accounts.remove(id),
                    },
                );
            }
        }
        Ok(states)
    }

    /// The resource the app should hold (rendered through its mapping), `None` when the user
    /// should have no account; an error when the mapping fails for this user.
    pub fn desired(&self, app: &App) -> Result<Option<Value>> {
        match (&self.user, self.assigned) {
            (Some(user), true) => app.mapping.render(user).map(Some),
            _ => Ok(None),
        }
    }

    /// Why the user has no access (when they have none).
    pub fn loss(&self) -> AccessLoss {
        access_loss(self.user.as_ref())
    }

    /// The plan for a `desired` resource (see [`UserState::desired`]).
    pub fn plan(&self, app: &App, desired: Option<Value>) -> UserPlan {
        plan_user(app, desired, self.account.as_ref(), self.loss(), now())
    }

    /// The user's name: the username, or what was pushed for a deleted user.
    pub fn name(&self) -> Option<String> {
        self.user
            .as_ref()
            .map(|u| u.username.clone())
            .or_else(|| self.account.as_ref().map(|a| a.target_username.clone()))
    }

    /// The user's email: from the directory, or what was pushed for a deleted user.
    pub fn email(&self) -> Option<String> {
        self.user.as_ref().and_then(|u| u.email.clone()).or_else(|| {
            self.account
                .as_ref()
                .and_then(|a| a.pushed["emails"][0]["value"].as_str().map(str::to_owned))
        })
    }
}

/// One group as one app should see it.
#[derive(Debug, Clone)]
pub struct GroupState {
    /// What the app should hold: present when the group exists, has a policy for the app and
    /// the app pushes groups.
    pub desired: Option<DesiredGroup>,
    /// What the engine last pushed.
    pub pushed: Option<AppGroup>,
    /// The group's name (or what was pushed, for a deleted group).
    pub name: Option<String>,
}

impl GroupState {
    /// Loads the group, its members' accounts in `app` and the pushed record.
    pub async fn load<S: AppStore + GroupStore>(store: &S, app: &App, group_id: Uuid) -> Result<Self> {
        let group = store.get_group(group_id).await?;
        let pushed = store.get_app_group(app.id, group_id).await?;
        let name = group
            .as_ref()
            .map(|g| g.name.clone())
            .or_else(|| pushed.as_ref().map(|r| r.pushed_name.clone()));
        let desired = match group {
            Some(group) if app.features.push_groups && store.has_policy(app.id, group_id).await? => {
                Some(DesiredGroup {
                    name: group.name,
                    members: store.member_target_ids(app.id, group_id).await?,
                })
            }
            _ => None,
        };
        Ok(Self { desired, pushed, name })
    }

    /// The plan.
    pub fn plan(&self) -> GroupPlan {
        plan_group(self.desired.as_ref(), self.pushed.as_ref())
    }
}
