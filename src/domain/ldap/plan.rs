//! What a sync of an LDAP source does, decided from what the server returned and what the hub
//! holds, without touching either: [`plan_sync`]. Entries are matched to directory users and
//! groups by their unique id (so renames and moves are followed), a new entry adopts a hub user
//! or group of the same name that no LDAP source owns, users gone from the source (or outside
//! its filter) are deactivated and, after the source's grace period, deleted. Memberships are
//! managed only for users the source owns: a member an administrator added by hand stays.

use super::{LdapEntry, LdapSettings, PROFILE_FIELDS, dn_key};
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::user::{NewUser, User, UserSource, UserUpdate};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// A directory user a source owns, with when it was last seen missing from the source.
#[derive(Debug, Clone)]
pub struct LinkedUser {
    /// The user as stored.
    pub user: User,
    /// The entry's DN when last read.
    pub dn: String,
    /// Since when the entry is missing from the source (`None`: present at the last sync).
    pub gone_since: Option<OffsetDateTime>,
}

/// A directory group a source owns.
#[derive(Debug, Clone)]
pub struct LinkedGroup {
    /// The group's id.
    pub id: Uuid,
    /// Its name as stored.
    pub name: String,
    /// The entry's DN when last read.
    pub dn: String,
    /// Its members.
    pub members: Vec<Uuid>,
}

/// A hub user or group another sync could adopt or collide with, by lower-cased name.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Its id.
    pub id: Uuid,
    /// Whether an LDAP source (this or another) owns it: then it is never adopted.
    pub owned_by_a_source: bool,
}

/// What the hub holds for a source.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The users the source owns, by the entries' unique ids.
    pub users: HashMap<String, LinkedUser>,
    /// The groups the source owns, by the entries' unique ids.
    pub groups: HashMap<String, LinkedGroup>,
    /// Hub users by lower-cased username, for the usernames of entries the source does not own yet.
    pub users_by_name: HashMap<String, (User, bool)>,
    /// Hub groups by lower-cased name, for the names of entries the source does not own yet.
    pub groups_by_name: HashMap<String, Holder>,
}

/// What was read from the server.
#[derive(Debug, Clone, Default)]
pub struct SourceRead {
    /// User entries to compare with the hub: all of them, or in an incremental sync those
    /// changed since the last one.
    pub users: Vec<LdapEntry>,
    /// Group entries to compare, likewise.
    pub groups: Vec<LdapEntry>,
    /// Every user entry present (unique id -> DN), changed or not: who is gone.
    pub present_users: HashMap<String, String>,
    /// Every group entry present (unique id -> DN).
    pub present_groups: HashMap<String, String>,
    /// Whether groups were read at all (a source without a group base reads none, and then
    /// groups it once owned are left alone).
    pub groups_read: bool,
}

/// One change to a user.
#[derive(Debug, Clone, PartialEq)]
pub enum UserStep {
    /// A new entry: create its user.
    Create {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// The user to create.
        user: Box<NewUser>,
    },
    /// A new entry whose username a hub user no source owns holds: the source takes it over
    /// and makes it hold the entry's values.
    Adopt {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// The user taken over.
        user_id: Uuid,
        /// The change to its profile (`None`: it already matches).
        update: Option<Box<UserUpdate>>,
    },
    /// An owned entry whose values, DN or presence changed.
    Update {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN now.
        dn: String,
        /// The user.
        user_id: Uuid,
        /// Its username before the change.
        username: String,
        /// The profile change (`None`: only the DN changed, or it came back unchanged).
        update: Option<Box<UserUpdate>>,
        /// The fields that change.
        changed: Vec<String>,
        /// Whether the entry moved (its DN changed).
        moved: bool,
        /// Whether the entry is back after being missing.
        returned: bool,
    },
    /// An owned entry missing from the source: deactivate its user now.
    Deactivate {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN when last read.
        dn: String,
        /// Since when it is missing, when that was noticed before (the grace period counts from then).
        gone_since: Option<OffsetDateTime>,
        /// The user.
        user_id: Uuid,
        /// Its username.
        username: String,
        /// Whether the user is active (an inactive one only starts its grace period).
        active: bool,
    },
    /// An owned entry missing for longer than the grace period: delete its user.
    Delete {
        /// The entry's unique id.
        ldap_id: String,
        /// The user.
        user_id: Uuid,
        /// Its username.
        username: String,
    },
    /// An entry that cannot become a user, and why (nothing is changed for it).
    Refuse {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// What is wrong.
        reason: String,
    },
}

