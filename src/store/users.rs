//! SQL for users and their custom attribute values.

use super::index::Stored;
use super::sql::{
    Sql, SqlStore, WriteTx, decode_cursor, encode_cursor, from_micros, get, get_bool, get_uuid, like_pattern, micros,
};
use super::{UserQuery, UserStore};
use crate::domain::admin::Actor;
use crate::domain::change::{ChangeOp, EntityKind, NewChange};
use crate::domain::group::Group;
use crate::domain::user::{User, UserSource};
use crate::domain::{Error, Page, Result};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) fn user_from_row(row: &AnyRow) -> Result<User> {
    let extensions: String = get(row, "extensions")?;
    let extensions = match serde_json::from_str(&extensions) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(Error::Storage(
                "a user's extensions document is not a JSON object".into(),
            ));
        }
    };
    Ok(User {
        id: get_uuid(row, "id")?,
        username: get(row, "username")?,
        given_name: get(row, "given_name")?,
        family_name: get(row, "family_name")?,
        display_name: get(row, "display_name")?,
        formatted_name: get(row, "formatted_name")?,
        email: get(row, "email")?,
        active: get_bool(row, "active")?,
        external_id: get(row, "external_id")?,
        source: UserSource::parse(&get::<String>(row, "source")?)?,
        attributes: BTreeMap::new(),
        extensions,
        version: get(row, "version")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// The columns a [`User`] is read from (`user_from_row`).
const USER_COLUMNS: &str = "id, username, given_name, family_name, display_name, formatted_name, email, active, external_id, source, extensions, version, created_at, updated_at";

pub(super) fn select_users() -> Sql {
    Sql::new("SELECT ").push(USER_COLUMNS).push(" FROM users")
}

/// A user's JSON snapshot for the change log.
fn snapshot(user: &User) -> Value {
    serde_json::to_value(user).unwrap_or(Value::Null)
}

/// Loads custom attribute values for `users` in one query.
pub(super) async fn attach_attributes<'c, E>(executor: E, users: &mut [User]) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    if users.is_empty() {
        return Ok(());
    }
    let rows = Sql::new("SELECT user_id, name, value FROM user_attribute_values WHERE user_id IN ")
        .bind_text_list(users.iter().map(|u| u.id.to_string()))
        .fetch_all(executor)
        .await?;
    for row in rows {
        let id = get_uuid(&row, "user_id")?;
        let (name, value) = attribute_value(&row)?;
        if let Some(user) = users.iter_mut().find(|u| u.id == id) {
            user.attributes.insert(name, value);
        }
    }
    Ok(())
}

/// A stored custom attribute value (`name` and JSON `value` columns), read back.
fn attribute_value(row: &sqlx::any::AnyRow) -> Result<(String, Value)> {
    let name: String = get(row, "name")?;
    let text: String = get(row, "value")?;
    let value = serde_json::from_str(&text).map_err(|e| Error::Storage(format!("attribute value of {name}: {e}")))?;
    Ok((name, value))
}

impl SqlStore {
    async fn fetch_user(&self, sql: Sql) -> Result<Option<User>> {
        let Some(row) = sql.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut users = vec![user_from_row(&row)?];
        attach_attributes(&self.pool, &mut users).await?;
        Ok(users.pop())
    }
}

/// Writes the custom attribute values of `user` (its old ones first, unless it is new).
async fn write_attribute_values(tx: &mut WriteTx, user: &User, stored: Stored) -> Result<()> {
    if stored == Stored::Before {
        Sql::new("DELETE FROM user_attribute_values WHERE user_id = ")
            .bind_text(user.id.to_string())
            .execute(tx.conn())
            .await?;
    }
    insert_attribute_values(tx, std::slice::from_ref(user)).await
}

/// Attribute values are inserted this many per statement.
const VALUE_CHUNK: usize = 100;

