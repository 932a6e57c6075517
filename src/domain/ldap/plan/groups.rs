//! The group half of a sync's plan: group entries to groups (created, adopted, renamed, moved,
//! deleted) and the memberships of the users the source owns, from groups' member lists (nested
//! groups expanded when the source asks) or users' `memberOf`.

use super::{Current, GroupStep, LinkedGroup, MembershipStep, SourceRead, SyncPlan};
use crate::domain::ldap::{LdapEntry, LdapSettings, MembershipStyle, dn_key};
use crate::domain::values::GroupName;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Group steps and membership steps.
pub(super) fn plan_groups(
    settings: &LdapSettings,
    read: &SourceRead,
    current: &Current,
    owned: &HashSet<String>,
    plan: &mut SyncPlan,
) {
    // Which entry each user DN is (every user present, owned once the user steps ran).
    let user_by_dn: HashMap<String, &String> = read
        .present_users
        .iter()
        .filter(|(id, _)| owned.contains(*id))
        .map(|(id, dn)| (dn_key(dn), id))
        .collect();
    // The ldap id of each member the source owns, by hub user id.
    let owned_user: HashMap<Uuid, &String> = current.users.iter().map(|(id, linked)| (linked.user.id, id)).collect();
    // Each group entry read, by DN, for nested groups.
    let group_by_dn: HashMap<String, &LdapEntry> = read.groups.iter().map(|entry| (dn_key(&entry.dn), entry)).collect();
    let mut names_taken = HashSet::new();
    let mut group_ok: HashSet<String> = HashSet::new();
    for entry in &read.groups {
        let refuse = |reason: String| GroupStep::Refuse {
            ldap_id: entry.id.clone(),
            dn: entry.dn.clone(),
            reason,
        };
        let name = match entry
            .first(&settings.group_name_attribute)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            None => {
                plan.groups.push(refuse(format!(
                    "the entry has no {} (the group name attribute)",
                    settings.group_name_attribute
                )));
                continue;
            }
            Some(name) => match GroupName::parse(name) {
                Ok(name) => name.as_str().to_owned(),
                Err(e) => {
                    plan.groups.push(refuse(e.to_string()));
                    continue;
                }
            },
        };
        if !names_taken.insert(name.to_lowercase()) {
            plan.groups
                .push(refuse(format!("another group entry of this source is named '{name}'")));
            continue;
        }
        let step = match current.groups.get(&entry.id) {
            Some(linked) => {
                let rename = (linked.name != name).then(|| name.clone());
                if rename.is_none() && dn_key(&linked.dn) == dn_key(&entry.dn) {
                    None
                } else {
                    Some(GroupStep::Update {
                        ldap_id: entry.id.clone(),
                        dn: entry.dn.clone(),
                        group_id: linked.id,
                        rename,
                    })
                }
            }
            None => match current.groups_by_name.get(&name.to_lowercase()) {
                Some(holder) if holder.owned_by_a_source => Some(refuse(format!(
                    "the group name '{name}' belongs to a group another LDAP entry or source owns"
                ))),
                Some(holder) => Some(GroupStep::Adopt {
                    ldap_id: entry.id.clone(),
                    dn: entry.dn.clone(),
                    group_id: holder.id,
                }),
                None => Some(GroupStep::Create {
                    ldap_id: entry.id.clone(),
                    dn: entry.dn.clone(),
                    name: name.clone(),
                }),
            },
        };
        if matches!(step, Some(GroupStep::Refuse { .. })) {
            plan.groups.extend(step);
            continue;
        }
        plan.groups.extend(step);
        group_ok.insert(entry.id.clone());
        if settings.membership == MembershipStyle::GroupMembers {
            let wanted = member_entries(settings, entry, &user_by_dn, &group_by_dn);
            let held: BTreeSet<&String> = current
                .groups
                .get(&entry.id)
                .map(|linked| {
                    linked
                        .members
                        .iter()
                        .filter_map(|id| owned_user.get(id).copied())
                        .collect()
                })
                .unwrap_or_default();
            push_membership(plan, &entry.id, &wanted, &held, owned);
        }
    }
    if settings.membership == MembershipStyle::UserMemberOf {
        plan_member_of(settings, read, current, owned, &group_ok, &owned_user, plan);
    }
    // Owned groups no longer present.
    let mut gone: Vec<(&String, &LinkedGroup)> = current
        .groups
        .iter()
        .filter(|(id, _)| !read.present_groups.contains_key(*id))
        .collect();
    gone.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    for (ldap_id, linked) in gone {
        plan.groups.push(GroupStep::Delete {
            ldap_id: ldap_id.clone(),
            group_id: linked.id,
            name: linked.name.clone(),
        });
    }
}