/// One change to a group.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupStep {
    /// A new entry: create its group.
    Create {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// The group's name.
        name: String,
    },
    /// A new entry whose name a hub group no source owns holds: the source takes it over.
    Adopt {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// The group.
        group_id: Uuid,
    },
    /// An owned entry renamed or moved.
    Update {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN now.
        dn: String,
        /// The group.
        group_id: Uuid,
        /// Its new name, when the name changed.
        rename: Option<String>,
    },
    /// An owned entry missing from the source: delete its group.
    Delete {
        /// The entry's unique id.
        ldap_id: String,
        /// The group.
        group_id: Uuid,
        /// Its name.
        name: String,
    },
    /// An entry that cannot become a group, and why.
    Refuse {
        /// The entry's unique id.
        ldap_id: String,
        /// Its DN.
        dn: String,
        /// What is wrong.
        reason: String,
    },
}

/// Members to add to and remove from one group, by the entries' unique ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MembershipStep {
    /// The group entry's unique id.
    pub group: String,
    /// User entries to add (their users exist once the user steps are applied).
    pub add: Vec<String>,
    /// User entries to remove.
    pub remove: Vec<String>,
}

/// Everything a sync does, in the order it is applied: users, then groups, then memberships.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPlan {
    /// User changes.
    pub users: Vec<UserStep>,
    /// Group changes.
    pub groups: Vec<GroupStep>,
    /// Membership changes.
    pub memberships: Vec<MembershipStep>,
}

/// Decides what a sync of `read` does to the hub's `current` state.
pub fn plan_sync(
    settings: &LdapSettings,
    definitions: &[AttributeDefinition],
    read: &SourceRead,
    current: &Current,
    now: OffsetDateTime,
) -> SyncPlan {
    let mut plan = SyncPlan::default();
    // Users the plan leaves owned by the source after it runs (for memberships).
    let mut owned: HashSet<String> = current.users.keys().cloned().collect();
    let mut names_taken: HashSet<String> = HashSet::new();
    for entry in &read.users {
        let step = plan_user(settings, definitions, entry, current, &mut names_taken, now);
        match &step {
            UserStep::Create { ldap_id, .. } | UserStep::Adopt { ldap_id, .. } => {
                owned.insert(ldap_id.clone());
            }
            UserStep::Refuse { ldap_id, .. } => {
                owned.remove(ldap_id);
            }
            _ => {}
        }
        if !matches!(
            &step,
            UserStep::Update {
                update: None,
                moved: false,
                returned: false,
                ..
            }
        ) {
            plan.users.push(step);
        }
    }
    // Owned users no longer present.
    let mut gone: Vec<(&String, &LinkedUser)> = current
        .users
        .iter()
        .filter(|(id, _)| !read.present_users.contains_key(*id))
        .collect();
    gone.sort_by(|a, b| a.1.user.username.cmp(&b.1.user.username));
    for (ldap_id, linked) in gone {
        owned.remove(ldap_id);
        let due = match (linked.gone_since, settings.delete_after_days) {
            (Some(since), Some(days)) => since + time::Duration::days(i64::from(days)) <= now,
            _ => false,
        };
        if due {
            plan.users.push(UserStep::Delete {
                ldap_id: ldap_id.clone(),
                user_id: linked.user.id,
                username: linked.user.username.clone(),
            });
        } else if linked.gone_since.is_none() || linked.user.active {
            plan.users.push(UserStep::Deactivate {
                ldap_id: ldap_id.clone(),
                dn: linked.dn.clone(),
                gone_since: linked.gone_since,
                user_id: linked.user.id,
                username: linked.user.username.clone(),
                active: linked.user.active,
            });
        }
    }
    if read.groups_read {
        groups::plan_groups(settings, read, current, &owned, &mut plan);
    }
    plan
}

