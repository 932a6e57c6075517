//! SQL for custom attribute definitions.

use super::AttributeStore;
use super::sql::{Sql, SqlStore, WriteTx, from_micros, get, get_bool, micros};
use crate::domain::admin::Actor;
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::change::{ChangeOp, EntityKind, NewChange};
use crate::domain::{Error, Result};
use serde_json::json;
use sqlx::any::AnyRow;

pub(super) fn select_attributes() -> Sql {
    Sql::new(
        "SELECT name, display_name, kind, required, description, created_at, updated_at FROM attribute_definitions",
    )
}

pub(super) fn attribute_from_row(row: &AnyRow) -> Result<AttributeDefinition> {
    Ok(AttributeDefinition {
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        kind: AttributeType::parse(&get::<String>(row, "kind")?)?,
        required: get_bool(row, "required")?,
        description: get(row, "description")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

async fn count(tx: &mut WriteTx, sql: Sql) -> Result<i64> {
    let row = sql.fetch_optional(tx.conn()).await?;
    match row {
        Some(row) => get(&row, "n"),
        None => Ok(0),
    }
}

/// How many users have no value for `name`.
async fn users_lacking(tx: &mut WriteTx, name: &str) -> Result<i64> {
    count(
        tx,
        Sql::new(
            "SELECT COUNT(*) AS n FROM users WHERE id NOT IN (SELECT user_id FROM user_attribute_values WHERE name = ",
        )
        .bind_text(name.to_owned())
        .push(")"),
    )
    .await
}

/// How many users hold a value for `name`.
async fn users_holding(tx: &mut WriteTx, name: &str) -> Result<i64> {
    count(
        tx,
        Sql::new("SELECT COUNT(*) AS n FROM user_attribute_values WHERE name = ").bind_text(name.to_owned()),
    )
    .await
}

fn required_refusal(name: &str, lacking: i64) -> Error {
    Error::conflict(
        "required",
        format!(
            "{lacking} user(s) have no value for '{name}': define it as optional, give those users a value, then make it required"
        ),
    )
}

/// The body of `create_attribute`, inside the caller's write transaction.
pub(super) async fn create_attribute_in(tx: &mut WriteTx, def: &AttributeDefinition, actor: &Actor) -> Result<()> {
    let existing = select_attributes()
        .push(" WHERE lower(name) = ")
        .bind_text(def.name.to_lowercase())
        .fetch_optional(tx.conn())
        .await?;
    if existing.is_some() {
        return Err(Error::conflict(
            "name",
            format!("an attribute named '{}' already exists", def.name),
        ));
    }
    if def.required {
        let lacking = count(tx, Sql::new("SELECT COUNT(*) AS n FROM users")).await?;
        if lacking > 0 {
            return Err(required_refusal(&def.name, lacking));
        }
    }
    Sql::new("INSERT INTO attribute_definitions (name, display_name, kind, required, description, created_at, updated_at) VALUES (")
        .bind_text(def.name.clone()).push(", ")
        .bind_text(def.display_name.clone()).push(", ")
        .bind_text(def.kind.as_str()).push(", ")
        .bind_bool(def.required).push(", ")
        .bind_opt_text(def.description.clone()).push(", ")
        .bind_int(micros(def.created_at)).push(", ")
        .bind_int(micros(def.updated_at)).push(")")
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Attribute,
        entity_id: def.name.clone(),
        related_id: None,
        operation: ChangeOp::Created,
        actor: actor.label(),
        data: json!({"attribute": def}),
    })
    .await?;
    Ok(())
}

/// The body of `update_attribute`, inside the caller's write transaction.
pub(super) async fn update_attribute_in(tx: &mut WriteTx, def: &AttributeDefinition, actor: &Actor) -> Result<()> {
    let row = select_attributes()
        .push(" WHERE name = ")
        .bind_text(def.name.clone())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("attribute", &def.name))?;
    let before = attribute_from_row(&row)?;
    if before.kind != def.kind {
        let holding = users_holding(tx, &def.name).await?;
        if holding > 0 {
            return Err(Error::conflict(
                "type",
                format!(
                    "{holding} user(s) hold values for '{}': its type cannot change while values exist",
                    def.name
                ),
            ));
        }
    }
    if def.required && !before.required {
        let lacking = users_lacking(tx, &def.name).await?;
        if lacking > 0 {
            return Err(required_refusal(&def.name, lacking));
        }
    }
    Sql::new("UPDATE attribute_definitions SET display_name = ")
        .bind_text(def.display_name.clone())
        .push(", kind = ")
        .bind_text(def.kind.as_str())
        .push(", required = ")
        .bind_bool(def.required)
        .push(", description = ")
        .bind_opt_text(def.description.clone())
        .push(", updated_at = ")
        .bind_int(micros(def.updated_at))
        .push(" WHERE name = ")
        .bind_text(def.name.clone())
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Attribute,
        entity_id: def.name.clone(),
        related_id: None,
        operation: ChangeOp::Updated,
        actor: actor.label(),
        data: json!({"attribute": def, "previous": before}),
    })
    .await?;
    Ok(())
}

/// The body of `delete_attribute`, inside the caller's write transaction.
pub(super) async fn delete_attribute_in(tx: &mut WriteTx, name: &str, actor: &Actor) -> Result<()> {
    let row = select_attributes()
        .push(" WHERE name = ")
        .bind_text(name.to_owned())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("attribute", name))?;
    let before = attribute_from_row(&row)?;
    let holding = users_holding(tx, name).await?;
    if holding > 0 {
        return Err(Error::conflict(
            "name",
            format!("{holding} user(s) hold a value for '{name}': clear those values before deleting the attribute"),
        ));
    }
    Sql::new("DELETE FROM attribute_definitions WHERE name = ")
        .bind_text(name.to_owned())
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Attribute,
        entity_id: name.to_owned(),
        related_id: None,
        operation: ChangeOp::Deleted,
        actor: actor.label(),
        data: json!({"attribute": before}),
    })
    .await?;
    Ok(())
}

impl AttributeStore for SqlStore {
    async fn list_attributes(&self) -> Result<Vec<AttributeDefinition>> {
        let rows = select_attributes().push(" ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(attribute_from_row).collect()
    }

    async fn get_attribute(&self, name: &str) -> Result<Option<AttributeDefinition>> {
        let row = select_attributes()
            .push(" WHERE name = ")
            .bind_text(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(attribute_from_row).transpose()
    }

    async fn create_attribute(&self, def: &AttributeDefinition, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        create_attribute_in(&mut tx, def, actor).await?;
        tx.commit().await
    }

    async fn update_attribute(&self, def: &AttributeDefinition, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        update_attribute_in(&mut tx, def, actor).await?;
        tx.commit().await
    }

    async fn delete_attribute(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        delete_attribute_in(&mut tx, name, actor).await?;
        tx.commit().await
    }
}