/// The user entries a group entry's member attribute names; with nested groups, also those of
/// the groups it names, and theirs, each group once (a cycle ends where it started).
fn member_entries<'a>(
    settings: &LdapSettings,
    group: &LdapEntry,
    user_by_dn: &HashMap<String, &'a String>,
    group_by_dn: &HashMap<String, &LdapEntry>,
) -> BTreeSet<&'a String> {
    let mut members = BTreeSet::new();
    let mut seen = HashSet::from([dn_key(&group.dn)]);
    let mut pending = vec![group];
    while let Some(group) = pending.pop() {
        for dn in group.values(&settings.member_attribute) {
            let key = dn_key(dn);
            if let Some(user) = user_by_dn.get(&key) {
                members.insert(*user);
            } else if settings.nested_groups
                && let Some(nested) = group_by_dn.get(&key)
                && seen.insert(key)
            {
                pending.push(nested);
            }
        }
    }
    members
}

/// Membership from the users' `memberOf`: each group read gets the owned users (among those
/// read) that name it; users not read this time keep their memberships.
fn plan_member_of(
    settings: &LdapSettings,
    read: &SourceRead,
    current: &Current,
    owned: &HashSet<String>,
    group_ok: &HashSet<String>,
    owned_user: &HashMap<Uuid, &String>,
    plan: &mut SyncPlan,
) {
    let group_by_dn: HashMap<String, &String> = read
        .present_groups
        .iter()
        .filter(|(id, _)| group_ok.contains(*id) || current.groups.contains_key(*id))
        .map(|(id, dn)| (dn_key(dn), id))
        .collect();
    let read_users: HashSet<&String> = read.users.iter().map(|entry| &entry.id).collect();
    let mut wanted: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for entry in &read.users {
        for dn in entry.values(&settings.member_attribute) {
            if let Some(group) = group_by_dn.get(&dn_key(dn)) {
                wanted.entry(*group).or_default().insert(&entry.id);
            }
        }
    }
    let mut groups: BTreeSet<&String> = wanted.keys().copied().collect();
    groups.extend(current.groups.keys().filter(|id| read.present_groups.contains_key(*id)));
    for group in groups {
        let held: BTreeSet<&String> = current
            .groups
            .get(group)
            .map(|linked| {
                linked
                    .members
                    .iter()
                    .filter_map(|id| owned_user.get(id).copied())
                    .filter(|member| read_users.contains(member) || !read.present_users.contains_key(*member))
                    .collect()
            })
            .unwrap_or_default();
        let wanted = wanted.remove(group).unwrap_or_default();
        push_membership(plan, group, &wanted, &held, owned);
    }
}

fn push_membership(
    plan: &mut SyncPlan,
    group: &str,
    wanted: &BTreeSet<&String>,
    held: &BTreeSet<&String>,
    owned: &HashSet<String>,
) {
    let add: Vec<String> = wanted
        .difference(held)
        .filter(|id| owned.contains(**id))
        .map(|id| (*id).clone())
        .collect();
    let remove: Vec<String> = held.difference(wanted).map(|id| (*id).clone()).collect();
    if !add.is_empty() || !remove.is_empty() {
        plan.memberships.push(MembershipStep {
            group: group.to_owned(),
            add,
            remove,
        });
    }
}