/// Inserts the custom attribute values of `users`, which have none stored, in shared statements.
async fn insert_attribute_values(tx: &mut WriteTx, users: &[User]) -> Result<()> {
    let values: Vec<(String, &String, &Value)> = users
        .iter()
        .flat_map(|user| {
            let id = user.id.to_string();
            user.attributes
                .iter()
                .map(move |(name, value)| (id.clone(), name, value))
        })
        .collect();
    for chunk in values.chunks(VALUE_CHUNK) {
        let mut sql = Sql::new("INSERT INTO user_attribute_values (user_id, name, value) VALUES ");
        for (i, (id, name, value)) in chunk.iter().enumerate() {
            sql = sql
                .push(if i == 0 { "(" } else { ", (" })
                .bind_text(id.clone())
                .push(", ")
                .bind_text((*name).clone())
                .push(", ")
                .bind_text(value.to_string())
                .push(")");
        }
        sql.execute(tx.conn()).await?;
    }
    Ok(())
}

async fn username_taken(tx: &mut WriteTx, user: &User) -> Result<()> {
    let clash = Sql::new("SELECT id FROM users WHERE username_key = ")
        .bind_text(user.username_key())
        .push(" AND id <> ")
        .bind_text(user.id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(Error::conflict(
            "username",
            format!(
                "the username '{}' is already taken (usernames are compared regardless of case)",
                user.username
            ),
        ));
    }
    Ok(())
}

/// Users are inserted this many per statement (17 values each).
const USER_CHUNK: usize = 50;

/// Refuses the batch when a username of `users` is taken, by a stored user or by another of
/// `users`, regardless of case.
async fn new_usernames_taken(tx: &mut WriteTx, users: &[User]) -> Result<()> {
    let taken = |username: &str| {
        Error::conflict(
            "username",
            format!("the username '{username}' is already taken (usernames are compared regardless of case)"),
        )
    };
    let mut keys = std::collections::HashSet::with_capacity(users.len());
    for user in users {
        if !keys.insert(user.username_key()) {
            return Err(taken(&user.username));
        }
    }
    for chunk in users.chunks(500) {
        let clash = Sql::new("SELECT username FROM users WHERE username_key IN ")
            .bind_text_list(chunk.iter().map(User::username_key))
            .push(" LIMIT 1")
            .fetch_optional(tx.conn())
            .await?;
        if let Some(row) = clash {
            return Err(taken(&get::<String>(&row, "username")?));
        }
    }
    Ok(())
}

/// Stores new users with their attribute values, index rows and change events, in statements
/// shared by the whole batch: all of them, or (on the first refusal) none.
async fn insert_users(tx: &mut WriteTx, users: &[User], actor: &Actor) -> Result<()> {
    new_usernames_taken(tx, users).await?;
    for chunk in users.chunks(USER_CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO users (id, username, username_key, given_name, family_name, display_name, display_key, formatted_name, email, email_key, active, external_id, source, extensions, version, created_at, updated_at) VALUES ",
        );
        for (i, user) in chunk.iter().enumerate() {
            sql = sql
                .push(if i == 0 { "(" } else { ", (" })
                .bind_text(user.id.to_string())
                .push(", ")
                .bind_text(user.username.clone())
                .push(", ")
                .bind_text(user.username_key())
                .push(", ")
                .bind_opt_text(user.given_name.clone())
                .push(", ")
                .bind_opt_text(user.family_name.clone())
                .push(", ")
                .bind_opt_text(user.display_name.clone())
                .push(", ")
                .bind_opt_text(user.display_name.as_ref().map(|d| d.to_lowercase()))
                .push(", ")
                .bind_opt_text(user.formatted_name.clone())
                .push(", ")
                .bind_opt_text(user.email.clone())
                .push(", ")
                .bind_opt_text(user.email_key())
                .push(", ")
                .bind_bool(user.active)
                .push(", ")
                .bind_opt_text(user.external_id.clone())
                .push(", ")
                .bind_text(user.source.as_str())
                .push(", ")
                .bind_text(Value::Object(user.extensions.clone()).to_string())
                .push(", ")
                .bind_int(user.version)
                .push(", ")
                .bind_int(micros(user.created_at))
                .push(", ")
                .bind_int(micros(user.updated_at))
                .push(")");
        }
        sql.execute(tx.conn()).await?;
    }
    insert_attribute_values(tx, users).await?;
    super::index::index_new_users(tx, users).await?;
    tx.record_all(
        users
            .iter()
            .map(|user| NewChange {
                entity: EntityKind::User,
                entity_id: user.id.to_string(),
                related_id: None,
                operation: ChangeOp::Created,
                actor: actor.label(),
                data: json!({"user": snapshot(user)}),
            })
            .collect(),
    )
    .await?;
    Ok(())
}

