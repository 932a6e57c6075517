//! The writes of apps and policies, each inside the caller's write transaction: the single
//! writes of `AppStore` and a configuration apply share them, so both keep the same checks and
//! change-log events.

use super::StoredApp;
use super::app_rows::{app_from_row, policy_from_row, select_apps, to_json};
use super::sql::{Sql, WriteTx, micros};
use crate::domain::admin::Actor;
use crate::domain::app::{App, Policy};
use crate::domain::change::{ChangeOp, EntityKind, NewChange};
use crate::domain::{Error, Result};
use serde_json::json;
use uuid::Uuid;

/// The body of `insert_app`, inside the caller's write transaction.
pub(super) async fn insert_app_in(tx: &mut WriteTx, stored: &StoredApp, actor: &Actor) -> Result<()> {
    let app = &stored.app;
    let clash = Sql::new("SELECT id FROM apps WHERE name_key = ")
        .bind_text(app.name.to_lowercase())
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(Error::conflict(
            "name",
            format!("an app named '{}' already exists", app.name),
        ));
    }
    Sql::new(
        "INSERT INTO apps (id, name, name_key, kind, base_url, token_ciphertext, features, deprovision, enabled, mapping, \
         preset, capabilities, connection_status, connection_message, connection_checked_at, flow, state, \
         consecutive_failures, version, created_at, updated_at, sync_settings) VALUES (",
    )
    .bind_text(app.id.to_string()).push(", ")
    .bind_text(app.name.clone()).push(", ")
    .bind_text(app.name.to_lowercase()).push(", ")
    .bind_text(app.kind.clone()).push(", ")
    .bind_text(app.base_url.clone()).push(", ")
    .bind_text(stored.token_ciphertext.clone()).push(", ")
    .bind_text(to_json(&app.features)?).push(", ")
    .bind_text(app.deprovision.to_stored()).push(", ")
    .bind_bool(app.enabled).push(", ")
    .bind_text(to_json(&app.mapping)?).push(", ")
    .bind_opt_text(app.preset.clone()).push(", ")
    .bind_opt_text(app.capabilities.as_ref().map(to_json).transpose()?).push(", ")
    .bind_text(app.connection_status.as_str()).push(", ")
    .bind_opt_text(app.connection_message.clone()).push(", NULL, ")
    .bind_text(to_json(&app.flow)?).push(", ")
    .bind_text(app.state.as_str()).push(", 0, ")
    .bind_int(app.version).push(", ")
    .bind_int(micros(app.created_at)).push(", ")
    .bind_int(micros(app.updated_at)).push(", ")
    .bind_text(to_json(&app.sync)?).push(")")
    .execute(tx.conn())
    .await?;
    tx.record(NewChange {
        entity: EntityKind::App,
        entity_id: app.id.to_string(),
        related_id: None,
        operation: ChangeOp::Created,
        actor: actor.label(),
        data: json!({"app": app}),
    })
    .await?;
    Ok(())
}

/// The body of `update_app`, inside the caller's write transaction.
pub(super) async fn update_app_in(
    tx: &mut WriteTx,
    stored: &StoredApp,
    previous_version: i64,
    changed: &[String],
    actor: &Actor,
) -> Result<()> {
    let app = &stored.app;
    let clash = Sql::new("SELECT id FROM apps WHERE name_key = ")
        .bind_text(app.name.to_lowercase())
        .push(" AND id <> ")
        .bind_text(app.id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(Error::conflict(
            "name",
            format!("an app named '{}' already exists", app.name),
        ));
    }
    let updated = Sql::new("UPDATE apps SET name = ")
        .bind_text(app.name.clone())
        .push(", name_key = ")
        .bind_text(app.name.to_lowercase())
        .push(", base_url = ")
        .bind_text(app.base_url.clone())
        .push(", token_ciphertext = ")
        .bind_text(stored.token_ciphertext.clone())
        .push(", features = ")
        .bind_text(to_json(&app.features)?)
        .push(", deprovision = ")
        .bind_text(app.deprovision.to_stored())
        .push(", enabled = ")
        .bind_bool(app.enabled)
        .push(", mapping = ")
        .bind_text(to_json(&app.mapping)?)
        .push(", flow = ")
        .bind_text(to_json(&app.flow)?)
        .push(", preset = ")
        .bind_opt_text(app.preset.clone())
        // A changed schedule starts afresh: the next check runs what it switched on.
        .push(", next_import_at = CASE WHEN sync_settings = ")
        .bind_text(to_json(&app.sync)?)
        .push(" THEN next_import_at ELSE NULL END, next_reconcile_at = CASE WHEN sync_settings = ")
        .bind_text(to_json(&app.sync)?)
        .push(" THEN next_reconcile_at ELSE NULL END, sync_settings = ")
        .bind_text(to_json(&app.sync)?)
        .push(", connection_status = ")
        .bind_text(app.connection_status.as_str())
        .push(", connection_message = ")
        .bind_opt_text(app.connection_message.clone())
        .push(", version = ")
        .bind_int(app.version)
        .push(", updated_at = ")
        .bind_int(micros(app.updated_at))
        .push(" WHERE id = ")
        .bind_text(app.id.to_string())
        .push(" AND version = ")
        .bind_int(previous_version)
        .execute(tx.conn())
        .await?;
    if updated == 0 {
        return Err(Error::Conflict {
            field: None,
            message: format!(
                "app '{}' was changed by someone else meanwhile; reload and try again",
                app.name
            ),
        });
    }
    tx.record(NewChange {
        entity: EntityKind::App,
        entity_id: app.id.to_string(),
        related_id: None,
        operation: ChangeOp::Updated,
        actor: actor.label(),
        data: json!({"changed": changed, "app": app}),
    })
    .await?;
    Ok(())
}