/// The step for one user entry.
fn plan_user(
    settings: &LdapSettings,
    definitions: &[AttributeDefinition],
    entry: &LdapEntry,
    current: &Current,
    names_taken: &mut HashSet<String>,
    now: OffsetDateTime,
) -> UserStep {
    let refuse = |reason: String| UserStep::Refuse {
        ldap_id: entry.id.clone(),
        dn: entry.dn.clone(),
        reason,
    };
    let wanted = match desired_user(settings, definitions, entry) {
        Ok(wanted) => wanted,
        Err(reason) => return refuse(reason),
    };
    let name_key = wanted.username.to_lowercase();
    if names_taken.contains(&name_key) {
        return refuse(format!(
            "another entry of this source has the username '{}'",
            wanted.username
        ));
    }
    let step = user_step(definitions, entry, wanted, current, now);
    // A refused entry leaves its name to the next entry that has it.
    if !matches!(step, UserStep::Refuse { .. }) {
        names_taken.insert(name_key);
    }
    step
}

/// The step for an entry whose values are read and whose username no earlier entry took.
fn user_step(
    definitions: &[AttributeDefinition],
    entry: &LdapEntry,
    wanted: WantedUser,
    current: &Current,
    now: OffsetDateTime,
) -> UserStep {
    let refuse = |reason: String| UserStep::Refuse {
        ldap_id: entry.id.clone(),
        dn: entry.dn.clone(),
        reason,
    };
    let name_key = wanted.username.to_lowercase();
    if let Some(linked) = current.users.get(&entry.id) {
        let update = wanted.into_update(definitions);
        return match linked.user.apply(update.clone(), definitions, now) {
            Ok((_, changed)) => {
                let moved = dn_key(&linked.dn) != dn_key(&entry.dn);
                UserStep::Update {
                    ldap_id: entry.id.clone(),
                    dn: entry.dn.clone(),
                    user_id: linked.user.id,
                    username: linked.user.username.clone(),
                    update: (!changed.is_empty()).then(|| Box::new(update)),
                    changed,
                    moved,
                    returned: linked.gone_since.is_some(),
                }
            }
            Err(e) => refuse(e.to_string()),
        };
    }
    match current.users_by_name.get(&name_key) {
        Some((_, true)) => refuse(format!(
            "the username '{}' belongs to a user another LDAP entry or source owns",
            wanted.username
        )),
        Some((user, false)) => {
            let update = wanted.into_update(definitions);
            match user.apply(update.clone(), definitions, now) {
                Ok((_, changed)) => UserStep::Adopt {
                    ldap_id: entry.id.clone(),
                    dn: entry.dn.clone(),
                    user_id: user.id,
                    update: (!changed.is_empty()).then(|| Box::new(update)),
                },
                Err(e) => refuse(e.to_string()),
            }
        }
        None => {
            let user = wanted.into_new_user();
            match User::create(user.clone(), definitions, UserSource::Ldap, now) {
                Ok(_) => UserStep::Create {
                    ldap_id: entry.id.clone(),
                    dn: entry.dn.clone(),
                    user: Box::new(user),
                },
                Err(e) => refuse(e.to_string()),
            }
        }
    }
}

/// A user as an entry describes it: the fields the source maps, and only those.
#[derive(Debug, Clone)]
struct WantedUser {
    username: String,
    fields: BTreeMap<&'static str, Option<String>>,
    attributes: BTreeMap<String, Value>,
    active: bool,
}