/// Updates a user if it is still at `previous_version`, with its attribute values, index rows and
/// change event.
async fn update_user(
    tx: &mut WriteTx,
    user: &User,
    previous_version: i64,
    operation: ChangeOp,
    changed: &[String],
    actor: &Actor,
) -> Result<()> {
    username_taken(tx, user).await?;
    let updated = Sql::new("UPDATE users SET username = ")
        .bind_text(user.username.clone())
        .push(", username_key = ")
        .bind_text(user.username_key())
        .push(", given_name = ")
        .bind_opt_text(user.given_name.clone())
        .push(", family_name = ")
        .bind_opt_text(user.family_name.clone())
        .push(", display_name = ")
        .bind_opt_text(user.display_name.clone())
        .push(", display_key = ")
        .bind_opt_text(user.display_name.as_ref().map(|d| d.to_lowercase()))
        .push(", formatted_name = ")
        .bind_opt_text(user.formatted_name.clone())
        .push(", email = ")
        .bind_opt_text(user.email.clone())
        .push(", email_key = ")
        .bind_opt_text(user.email_key())
        .push(", active = ")
        .bind_bool(user.active)
        .push(", external_id = ")
        .bind_opt_text(user.external_id.clone())
        .push(", extensions = ")
        .bind_text(Value::Object(user.extensions.clone()).to_string())
        .push(", version = ")
        .bind_int(user.version)
        .push(", updated_at = ")
        .bind_int(micros(user.updated_at))
        .push(" WHERE id = ")
        .bind_text(user.id.to_string())
        .push(" AND version = ")
        .bind_int(previous_version)
        .execute(tx.conn())
        .await?;
    if updated == 0 {
        return Err(Error::PreconditionFailed(format!(
            "user {} was changed or deleted meanwhile (it is no longer at version {previous_version})",
            user.id
        )));
    }
    write_attribute_values(tx, user, Stored::Before).await?;
    super::index::index_user(tx, user, Stored::Before).await?;
    tx.record(NewChange {
        entity: EntityKind::User,
        entity_id: user.id.to_string(),
        related_id: None,
        operation,
        actor: actor.label(),
        data: json!({"changed": changed, "user": snapshot(user)}),
    })
    .await?;
    Ok(())
}

/// Deletes a user with its memberships, attribute values and index rows, recording each removal.
async fn delete_user(tx: &mut WriteTx, id: Uuid, actor: &Actor) -> Result<User> {
    let key = id.to_string();
    // Each statement hands back the rows it deletes (RETURNING), so nothing is read first: the
    // user's memberships, attribute values and row come back from their deletes.
    let memberships = Sql::new("DELETE FROM group_members WHERE user_id = ")
        .bind_text(key.clone())
        .push(" RETURNING group_id")
        .fetch_all(tx.conn())
        .await?;
    let values = Sql::new("DELETE FROM user_attribute_values WHERE user_id = ")
        .bind_text(key.clone())
        .push(" RETURNING name, value")
        .fetch_all(tx.conn())
        .await?;
    super::index::unindex(tx, id).await?;
    let Some(row) = Sql::new("DELETE FROM users WHERE id = ")
        .bind_text(key.clone())
        .push(" RETURNING ")
        .push(USER_COLUMNS)
        .fetch_optional(tx.conn())
        .await?
    else {
        // Nothing was there to delete: the statements before deleted nothing either.
        return Err(Error::not_found("user", id));
    };
    let mut user = user_from_row(&row)?;
    for row in &values {
        let (name, value) = attribute_value(row)?;
        user.attributes.insert(name, value);
    }
    let mut groups = memberships
        .iter()
        .map(|row| get::<String>(row, "group_id"))
        .collect::<Result<Vec<_>>>()?;
    groups.sort();
    let mut changes: Vec<NewChange> = groups
        .iter()
        .map(|group_id| NewChange {
            entity: EntityKind::Membership,
            entity_id: group_id.clone(),
            related_id: Some(key.clone()),
            operation: ChangeOp::Removed,
            actor: actor.label(),
            data: json!({"reason": "user deleted"}),
        })
        .collect();
    changes.push(NewChange {
        entity: EntityKind::User,
        entity_id: key,
        related_id: None,
        operation: ChangeOp::Deleted,
        actor: actor.label(),
        data: json!({"user": snapshot(&user), "groups": groups}),
    });
    tx.record_all(changes).await?;
    Ok(user)
}