/// The body of `delete_app`, inside the caller's write transaction.
pub(super) async fn delete_app_in(tx: &mut WriteTx, id: Uuid, actor: &Actor) -> Result<App> {
    let row = select_apps()
        .push(" WHERE id = ")
        .bind_text(id.to_string())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("app", id))?;
    let app = app_from_row(&row)?.app;
    for table in [
        "DELETE FROM policies WHERE app_id = ",
        "DELETE FROM app_accounts WHERE app_id = ",
        "DELETE FROM app_groups WHERE app_id = ",
        "DELETE FROM sync_jobs WHERE app_id = ",
        "DELETE FROM apps WHERE id = ",
    ] {
        Sql::new(table).bind_text(id.to_string()).execute(tx.conn()).await?;
    }
    tx.record(NewChange {
        entity: EntityKind::App,
        entity_id: id.to_string(),
        related_id: None,
        operation: ChangeOp::Deleted,
        actor: actor.label(),
        data: json!({"app": app}),
    })
    .await?;
    Ok(app)
}

/// The body of `insert_policy`, inside the caller's write transaction.
pub(super) async fn insert_policy_in(tx: &mut WriteTx, policy: &Policy, actor: &Actor) -> Result<()> {
    let app = Sql::new("SELECT id FROM apps WHERE id = ")
        .bind_text(policy.app_id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if app.is_none() {
        return Err(Error::not_found("app", policy.app_id));
    }
    let group = Sql::new("SELECT id FROM groups WHERE id = ")
        .bind_text(policy.group_id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if group.is_none() {
        return Err(Error::not_found("group", policy.group_id));
    }
    let clash = Sql::new("SELECT id FROM policies WHERE app_id = ")
        .bind_text(policy.app_id.to_string())
        .push(" AND group_id = ")
        .bind_text(policy.group_id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if clash.is_some() {
        return Err(Error::conflict("group", "this group already has a policy for this app"));
    }
    Sql::new("INSERT INTO policies (id, name, app_id, group_id, created_at) VALUES (")
        .bind_text(policy.id.to_string())
        .push(", ")
        .bind_text(policy.name.clone())
        .push(", ")
        .bind_text(policy.app_id.to_string())
        .push(", ")
        .bind_text(policy.group_id.to_string())
        .push(", ")
        .bind_int(micros(policy.created_at))
        .push(")")
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Policy,
        entity_id: policy.id.to_string(),
        related_id: Some(policy.group_id.to_string()),
        operation: ChangeOp::Created,
        actor: actor.label(),
        data: json!({"policy": policy}),
    })
    .await?;
    Ok(())
}

/// The body of `delete_policy`, inside the caller's write transaction.
pub(super) async fn delete_policy_in(tx: &mut WriteTx, id: Uuid, actor: &Actor) -> Result<Policy> {
    let row = Sql::new("SELECT id, name, app_id, group_id, created_at FROM policies WHERE id = ")
        .bind_text(id.to_string())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("policy", id))?;
    let policy = policy_from_row(&row)?;
    Sql::new("DELETE FROM policies WHERE id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    tx.record(NewChange {
        entity: EntityKind::Policy,
        entity_id: id.to_string(),
        related_id: Some(policy.group_id.to_string()),
        operation: ChangeOp::Deleted,
        actor: actor.label(),
        data: json!({"policy": policy}),
    })
    .await?;
    Ok(policy)
}

/// Renames a policy (its new name in `policy`), inside the caller's write transaction.
pub(super) async fn rename_policy_in(tx: &mut WriteTx, policy: &Policy, actor: &Actor) -> Result<()> {
    let renamed = Sql::new("UPDATE policies SET name = ")
        .bind_text(policy.name.clone())
        .push(" WHERE id = ")
        .bind_text(policy.id.to_string())
        .execute(tx.conn())
        .await?;
    if renamed == 0 {
        return Err(Error::not_found("policy", policy.id));
    }
    tx.record(NewChange {
        entity: EntityKind::Policy,
        entity_id: policy.id.to_string(),
        related_id: Some(policy.group_id.to_string()),
        operation: ChangeOp::Updated,
        actor: actor.label(),
        data: json!({"policy": policy, "changed": ["name"]}),
    })
    .await?;
    Ok(())
}
