//! Importing an app's accounts: the settings that say how an account is matched to a directory
//! user, the account as matching sees it, and `plan_import`, the pure decision per account
//! (linked, already linked, created, conflict, unmatched, ignored) that a dry run shows and a
//! real run carries out.

use super::mapping::{Mapping, get_ignoring_case};
use super::user::User;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// An account attribute that can match a directory user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MatchAttribute {
    /// The account's `userName` (case-insensitive, as RFC 7643 defines it).
    UserName,
    /// Any of the account's `emails` values (case-insensitive).
    Email,
    /// The account's `externalId` (case-sensitive, as RFC 7643 defines it).
    ExternalId,
}

impl MatchAttribute {
    /// The SCIM attribute name.
    pub fn scim_name(self) -> &'static str {
        match self {
            MatchAttribute::UserName => "userName",
            MatchAttribute::Email => "emails",
            MatchAttribute::ExternalId => "externalId",
        }
    }

    /// Whether values compare regardless of letter case.
    fn case_insensitive(self) -> bool {
        !matches!(self, MatchAttribute::ExternalId)
    }

    /// The profile attribute compared with this account attribute: the one the app's mapping
    /// copies into it unchanged, else the natural one (`username`, `email`, `external_id`).
    pub fn profile_attribute(self, mapping: &Mapping) -> String {
        let (target, natural) = match self {
            MatchAttribute::UserName => ("userName", "username"),
            MatchAttribute::Email => ("emails", "email"),
            MatchAttribute::ExternalId => ("externalId", "external_id"),
        };
        let mapped = match self {
            MatchAttribute::Email => mapping.rules.iter().find_map(|rule| match &rule.source {
                super::mapping::Source::Attribute(name)
                    if rule
                        .target
                        .get(..6)
                        .is_some_and(|head| head.eq_ignore_ascii_case("emails")) =>
                {
                    Some(name.as_str())
                }
                _ => None,
            }),
            _ => mapping.source_of(target),
        };
        mapped.unwrap_or(natural).to_owned()
    }
}

fn default_match_on() -> Vec<MatchAttribute> {
    vec![MatchAttribute::UserName, MatchAttribute::Email]
}

/// How an app's accounts are imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// The account attributes that match a directory user. An account matches every user equal
    /// to it on any of them; one match links, several are a conflict. Default: userName, email.
    #[serde(default = "default_match_on")]
    pub match_on: Vec<MatchAttribute>,
    /// Create a directory user (source `import`) for an account that matches nobody.
    #[serde(default)]
    pub create_users: bool,
    /// Add linked and created users to this group, so that its policy assigns them the app and
    /// the engine keeps their accounts instead of deprovisioning them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_group: Option<Uuid>,
    /// When the app pushes groups: create a directory group (with the members whose accounts
    /// are linked) for a target group no directory group is named like.
    #[serde(default)]
    pub create_groups: bool,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            match_on: default_match_on(),
            create_users: false,
            assign_group: None,
            create_groups: false,
        }
    }
}

impl ImportSettings {
    /// Checks the rule: at least one attribute, none twice.
    pub fn validate(&self) -> super::Result<()> {
        if self.match_on.is_empty() {
            return Err(super::Error::invalid(
                "sync.import.match_on",
                "name at least one account attribute to match on (userName, email, externalId)",
            ));
        }
        let distinct: HashSet<_> = self.match_on.iter().collect();
        if distinct.len() != self.match_on.len() {
            return Err(super::Error::invalid(
                "sync.import.match_on",
                "an attribute is named twice",
            ));
        }
        Ok(())
    }
}

/// An account as a target lists it, reduced to what import and reconciliation compare.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetAccount {
    /// The target's id.
    pub id: String,
    /// `userName`.
    pub user_name: Option<String>,
    /// The `emails` values.
    pub emails: Vec<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `active`, when the target says.
    pub active: Option<bool>,
    /// The resource as listed, without `meta`, as JSON text: a hundred thousand accounts held
    /// as text take a tenth of the memory they take as parsed values.
    text: Box<str>,
}

