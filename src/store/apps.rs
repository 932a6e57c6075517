//! SQL for apps, policies, and the engine's account and group records (their writes are in
//! `app_writes.rs`, the statements of the engine's records in `account_rows.rs`).

use super::account_rows::{delete_account_sql, delete_app_group_sql, save_account_sql, save_app_group_sql};
use super::app_rows::{app_from_row, json_column, policy_from_row, select_apps, to_json};
use super::app_writes::{delete_app_in, delete_policy_in, insert_app_in, insert_policy_in, update_app_in};
use super::sql::{Sql, SqlStore, from_micros, get, get_uuid, micros};
use super::{AppStore, StoredApp};
use crate::domain::admin::Actor;
use crate::domain::app::{
    AccessLoss, AccountState, App, AppAccount, AppGroup, AppState, Capabilities, ConnectionStatus, Policy,
};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

fn account_from_row(row: &AnyRow) -> Result<AppAccount> {
    Ok(AppAccount {
        app_id: get_uuid(row, "app_id")?,
        user_id: get_uuid(row, "user_id")?,
        target_id: get(row, "target_id")?,
        target_username: get(row, "target_username")?,
        state: AccountState::parse(&get::<String>(row, "state")?)?,
        fingerprint: get(row, "fingerprint")?,
        pushed: json_column(row, "pushed")?,
        deactivated_at: get::<Option<i64>>(row, "deactivated_at")?
            .map(from_micros)
            .transpose()?,
        lost_access: get::<Option<String>>(row, "lost_access")?
            .map(|text| AccessLoss::parse(&text))
            .transpose()?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn uuids(rows: &[AnyRow], column: &str) -> Result<Vec<Uuid>> {
    rows.iter().map(|r| get_uuid(r, column)).collect()
}

impl AppStore for SqlStore {
    async fn insert_app(&self, stored: &StoredApp, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_app_in(&mut tx, stored, actor).await?;
        tx.commit().await
    }

    async fn update_app(
        &self,
        stored: &StoredApp,
        previous_version: i64,
        changed: &[String],
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        update_app_in(&mut tx, stored, previous_version, changed, actor).await?;
        tx.commit().await
    }

    async fn delete_app(&self, id: Uuid, actor: &Actor) -> Result<App> {
        let mut tx = self.begin_write().await?;
        let out = delete_app_in(&mut tx, id, actor).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn get_app(&self, id: Uuid) -> Result<Option<StoredApp>> {
        let row = select_apps()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    async fn get_app_by_name(&self, name: &str) -> Result<Option<StoredApp>> {
        let row = select_apps()
            .push(" WHERE name_key = ")
            .bind_text(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        Ok(self.list_stored_apps().await?.into_iter().map(|s| s.app).collect())
    }

    async fn list_stored_apps(&self) -> Result<Vec<StoredApp>> {
        let rows = select_apps().push(" ORDER BY name_key").fetch_all(&self.pool).await?;
        rows.iter().map(app_from_row).collect()
    }

    async fn set_connection(
        &self,
        id: Uuid,
        status: ConnectionStatus,
        message: Option<&str>,
        capabilities: Option<&Capabilities>,
        at: OffsetDateTime,
    ) -> Result<()> {
        let mut sql = Sql::new("UPDATE apps SET connection_status = ")
            .bind_text(status.as_str())
            .push(", connection_message = ")
            .bind_opt_text(message.map(str::to_owned))
            .push(", connection_checked_at = ")
            .bind_int(micros(at));
        if let Some(capabilities) = capabilities {
            sql = sql.push(", capabilities = ").bind_text(to_json(capabilities)?);
        }
        sql.push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_policy(&self, policy: &Policy, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_policy_in(&mut tx, policy, actor).await?;
        tx.commit().await
    }

    async fn delete_policy(&self, id: Uuid, actor: &Actor) -> Result<Policy> {
        let mut tx = self.begin_write().await?;
        let out = delete_policy_in(&mut tx, id, actor).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_policies(&self, app: Option<Uuid>) -> Result<Vec<Policy>> {
        let mut sql = Sql::new("SELECT id, name, app_id, group_id, created_at FROM policies");
        if let Some(app) = app {
            sql = sql.push(" WHERE app_id = ").bind_text(app.to_string());
        }
        let rows = sql.push(" ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn is_assigned(&self, app: Uuid, user: Uuid) -> Result<bool> {
        let row = Sql::new(
            "SELECT u.id FROM users u JOIN group_members m ON m.user_id = u.id JOIN policies p ON p.group_id = m.group_id \
             WHERE u.active = 1 AND u.id = ",
        )
        .bind_text(user.to_string())
        .push(" AND p.app_id = ")
        .bind_text(app.to_string())
        .push(" LIMIT 1")
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn assigned_among(&self, app: Uuid, users: &[Uuid]) -> Result<Vec<Uuid>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows = Sql::new(
            "SELECT DISTINCT u.id FROM users u JOIN group_members m ON m.user_id = u.id JOIN policies p ON p.group_id = m.group_id \
             WHERE u.active = 1 AND u.id IN ",
        )
        .bind_text_list(users.iter().map(Uuid::to_string))
        .push(" AND p.app_id = ")
        .bind_text(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        uuids(&rows, "id")
    }

    async fn policy_groups_of_user(&self, app: Uuid, user: Uuid) -> Result<Vec<Uuid>> {
        let rows = Sql::new(
            "SELECT p.group_id FROM policies p JOIN group_members m ON m.group_id = p.group_id WHERE m.user_id = ",
        )
        .bind_text(user.to_string())
        .push(" AND p.app_id = ")
        .bind_text(app.to_string())
        .push(" ORDER BY p.group_id")
        .fetch_all(&self.pool)
        .await?;
        uuids(&rows, "group_id")
    }

    async fn has_policy(&self, app: Uuid, group: Uuid) -> Result<bool> {
        let row = Sql::new("SELECT id FROM policies WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" AND group_id = ")
            .bind_text(group.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn get_account(&self, app: Uuid, user: Uuid) -> Result<Option<AppAccount>> {
        let row = Sql::new("SELECT app_id, user_id, target_id, target_username, state, fingerprint, pushed, deactivated_at, lost_access, updated_at FROM app_accounts WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" AND user_id = ")
            .bind_text(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn get_accounts(&self, app: Uuid, users: &[Uuid]) -> Result<Vec<AppAccount>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows = Sql::new("SELECT app_id, user_id, target_id, target_username, state, fingerprint, pushed, deactivated_at, lost_access, updated_at FROM app_accounts WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" AND user_id IN ")
            .bind_text_list(users.iter().map(Uuid::to_string))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn save_account(&self, account: &AppAccount) -> Result<()> {
        save_account_sql(account).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_account(&self, app: Uuid, user: Uuid) -> Result<()> {
        delete_account_sql(app, user).execute(&self.pool).await?;
        Ok(())
    }

    async fn list_accounts(&self, app: Uuid) -> Result<Vec<AppAccount>> {
        let rows = Sql::new("SELECT app_id, user_id, target_id, target_username, state, fingerprint, pushed, deactivated_at, lost_access, updated_at FROM app_accounts WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" ORDER BY target_username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn get_app_group(&self, app: Uuid, group: Uuid) -> Result<Option<AppGroup>> {
        let row =
            Sql::new("SELECT app_id, group_id, target_id, pushed_name, pushed_members FROM app_groups WHERE app_id = ")
                .bind_text(app.to_string())
                .push(" AND group_id = ")
                .bind_text(group.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(AppGroup {
                app_id: get_uuid(&row, "app_id")?,
                group_id: get_uuid(&row, "group_id")?,
                target_id: get(&row, "target_id")?,
                pushed_name: get(&row, "pushed_name")?,
                pushed_members: json_column(&row, "pushed_members")?,
            })
        })
        .transpose()
    }

    async fn save_app_group(&self, group: &AppGroup) -> Result<()> {
        save_app_group_sql(group)?.execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_app_group(&self, app: Uuid, group: Uuid) -> Result<()> {
        delete_app_group_sql(app, group).execute(&self.pool).await?;
        Ok(())
    }

    async fn member_target_ids(&self, app: Uuid, group: Uuid) -> Result<Vec<String>> {
        let rows = Sql::new(
            "SELECT a.target_id FROM app_accounts a JOIN group_members m ON m.user_id = a.user_id WHERE a.app_id = ",
        )
        .bind_text(app.to_string())
        .push(" AND m.group_id = ")
        .bind_text(group.to_string())
        .push(" AND a.state = 'active' ORDER BY a.target_id")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| get(r, "target_id")).collect()
    }

    async fn app_subjects(&self, app: Uuid) -> Result<(Vec<Uuid>, Vec<Uuid>)> {
        let users = Sql::new(
            "SELECT m.user_id AS id FROM group_members m JOIN policies p ON p.group_id = m.group_id WHERE p.app_id = ",
        )
        .bind_text(app.to_string())
        .push(" UNION SELECT user_id AS id FROM app_accounts WHERE app_id = ")
        .bind_text(app.to_string())
        .push(" ORDER BY id")
        .fetch_all(&self.pool)
        .await?;
        let groups = Sql::new("SELECT group_id AS id FROM policies WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" UNION SELECT group_id AS id FROM app_groups WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok((uuids(&users, "id")?, uuids(&groups, "id")?))
    }

    async fn record_outcome(
        &self,
        app: Uuid,
        transient_failure: bool,
        threshold: i64,
        reason: &str,
        next_probe_at: OffsetDateTime,
    ) -> Result<bool> {
        if !transient_failure {
            Sql::new("UPDATE apps SET consecutive_failures = 0 WHERE consecutive_failures <> 0 AND id = ")
                .bind_text(app.to_string())
                .execute(&self.pool)
                .await?;
            return Ok(false);
        }
        Sql::new("UPDATE apps SET consecutive_failures = consecutive_failures + 1 WHERE id = ")
            .bind_text(app.to_string())
            .execute(&self.pool)
            .await?;
        let quarantined = Sql::new("UPDATE apps SET state = 'quarantined', state_reason = ")
            .bind_text(reason.to_owned())
            .push(", next_probe_at = ")
            .bind_int(micros(next_probe_at))
            .push(" WHERE state = 'active' AND consecutive_failures >= ")
            .bind_int(threshold)
            .push(" AND id = ")
            .bind_text(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(quarantined > 0)
    }

    async fn throttle(&self, app: Uuid, until: OffsetDateTime) -> Result<()> {
        Sql::new("UPDATE apps SET throttled_until = ")
            .bind_int(micros(until))
            .push(" WHERE (throttled_until IS NULL OR throttled_until < ")
            .bind_int(micros(until))
            .push(") AND id = ")
            .bind_text(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_app_state(
        &self,
        app: Uuid,
        state: AppState,
        reason: Option<&str>,
        next_probe_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let mut sql = Sql::new("UPDATE apps SET state = ")
            .bind_text(state.as_str())
            .push(", state_reason = ")
            .bind_opt_text(reason.map(str::to_owned))
            .push(", next_probe_at = ")
            .bind_opt_int(next_probe_at.map(micros));
        if state == AppState::Active {
            sql = sql.push(", consecutive_failures = 0");
        }
        let updated = sql
            .push(" WHERE id = ")
            .bind_text(app.to_string())
            .execute(&self.pool)
            .await?;
        if updated == 0 {
            return Err(Error::not_found("app", app));
        }
        Ok(())
    }

    async fn count_accounts(&self) -> Result<Vec<(Uuid, i64)>> {
        let rows = Sql::new("SELECT app_id, COUNT(*) AS accounts FROM app_accounts GROUP BY app_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((get_uuid(row, "app_id")?, get(row, "accounts")?)))
            .collect()
    }
}