impl UserStore for SqlStore {
    async fn insert_user(&self, user: &User, actor: &Actor) -> Result<()> {
        let (user, actor) = (user.clone(), actor.clone());
        self.write(move |tx| Box::pin(async move { insert_users(tx, std::slice::from_ref(&user), &actor).await }))
            .await
    }

    async fn insert_users(&self, users: Vec<User>, actor: &Actor) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let actor = actor.clone();
        self.write(move |tx| Box::pin(async move { insert_users(tx, &users, &actor).await }))
            .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        self.fetch_user(select_users().push(" WHERE id = ").bind_text(id.to_string()))
            .await
    }

    async fn get_users(&self, ids: &[Uuid]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = select_users()
            .push(" WHERE id IN ")
            .bind_text_list(ids.iter().map(Uuid::to_string))
            .fetch_all(&self.pool)
            .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        attach_attributes(&self.pool, &mut users).await?;
        Ok(users)
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.fetch_user(
            select_users()
                .push(" WHERE username_key = ")
                .bind_text(username.to_lowercase()),
        )
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Page<User>> {
        let limit = query.limit.clamp(1, 1000);
        let mut sql = select_users().push(" WHERE 1 = 1");
        if let Some(search) = query.search.as_deref().filter(|s| !s.trim().is_empty()) {
            let pattern = like_pattern(search.trim());
            sql = sql
                .push(" AND (username_key LIKE ")
                .bind_text(pattern.clone())
                .push(" ESCAPE '\\'")
                .push(" OR email_key LIKE ")
                .bind_text(pattern.clone())
                .push(" ESCAPE '\\'")
                .push(" OR display_key LIKE ")
                .bind_text(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(active) = query.active {
            sql = sql.push(" AND active = ").bind_bool(active);
        }
        if let Some(group) = query.group {
            sql = sql
                .push(" AND id IN (SELECT user_id FROM group_members WHERE group_id = ")
                .bind_text(group.to_string())
                .push(")");
        }
        if let Some(cursor) = &query.cursor {
            sql = sql.push(" AND username_key > ").bind_text(decode_cursor(cursor)?);
        }
        let rows = sql
            .push(" ORDER BY username_key LIMIT ")
            .bind_int(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| encode_cursor(&u.username_key()))
        } else {
            None
        };
        attach_attributes(&self.pool, &mut users).await?;
        Ok(Page {
            items: users,
            next_cursor,
        })
    }

    async fn update_user(
        &self,
        user: &User,
        previous_version: i64,
        operation: ChangeOp,
        changed: &[String],
        actor: &Actor,
    ) -> Result<()> {
        let (user, changed, actor) = (user.clone(), changed.to_vec(), actor.clone());
        self.write(move |tx| {
            Box::pin(async move { update_user(tx, &user, previous_version, operation, &changed, &actor).await })
        })
        .await
    }

    async fn delete_user(&self, id: Uuid, actor: &Actor) -> Result<User> {
        let actor = actor.clone();
        self.write(move |tx| Box::pin(async move { delete_user(tx, id, &actor).await }))
            .await
    }

    async fn groups_of_user(&self, id: Uuid) -> Result<Vec<Group>> {
        let rows = super::group_rows::select_groups()
            .push(" WHERE g.id IN (SELECT group_id FROM group_members WHERE user_id = ")
            .bind_text(id.to_string())
            .push(") ORDER BY g.name_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(super::group_rows::group_from_row).collect()
    }
}