impl WantedUser {
    /// The change that makes a user hold these values (fields the source does not map stay).
    fn into_update(self, definitions: &[AttributeDefinition]) -> UserUpdate {
        let mut update = UserUpdate {
            username: Some(self.username),
            active: Some(self.active),
            ..UserUpdate::default()
        };
        for (field, value) in self.fields {
            match field {
                "given_name" => update.given_name = Some(value),
                "family_name" => update.family_name = Some(value),
                "display_name" => update.display_name = Some(value),
                "formatted_name" => update.formatted_name = Some(value),
                "email" => update.email = Some(value),
                _ => {}
            }
        }
        // Only attributes that exist can be set or cleared.
        update.attributes = self
            .attributes
            .into_iter()
            .filter(|(name, _)| definitions.iter().any(|def| &def.name == name))
            .collect();
        update
    }

    /// The user to create.
    fn into_new_user(self) -> NewUser {
        let mut fields = self.fields;
        let mut take = |name: &str| fields.remove(name).flatten();
        NewUser {
            username: self.username,
            given_name: take("given_name"),
            family_name: take("family_name"),
            display_name: take("display_name"),
            formatted_name: take("formatted_name"),
            email: take("email"),
            active: Some(self.active),
            external_id: None,
            attributes: self.attributes.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            extensions: None,
        }
    }
}

/// Reads the mapped values of an entry; `Err` says why the entry cannot be a user.
fn desired_user(
    settings: &LdapSettings,
    definitions: &[AttributeDefinition],
    entry: &LdapEntry,
) -> Result<WantedUser, String> {
    let username = entry
        .first(&settings.username_attribute)
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            format!(
                "the entry has no {} (the username attribute)",
                settings.username_attribute
            )
        })?;
    let mut fields = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    for (field, attribute) in &settings.profile {
        if let Some(known) = PROFILE_FIELDS.iter().find(|known| **known == field.as_str()) {
            let value = entry
                .first(attribute)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            fields.insert(*known, value);
        } else if let Some(def) = definitions.iter().find(|def| &def.name == field) {
            attributes.insert(field.clone(), attribute_value(def.kind, entry.values(attribute))?);
        }
    }
    Ok(WantedUser {
        username: username.to_owned(),
        fields,
        attributes,
        active: !entry.is_disabled(&settings.disabled),
    })
}

/// An LDAP attribute's values as a custom attribute of type `kind` (`Null`: no value).
fn attribute_value(kind: AttributeType, values: &[String]) -> Result<Value, String> {
    let first = values.iter().map(|v| v.trim()).find(|v| !v.is_empty());
    Ok(match (kind, first) {
        (_, None) => Value::Null,
        (AttributeType::StringList, Some(_)) => Value::Array(
            values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| Value::String(v.to_owned()))
                .collect(),
        ),
        (AttributeType::String, Some(v)) => Value::String(v.to_owned()),
        (AttributeType::Boolean, Some(v)) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(format!("'{v}' is not a boolean")),
        },
        (AttributeType::Integer, Some(v)) => {
            Value::from(v.parse::<i64>().map_err(|_| format!("'{v}' is not a whole number"))?)
        }
        (AttributeType::Datetime, Some(v)) => Value::String(generalized_to_rfc3339(v).unwrap_or_else(|| v.to_owned())),
    })
}

/// An LDAP generalized time (`20261201120000Z`, optional fraction) as RFC 3339, when it is one.
pub fn generalized_to_rfc3339(value: &str) -> Option<String> {
    let digits = value.strip_suffix('Z')?;
    let (whole, fraction) = digits.split_once(['.', ',']).unwrap_or((digits, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let part = |range: std::ops::Range<usize>| &whole[range];
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}{fraction}Z",
        part(0..4),
        part(4..6),
        part(6..8),
        part(8..10),
        part(10..12),
        part(12..14)
    ))
}

mod groups;
#[cfg(test)]
mod tests;
