//! The transactions that change groups and memberships: each runs inside a directory write
//! (`SqlStore::write`, group commit) and records its change events there.

use super::group_rows::{group_from_row, select_groups};
use super::index::Stored;
use super::sql::{Sql, WriteTx, from_micros, get, get_uuid, micros};
use crate::domain::admin::Actor;
use crate::domain::change::{ChangeOp, EntityKind, NewChange};
use crate::domain::error::ScimErrorType;
use crate::domain::group::Group;
use crate::domain::scim::members::{MemberOp, named_users, needs_all_members, net_change};
use crate::domain::values::GroupName;
use crate::domain::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// Membership rows are read, checked, inserted and deleted this many per statement.
const MEMBER_CHUNK: usize = 200;

fn snapshot(group: &Group) -> Value {
    serde_json::to_value(group).unwrap_or(Value::Null)
}

pub(super) async fn load_group(tx: &mut WriteTx, id: Uuid) -> Result<Group> {
    let row = select_groups()
        .push(" WHERE g.id = ")
        .bind_text(id.to_string())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("group", id))?;
    group_from_row(&row)
}

pub(super) async fn name_taken(tx: &mut WriteTx, id: Uuid, name: &str) -> Result<()> {
    let clash = Sql::new("SELECT id FROM groups WHERE name_key = ")
        .bind_text(name.to_lowercase())
        .push(" AND id <> ")
        .bind_text(id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(Error::conflict(
            "name",
            format!("a group named '{name}' already exists (names are compared regardless of case)"),
        ));
    }
    Ok(())
}

pub(super) async fn bump_group(tx: &mut WriteTx, id: Uuid, now: OffsetDateTime) -> Result<()> {
    Sql::new("UPDATE groups SET version = version + 1, updated_at = ")
        .bind_int(micros(now))
        .push(" WHERE id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Inserts a new group row and records its creation, inside `tx`.
pub(super) async fn insert_group_row(tx: &mut WriteTx, group: &Group, actor: &Actor) -> Result<()> {
    name_taken(tx, group.id, &group.name).await?;
    Sql::new("INSERT INTO groups (id, name, name_key, external_id, source, version, created_at, updated_at) VALUES (")
        .bind_text(group.id.to_string())
        .push(", ")
        .bind_text(group.name.clone())
        .push(", ")
        .bind_text(group.name.to_lowercase())
        .push(", ")
        .bind_opt_text(group.external_id.clone())
        .push(", ")
        .bind_text(group.source.as_str())
        .push(", ")
        .bind_int(group.version)
        .push(", ")
        .bind_int(micros(group.created_at))
        .push(", ")
        .bind_int(micros(group.updated_at))
        .push(")")
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Group,
        entity_id: group.id.to_string(),
        related_id: None,
        operation: ChangeOp::Created,
        actor: actor.label(),
        data: json!({"group": snapshot(group)}),
    })
    .await?;
    Ok(())
}

/// The members of `group` among `users` (all of them when `users` is `None`), inside `tx`.
pub(super) async fn current_members(tx: &mut WriteTx, group: Uuid, users: Option<&[Uuid]>) -> Result<HashSet<Uuid>> {
    let mut out = HashSet::new();
    let Some(users) = users else {
        let rows = Sql::new("SELECT user_id FROM group_members WHERE group_id = ")
            .bind_text(group.to_string())
            .fetch_all(tx.conn())
            .await?;
        for row in rows {
            out.insert(get_uuid(&row, "user_id")?);
        }
        return Ok(out);
    };
    for chunk in users.chunks(MEMBER_CHUNK) {
        let rows = Sql::new("SELECT user_id FROM group_members WHERE group_id = ")
            .bind_text(group.to_string())
            .push(" AND user_id IN ")
            .bind_text_list(chunk.iter().map(Uuid::to_string))
            .fetch_all(tx.conn())
            .await?;
        for row in rows {
            out.insert(get_uuid(&row, "user_id")?);
        }
    }
    Ok(out)
}

/// Refuses a member who is not a user of the directory (a SCIM `invalidValue`).
pub(super) async fn check_users_exist(tx: &mut WriteTx, users: &[Uuid]) -> Result<()> {
    for chunk in users.chunks(MEMBER_CHUNK) {
        let found = Sql::new("SELECT id FROM users WHERE id IN ")
            .bind_text_list(chunk.iter().map(Uuid::to_string))
            .fetch_all(tx.conn())
            .await?;
        let found = found
            .iter()
            .map(|r| get_uuid(r, "id"))
            .collect::<Result<HashSet<_>>>()?;
        if let Some(missing) = chunk.iter().find(|id| !found.contains(id)) {
            return Err(Error::scim(
                ScimErrorType::InvalidValue,
                format!("member '{missing}' is not a user of this directory"),
            ));
        }
    }
    Ok(())
}