impl TargetAccount {
    /// Reads a listed resource; `None` without a non-empty `id`.
    pub fn from_resource(mut resource: Value) -> Option<Self> {
        let object = resource.as_object_mut()?;
        object.retain(|key, _| !key.eq_ignore_ascii_case("meta"));
        let text = |key: &str| {
            get_ignoring_case(object, key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let id = text("id")?;
        let user_name = text("userName");
        let external_id = text("externalId");
        let active = get_ignoring_case(object, "active").and_then(Value::as_bool);
        let emails = get_ignoring_case(object, "emails")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|entry| entry.as_object().and_then(|e| get_ignoring_case(e, "value")))
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            id,
            user_name,
            emails,
            external_id,
            active,
            text: resource.to_string().into_boxed_str(),
        })
    }

    /// The resource as listed, without `meta`.
    pub fn resource(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The values this account offers for `attribute`.
    fn values(&self, attribute: MatchAttribute) -> Vec<&str> {
        match attribute {
            MatchAttribute::UserName => self.user_name.iter().map(String::as_str).collect(),
            MatchAttribute::Email => self.emails.iter().map(String::as_str).collect(),
            MatchAttribute::ExternalId => self.external_id.iter().map(String::as_str).collect(),
        }
    }
}

fn key_of(attribute: MatchAttribute, value: &str) -> String {
    if attribute.case_insensitive() {
        value.to_lowercase()
    } else {
        value.to_owned()
    }
}

/// The directory as matching sees it: for each match attribute, the users by their value.
#[derive(Debug, Default)]
pub struct DirectoryIndex {
    by: HashMap<(MatchAttribute, String), Vec<Uuid>>,
    usernames: HashSet<String>,
    names: HashMap<Uuid, String>,
}

impl DirectoryIndex {
    /// Indexes `users` on the attributes of `settings`, comparing each with the profile
    /// attribute `mapping` copies into it.
    pub fn new<'a>(users: impl IntoIterator<Item = &'a User>, settings: &ImportSettings, mapping: &Mapping) -> Self {
        let sources: Vec<(MatchAttribute, String)> = settings
            .match_on
            .iter()
            .map(|attribute| (*attribute, attribute.profile_attribute(mapping)))
            .collect();
        let mut index = DirectoryIndex::default();
        for user in users {
            index.usernames.insert(user.username_key());
            index.names.insert(user.id, user.username.clone());
            for (attribute, source) in &sources {
                let value = super::mapping::profile_value_text(user, source);
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    let users = index.by.entry((*attribute, key_of(*attribute, &value))).or_default();
                    if !users.contains(&user.id) {
                        users.push(user.id);
                    }
                }
            }
        }
        index
    }

    /// The users equal to `account` on any of `attributes`, each once, in the order found.
    fn candidates(&self, account: &TargetAccount, attributes: &[MatchAttribute]) -> Vec<Uuid> {
        let mut found: Vec<Uuid> = Vec::new();
        for attribute in attributes {
            for value in account.values(*attribute) {
                for user in self
                    .by
                    .get(&(*attribute, key_of(*attribute, value)))
                    .into_iter()
                    .flatten()
                {
                    if !found.contains(user) {
                        found.push(*user);
                    }
                }
            }
        }
        found
    }

    /// The username of a directory user.
    pub fn username(&self, user: Uuid) -> Option<&str> {
        self.names.get(&user).map(String::as_str)
    }
}

/// The accounts of one app the hub already knows: which target id belongs to which user.
#[derive(Debug, Default, Clone)]
pub struct Links {
    by_target: HashMap<String, Uuid>,
    by_user: HashMap<Uuid, String>,
}

impl Links {
    /// Links from `(user, target id)` pairs.
    pub fn new(pairs: impl IntoIterator<Item = (Uuid, String)>) -> Self {
        let mut links = Links::default();
        for (user, target) in pairs {
            links.by_target.insert(target.clone(), user);
            links.by_user.insert(user, target);
        }
        links
    }

    /// The user linked to a target id.
    pub fn user_of(&self, target_id: &str) -> Option<Uuid> {
        self.by_target.get(target_id).copied()
    }

    /// The target id linked to a user.
    pub fn target_of(&self, user: Uuid) -> Option<&str> {
        self.by_user.get(&user).map(String::as_str)
    }
}

