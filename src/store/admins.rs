//! SQL for administrators, API tokens, console sessions and the audit log.

use super::AdminStore;
use super::sql::{Sql, SqlStore, from_micros, get, get_bool, get_uuid, micros};
use crate::domain::admin::{Admin, ApiToken, AuditEvent, AuditRecord, Role, Session, TokenScope};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

const ADMIN_COLUMNS: &str = "a.id, a.username, a.password_hash, a.must_change_password, a.created_at, a.role, a.disabled_at, a.failed_logins, a.locked_until";

fn select_admins() -> Sql {
    Sql::new("SELECT ").push(ADMIN_COLUMNS).push(" FROM admins a")
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>> {
    get::<Option<i64>>(row, column)?.map(from_micros).transpose()
}

fn admin_from_row(row: &AnyRow) -> Result<Admin> {
    Ok(Admin {
        id: get_uuid(row, "id")?,
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        must_change_password: get_bool(row, "must_change_password")?,
        created_at: from_micros(get(row, "created_at")?)?,
        role: Role::parse(&get::<String>(row, "role")?)
            .map_err(|_| Error::Storage("unknown administrator role in the store".into()))?,
        disabled_at: optional_time(row, "disabled_at")?,
        failed_logins: get(row, "failed_logins")?,
        locked_until: optional_time(row, "locked_until")?,
    })
}

fn select_tokens() -> Sql {
    Sql::new(
        "SELECT t.id, t.name, t.scope, t.prefix, t.created_by, t.created_at, t.last_used_at, t.revoked_at, \
         a.username AS owner, a.role AS owner_role, a.disabled_at AS owner_disabled_at \
         FROM api_tokens t LEFT JOIN admins a ON a.id = t.admin_id",
    )
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken> {
    let role = match get::<Option<String>>(row, "owner_role")? {
        Some(role) => {
            Role::parse(&role).map_err(|_| Error::Storage("unknown administrator role in the store".into()))?
        }
        None => Role::Administrator,
    };
    Ok(ApiToken {
        id: get_uuid(row, "id")?,
        name: get(row, "name")?,
        scope: TokenScope::parse(&get::<String>(row, "scope")?)?,
        prefix: get(row, "prefix")?,
        created_by: get(row, "created_by")?,
        owner: get(row, "owner")?,
        role,
        created_at: from_micros(get(row, "created_at")?)?,
        last_used_at: optional_time(row, "last_used_at")?,
        revoked_at: optional_time(row, "revoked_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: get_uuid(row, "id")?,
        occurred_at: from_micros(get(row, "occurred_at")?)?,
        event: AuditEvent::parse(&get::<String>(row, "event")?)?,
        username: get(row, "username")?,
        actor: get(row, "actor")?,
        remote_addr: get(row, "remote_addr")?,
        detail: get(row, "detail")?,
    })
}

impl SqlStore {
    /// Stamps a token's last use, in a write transaction of its own.
    async fn stamp_token_use(&self, token: Uuid, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("UPDATE api_tokens SET last_used_at = ")
            .bind_int(micros(now))
            .push(" WHERE id = ")
            .bind_text(token.to_string())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }
}

impl AdminStore for SqlStore {
    async fn count_admins(&self) -> Result<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM admins")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "n")).unwrap_or(Ok(0))
    }

    async fn insert_admin(&self, admin: &Admin) -> Result<()> {
        let inserted = Sql::new(
            "INSERT INTO admins (id, username, username_key, password_hash, must_change_password, created_at, role, disabled_at, failed_logins) VALUES (",
        )
        .bind_text(admin.id.to_string())
        .push(", ")
        .bind_text(admin.username.clone())
        .push(", ")
        .bind_text(admin.username.to_lowercase())
        .push(", ")
        .bind_text(admin.password_hash.clone())
        .push(", ")
        .bind_bool(admin.must_change_password)
        .push(", ")
        .bind_int(micros(admin.created_at))
        .push(", ")
        .bind_text(admin.role.as_str())
        .push(", ")
        .bind_opt_int(admin.disabled_at.map(micros))
        .push(", 0)")
        .execute(&self.pool)
        .await;
        match inserted {
            Err(Error::Conflict { .. }) => Err(Error::conflict(
                "username",
                format!("an administrator named '{}' already exists", admin.username),
            )),
            other => other.map(|_| ()),
        }
    }

    async fn get_admin(&self, username: &str) -> Result<Option<Admin>> {
        let row = select_admins()
            .push(" WHERE a.username_key = ")
            .bind_text(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    async fn get_admin_by_id(&self, id: Uuid) -> Result<Option<Admin>> {
        let row = select_admins()
            .push(" WHERE a.id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    async fn list_admins(&self) -> Result<Vec<Admin>> {
        let rows = select_admins()
            .push(" ORDER BY a.username_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(admin_from_row).collect()
    }

    async fn set_admin_password(&self, id: Uuid, password_hash: &str, must_change: bool) -> Result<()> {
        Sql::new("UPDATE admins SET failed_logins = 0, locked_until = NULL, must_change_password = ")
            .bind_bool(must_change)
            .push(", password_hash = ")
            .bind_text(password_hash.to_owned())
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_admin_access(&self, id: Uuid, role: Role, disabled_at: Option<OffsetDateTime>) -> Result<()> {
        Sql::new("UPDATE admins SET role = ")
            .bind_text(role.as_str())
            .push(", disabled_at = ")
            .bind_opt_int(disabled_at.map(micros))
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn count_failed_login(&self, id: Uuid) -> Result<i64> {
        let row = Sql::new("UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = ")
            .bind_text(id.to_string())
            .push(" RETURNING failed_logins")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "failed_logins"))
            .unwrap_or_else(|| Err(Error::not_found("administrator", id)))
    }

    async fn set_login_lock(&self, id: Uuid, failed_logins: i64, locked_until: Option<OffsetDateTime>) -> Result<()> {
        Sql::new("UPDATE admins SET failed_logins = ")
            .bind_int(failed_logins)
            .push(", locked_until = ")
            .bind_opt_int(locked_until.map(micros))
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_token(&self, token: &ApiToken, token_hash: &str, owner: Option<Uuid>) -> Result<()> {
        Sql::new(
            "INSERT INTO api_tokens (id, name, scope, prefix, token_hash, created_by, created_at, admin_id) VALUES (",
        )
        .bind_text(token.id.to_string())
        .push(", ")
        .bind_text(token.name.clone())
        .push(", ")
        .bind_text(token.scope.as_str())
        .push(", ")
        .bind_text(token.prefix.clone())
        .push(", ")
        .bind_text(token_hash.to_owned())
        .push(", ")
        .bind_text(token.created_by.clone())
        .push(", ")
        .bind_int(micros(token.created_at))
        .push(", ")
        .bind_opt_text(owner.map(|id| id.to_string()))
        .push(")")
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn use_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<ApiToken>> {
        let row = select_tokens()
            .push(" WHERE t.token_hash = ")
            .bind_text(token_hash.to_owned())
            .push(" AND t.revoked_at IS NULL AND a.disabled_at IS NULL")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row)?;
        // Recording use is best effort at minute granularity, to keep authentication read-mostly.
        // It takes its turn among this process's writers (on SQLite, waiting for the database's
        // lock instead sleeps in its busy handler, seconds behind a long batch), and a failure
        // does not refuse the token.
        let stale = token.last_used_at.is_none_or(|t| now - t > time::Duration::minutes(1));
        if stale && let Err(e) = self.stamp_token_use(token.id, now).await {
            tracing::debug!(error = %e, token = %token.id, "recording a token's last use failed");
        }
        Ok(Some(token))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = select_tokens()
            .push(" ORDER BY t.created_at DESC, t.id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> Result<ApiToken> {
        Sql::new("UPDATE api_tokens SET revoked_at = ")
            .bind_int(micros(now))
            .push(" WHERE revoked_at IS NULL AND id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        let row = select_tokens()
            .push(" WHERE t.id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(token_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found("token", id))
    }

    async fn insert_session(
        &self,
        id_hash: &str,
        admin_id: Uuid,
        csrf_token: &str,
        now: OffsetDateTime,
        remote_addr: Option<&str>,
    ) -> Result<()> {
        Sql::new("INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, last_seen_at, remote_addr) VALUES (")
            .bind_text(id_hash.to_owned())
            .push(", ")
            .bind_text(admin_id.to_string())
            .push(", ")
            .bind_text(csrf_token.to_owned())
            .push(", ")
            .bind_int(micros(now))
            .push(", ")
            .bind_int(micros(now))
            .push(", ")
            .bind_opt_text(remote_addr.map(str::to_owned))
            .push(")")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str) -> Result<Option<Session>> {
        let row = Sql::new("SELECT ")
            .push(ADMIN_COLUMNS)
            .push(
                ", s.csrf_token, s.created_at AS session_created_at, s.last_seen_at \
                 FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = ",
            )
            .bind_text(id_hash.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Session {
                admin: admin_from_row(&row)?,
                csrf_token: get(&row, "csrf_token")?,
                created_at: from_micros(get(&row, "session_created_at")?)?,
                last_seen_at: from_micros(get(&row, "last_seen_at")?)?,
            })
        })
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, now: OffsetDateTime) -> Result<()> {
        Sql::new("UPDATE admin_sessions SET last_seen_at = ")
            .bind_int(micros(now))
            .push(" WHERE id_hash = ")
            .bind_text(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        Sql::new("DELETE FROM admin_sessions WHERE id_hash = ")
            .bind_text(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, admin_id: Uuid) -> Result<()> {
        Sql::new("DELETE FROM admin_sessions WHERE admin_id = ")
            .bind_text(admin_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_audit(&self, record: &AuditRecord) -> Result<()> {
        Sql::new("INSERT INTO audit_log (id, occurred_at, event, username, actor, remote_addr, detail) VALUES (")
            .bind_text(record.id.to_string())
            .push(", ")
            .bind_int(micros(record.occurred_at))
            .push(", ")
            .bind_text(record.event.as_str())
            .push(", ")
            .bind_text(record.username.clone())
            .push(", ")
            .bind_text(record.actor.clone())
            .push(", ")
            .bind_opt_text(record.remote_addr.clone())
            .push(", ")
            .bind_text(record.detail.clone())
            .push(")")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_audit(&self, limit: i64, before: Option<OffsetDateTime>) -> Result<Vec<AuditRecord>> {
        let mut sql = Sql::new("SELECT id, occurred_at, event, username, actor, remote_addr, detail FROM audit_log");
        if let Some(before) = before {
            sql = sql.push(" WHERE occurred_at < ").bind_int(micros(before));
        }
        let rows = sql
            .push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
            .bind_int(limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