/// Inserts and deletes the membership rows of `group` and records one change event per changed
/// membership (as `add_member` and `remove_member` do), inside `tx`.
pub(super) async fn write_memberships(
    tx: &mut WriteTx,
    group: Uuid,
    added: &[Uuid],
    removed: &[Uuid],
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<()> {
    for chunk in added.chunks(MEMBER_CHUNK) {
        let mut sql = Sql::new("INSERT INTO group_members (group_id, user_id, added_at) VALUES ");
        for (i, user) in chunk.iter().enumerate() {
            sql = sql
                .push(if i == 0 { "(" } else { ", (" })
                .bind_text(group.to_string())
                .push(", ")
                .bind_text(user.to_string())
                .push(", ")
                .bind_int(micros(now))
                .push(")");
        }
        sql.execute(tx.conn()).await?;
    }
    for chunk in removed.chunks(MEMBER_CHUNK) {
        Sql::new("DELETE FROM group_members WHERE group_id = ")
            .bind_text(group.to_string())
            .push(" AND user_id IN ")
            .bind_text_list(chunk.iter().map(Uuid::to_string))
            .execute(tx.conn())
            .await?;
    }
    let mut changes = Vec::with_capacity(added.len() + removed.len());
    for (users, operation) in [(added, ChangeOp::Added), (removed, ChangeOp::Removed)] {
        for user in users {
            changes.push(NewChange {
                entity: EntityKind::Membership,
                entity_id: group.to_string(),
                related_id: Some(user.to_string()),
                operation,
                actor: actor.label(),
                data: json!({}),
            });
        }
    }
    tx.record_all(changes).await?;
    Ok(())
}

/// Stores a new group with its index rows and change event: the body of `insert_group`, also run
/// inside a configuration apply's transaction (`config_doc.rs`).
pub(super) async fn write_new_group(tx: &mut WriteTx, group: &Group, actor: &Actor) -> Result<()> {
    insert_group_row(tx, group, actor).await?;
    super::index::index_group(tx, group, Stored::New).await?;
    Ok(())
}

/// Renames a group (nothing is written when the name is unchanged).
pub(super) async fn write_rename(
    tx: &mut WriteTx,
    id: Uuid,
    name: &GroupName,
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<Group> {
    let before = load_group(tx, id).await?;
    if before.name == name.as_str() {
        return Ok(before);
    }
    name_taken(tx, id, name.as_str()).await?;
    Sql::new("UPDATE groups SET name = ")
        .bind_text(name.as_str())
        .push(", name_key = ")
        .bind_text(name.key())
        .push(" WHERE id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    bump_group(tx, id, now).await?;
    let after = load_group(tx, id).await?;
    super::index::index_group(tx, &after, Stored::Before).await?;
    tx.record(NewChange {
        entity: EntityKind::Group,
        entity_id: id.to_string(),
        related_id: None,
        operation: ChangeOp::Updated,
        actor: actor.label(),
        data: json!({"changed": ["name"], "previous_name": before.name, "group": snapshot(&after)}),
    })
    .await?;
    Ok(after)
}

/// Deletes a group with its memberships and index rows, recording each removal.
pub(super) async fn write_delete(tx: &mut WriteTx, id: Uuid, actor: &Actor) -> Result<Group> {
    let group = load_group(tx, id).await?;
    let members = Sql::new("SELECT user_id FROM group_members WHERE group_id = ")
        .bind_text(id.to_string())
        .push(" ORDER BY user_id")
        .fetch_all(tx.conn())
        .await?;
    let mut removed_members = Vec::new();
    let mut changes = Vec::with_capacity(members.len());
    for row in members {
        let user_id: String = get(&row, "user_id")?;
        changes.push(NewChange {
            entity: EntityKind::Membership,
            entity_id: id.to_string(),
            related_id: Some(user_id.clone()),
            operation: ChangeOp::Removed,
            actor: actor.label(),
            data: json!({"reason": "group deleted"}),
        });
        removed_members.push(user_id);
    }
    tx.record_all(changes).await?;
    Sql::new("DELETE FROM group_members WHERE group_id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    super::index::unindex(tx, id).await?;
    Sql::new("DELETE FROM groups WHERE id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Group,
        entity_id: id.to_string(),
        related_id: None,
        operation: ChangeOp::Deleted,
        actor: actor.label(),
        data: json!({"group": snapshot(&group), "members": removed_members}),
    })
    .await?;
    Ok(group)
}

/// Adds one member; false when the user already was one.
pub(super) async fn write_add_member(
    tx: &mut WriteTx,
    group: Uuid,
    user: Uuid,
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<bool> {
    load_group(tx, group).await?;
    let exists = Sql::new("SELECT id FROM users WHERE id = ")
        .bind_text(user.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_none() {
        return Err(Error::not_found("user", user));
    }
    let already = Sql::new("SELECT user_id FROM group_members WHERE group_id = ")
        .bind_text(group.to_string())
        .push(" AND user_id = ")
        .bind_text(user.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if already.is_some() {
        return Ok(false);
    }
    Sql::new("INSERT INTO group_members (group_id, user_id, added_at) VALUES (")
        .bind_text(group.to_string())
        .push(", ")
        .bind_text(user.to_string())
        .push(", ")
        .bind_int(micros(now))
        .push(")")
        .execute(tx.conn())
        .await?;
    bump_group(tx, group, now).await?;
    tx.record(NewChange {
        entity: EntityKind::Membership,
        entity_id: group.to_string(),
        related_id: Some(user.to_string()),
        operation: ChangeOp::Added,
        actor: actor.label(),
        data: json!({}),
    })
    .await?;
    Ok(true)
}

/// Removes one member; false when the user was not one.
pub(super) async fn write_remove_member(
    tx: &mut WriteTx,
    group: Uuid,
    user: Uuid,
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<bool> {
    load_group(tx, group).await?;
    let removed = Sql::new("DELETE FROM group_members WHERE group_id = ")
        .bind_text(group.to_string())
        .push(" AND user_id = ")
        .bind_text(user.to_string())
        .execute(tx.conn())
        .await?;
    if removed == 0 {
        return Ok(false);
    }
    bump_group(tx, group, now).await?;
    tx.record(NewChange {
        entity: EntityKind::Membership,
        entity_id: group.to_string(),
        related_id: Some(user.to_string()),
        operation: ChangeOp::Removed,
        actor: actor.label(),
        data: json!({}),
    })
    .await?;
    Ok(true)
}

/// Applies membership operations, touching only the rows that change.
pub(super) async fn write_member_changes(
    tx: &mut WriteTx,
    group: Uuid,
    expected_version: Option<i64>,
    ops: &[MemberOp],
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<Group> {
    let before = load_group(tx, group).await?;
    if let Some(version) = expected_version
        && before.version != version
    {
        return Err(Error::PreconditionFailed(format!(
            "group {group} changed meanwhile (version {version} is now {})",
            before.version
        )));
    }
    let named = (!needs_all_members(ops)).then(|| named_users(ops));
    let current = current_members(tx, group, named.as_deref()).await?;
    let delta = net_change(ops, &current);
    if delta.is_empty() {
        return Ok(before);
    }
    check_users_exist(tx, &delta.added).await?;
    write_memberships(tx, group, &delta.added, &delta.removed, now, actor).await?;
    bump_group(tx, group, now).await?;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Group {
        member_count: before.member_count + count(delta.added.len()) - count(delta.removed.len()),
        version: before.version + 1,
        updated_at: from_micros(micros(now))?,
        ..before
    })
}

/// Creates or replaces a group (name, external id and, when given, the whole membership).
pub(super) async fn write_group(
    tx: &mut WriteTx,
    group: &Group,
    previous_version: Option<i64>,
    members: Option<&[Uuid]>,
    actor: &Actor,
) -> Result<Group> {
    let before = match previous_version {
        None => {
            insert_group_row(tx, group, actor).await?;
            None
        }
        Some(version) => {
            let before = load_group(tx, group.id).await?;
            if before.version != version {
                return Err(Error::PreconditionFailed(format!(
                    "group {} changed meanwhile (version {} is now {})",
                    group.id, version, before.version
                )));
            }
            Some(before)
        }
    };
    let mut changed = Vec::new();
    if let Some(before) = &before {
        if before.name != group.name {
            name_taken(tx, group.id, &group.name).await?;
            changed.push("name");
        }
        if before.external_id != group.external_id {
            changed.push("external_id");
        }
        if !changed.is_empty() {
            Sql::new("UPDATE groups SET name = ")
                .bind_text(group.name.clone())
                .push(", name_key = ")
                .bind_text(group.name.to_lowercase())
                .push(", external_id = ")
                .bind_opt_text(group.external_id.clone())
                .push(" WHERE id = ")
                .bind_text(group.id.to_string())
                .execute(tx.conn())
                .await?;
        }
    }
    let mut membership_changed = false;
    if let Some(wanted) = members {
        let current = current_members(tx, group.id, None).await?;
        let wanted_set: HashSet<Uuid> = wanted.iter().copied().collect();
        let mut seen = HashSet::new();
        let added: Vec<Uuid> = wanted
            .iter()
            .filter(|id| !current.contains(id) && seen.insert(**id))
            .copied()
            .collect();
        let mut removed: Vec<Uuid> = current.iter().filter(|id| !wanted_set.contains(id)).copied().collect();
        removed.sort();
        check_users_exist(tx, &added).await?;
        write_memberships(tx, group.id, &added, &removed, group.updated_at, actor).await?;
        membership_changed = !added.is_empty() || !removed.is_empty();
    }
    if before.is_some() && (membership_changed || !changed.is_empty()) {
        bump_group(tx, group.id, group.updated_at).await?;
    }
    let after = load_group(tx, group.id).await?;
    if let Some(before) = &before
        && !changed.is_empty()
    {
        tx.record(NewChange {
                entity: EntityKind::Group,
                entity_id: group.id.to_string(),
                related_id: None,
                operation: ChangeOp::Updated,
                actor: actor.label(),
                data: json!({"changed": changed, "previous_name": before.name, "group": serde_json::to_value(&after).unwrap_or_default()}),
            })
            .await?;
    }
    super::index::index_group(tx, &after, Stored::Before).await?;
    Ok(after)
}