/// What an import does with one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ImportOutcome {
    /// One directory user matches: the account is linked to them.
    Linked {
        /// The user.
        user_id: Uuid,
    },
    /// The account was linked before; nothing changes.
    AlreadyLinked {
        /// The user.
        user_id: Uuid,
    },
    /// Nobody matches and the app may create users: a directory user is created and linked.
    Created {
        /// The username the new user gets.
        username: String,
    },
    /// Several users match, or the one that matches is linked to another account: an
    /// administrator decides.
    Conflict {
        /// The users that match.
        candidates: Vec<Uuid>,
        /// Why it is not linked.
        reason: String,
    },
    /// Nobody matches, and nothing is created.
    Unmatched {
        /// Why.
        reason: String,
    },
    /// An administrator chose to ignore this account.
    Ignored,
}

impl ImportOutcome {
    /// The outcome's short name.
    pub fn name(&self) -> &'static str {
        match self {
            ImportOutcome::Linked { .. } => "linked",
            ImportOutcome::AlreadyLinked { .. } => "already_linked",
            ImportOutcome::Created { .. } => "created",
            ImportOutcome::Conflict { .. } => "conflict",
            ImportOutcome::Unmatched { .. } => "unmatched",
            ImportOutcome::Ignored => "ignored",
        }
    }
}

/// The decision for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The account.
    pub account: TargetAccount,
    /// What happens to it.
    pub outcome: ImportOutcome,
}

/// Decides, account by account in the order listed, what an import does: an account already
/// linked stays so; else the users equal to it on any match attribute are its candidates. One
/// candidate not linked to another account (before or earlier in this plan) is linked; several,
/// or one linked elsewhere, are a conflict; none creates a user when `settings` allows and the
/// account's `userName` is free, else the account is unmatched. Accounts an administrator
/// ignored stay ignored.
pub fn plan_import(
    accounts: Vec<TargetAccount>,
    directory: &DirectoryIndex,
    links: &Links,
    ignored: &HashSet<String>,
    settings: &ImportSettings,
) -> Vec<ImportItem> {
    let mut claimed: HashMap<Uuid, String> = HashMap::new();
    let mut new_usernames: HashSet<String> = HashSet::new();
    let mut items = Vec::with_capacity(accounts.len());
    for account in accounts {
        let outcome = decide(
            &account,
            directory,
            links,
            ignored,
            settings,
            &mut claimed,
            &mut new_usernames,
        );
        items.push(ImportItem { account, outcome });
    }
    items
}

fn decide(
    account: &TargetAccount,
    directory: &DirectoryIndex,
    links: &Links,
    ignored: &HashSet<String>,
    settings: &ImportSettings,
    claimed: &mut HashMap<Uuid, String>,
    new_usernames: &mut HashSet<String>,
) -> ImportOutcome {
    if let Some(user_id) = links.user_of(&account.id) {
        return ImportOutcome::AlreadyLinked { user_id };
    }
    if ignored.contains(&account.id) {
        return ImportOutcome::Ignored;
    }
    let candidates = directory.candidates(account, &settings.match_on);
    match candidates.as_slice() {
        [] => {
            if !settings.create_users {
                return ImportOutcome::Unmatched {
                    reason: "no directory user matches, and the app does not create users from imports".into(),
                };
            }
            let Some(username) = account.user_name.clone() else {
                return ImportOutcome::Unmatched {
                    reason: "no directory user matches, and the account has no userName to create one with".into(),
                };
            };
            let key = username.to_lowercase();
            if directory.usernames.contains(&key) || !new_usernames.insert(key) {
                return ImportOutcome::Conflict {
                    candidates: Vec::new(),
                    reason: format!(
                        "no directory user matches on the import rule, but the username '{username}' is taken"
                    ),
                };
            }
            ImportOutcome::Created { username }
        }
        [user_id] => {
            let elsewhere = links
                .target_of(*user_id)
                .map(str::to_owned)
                .or_else(|| claimed.get(user_id).cloned());
            match elsewhere {
                Some(other) => ImportOutcome::Conflict {
                    candidates: vec![*user_id],
                    reason: format!(
                        "the matching user '{}' is linked to another account ({other})",
                        directory.username(*user_id).unwrap_or_default()
                    ),
                },
                None => {
                    claimed.insert(*user_id, account.id.clone());
                    ImportOutcome::Linked { user_id: *user_id }
                }
            }
        }
        several => ImportOutcome::Conflict {
            candidates: several.to_vec(),
            reason: format!(
                "{} directory users match ({})",
                several.len(),
                several
                    .iter()
                    .map(|id| directory.username(*id).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// A group as a target lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// The target's id.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// The target ids of its members.
    pub members: Vec<String>,
}

impl TargetGroup {
    /// Reads a listed group; `None` without an id or a display name.
    pub fn from_resource(resource: &Value) -> Option<Self> {
        let object = resource.as_object()?;
        let text = |key: &str| {
            get_ignoring_case(object, key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let members = get_ignoring_case(object, "members")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|m| m.as_object().and_then(|m| get_ignoring_case(m, "value")))
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            id: text("id")?,
            display_name: text("displayName")?,
            members,
        })
    }
}

/// What an import does with one group of the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GroupImportOutcome {
    /// A directory group has its name: the hub now knows it as that group's copy.
    GroupLinked {
        /// The directory group.
        group_id: Uuid,
    },
    /// Linked before; nothing changes.
    GroupAlreadyLinked {
        /// The directory group.
        group_id: Uuid,
    },
    /// No directory group has its name and the app may create groups: one is created, with the
    /// members whose accounts are linked.
    GroupCreated {
        /// The new group's name.
        name: String,
    },
    /// Left alone.
    GroupUnmatched {
        /// Why.
        reason: String,
    },
}

impl GroupImportOutcome {
    /// The outcome's short name.
    pub fn name(&self) -> &'static str {
        match self {
            GroupImportOutcome::GroupLinked { .. } => "group_linked",
            GroupImportOutcome::GroupAlreadyLinked { .. } => "group_already_linked",
            GroupImportOutcome::GroupCreated { .. } => "group_created",
            GroupImportOutcome::GroupUnmatched { .. } => "group_unmatched",
        }
    }
}

/// Decides, group by group in the order listed, what an import does with the target's groups:
/// one linked before stays so; one named like a directory group (regardless of case) that a
/// policy of the app names (`managed`: the engine pushes only those, and would remove a pushed
/// group no policy names) and that is not linked to another target group is linked; otherwise a
/// directory group is created when `create` allows and its name is free (it is managed once a
/// policy names it), else the group is left alone. `directory` holds the directory groups by
/// lower-cased name; `linked` the pushed-group records, target id to group.
pub fn plan_group_import(
    groups: Vec<TargetGroup>,
    directory: &HashMap<String, Uuid>,
    linked: &HashMap<String, Uuid>,
    managed: &HashSet<Uuid>,
    create: bool,
) -> Vec<(TargetGroup, GroupImportOutcome)> {
    let mut taken: HashSet<Uuid> = linked.values().copied().collect();
    let mut new_names: HashSet<String> = HashSet::new();
    groups
        .into_iter()
        .map(|group| {
            let key = group.display_name.to_lowercase();
            let outcome = if let Some(group_id) = linked.get(&group.id) {
                GroupImportOutcome::GroupAlreadyLinked { group_id: *group_id }
            } else if let Some(group_id) = directory.get(&key) {
                if !managed.contains(group_id) {
                    GroupImportOutcome::GroupUnmatched {
                        reason: format!(
                            "no policy of the app names the directory group '{}'; add one for the hub to manage it",
                            group.display_name
                        ),
                    }
                } else if taken.insert(*group_id) {
                    GroupImportOutcome::GroupLinked { group_id: *group_id }
                } else {
                    GroupImportOutcome::GroupUnmatched {
                        reason: format!(
                            "the directory group '{}' is linked to another group of the app",
                            group.display_name
                        ),
                    }
                }
            } else if !create {
                GroupImportOutcome::GroupUnmatched {
                    reason: "no directory group has this name, and the app does not create groups from imports".into(),
                }
            } else if new_names.insert(key) {
                GroupImportOutcome::GroupCreated {
                    name: group.display_name.clone(),
                }
            } else {
                GroupImportOutcome::GroupUnmatched {
                    reason: "another group of the app has the same name".into(),
                }
            };
            (group, outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests;
