//! SQL for administrators and API tokens.

use super::AdminStore;
use super::sql::{Sql, SqlStore, from_micros, get, get_bool, get_uuid, micros};
use crate::domain::admin::{Admin, ApiToken, TokenScope};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

fn select_tokens() -> Sql {
    Sql::new("SELECT id, name, scope, prefix, created_by, created_at, last_used_at, revoked_at FROM api_tokens")
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: get_uuid(row, "id")?,
        name: get(row, "name")?,
        scope: TokenScope::parse(&get::<String>(row, "scope")?)?,
        prefix: get(row, "prefix")?,
        created_by: get(row, "created_by")?,
        created_at: from_micros(get(row, "created_at")?)?,
        last_used_at: get::<Option<i64>>(row, "last_used_at")?.map(from_micros).transpose()?,
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(from_micros).transpose()?,
    })
}

impl AdminStore for SqlStore {
    async fn count_admins(&self) -> Result<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM admins")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "n")).unwrap_or(Ok(0))
    }

    async fn insert_admin(&self, admin: &Admin) -> Result<()> {
        Sql::new(
            "INSERT INTO admins (id, username, username_key, password_hash, must_change_password, created_at) VALUES (",
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
        .push(")")
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_admin(&self, username: &str) -> Result<Option<Admin>> {
        let row = Sql::new(
            "SELECT id, username, password_hash, must_change_password, created_at FROM admins WHERE username_key = ",
        )
        .bind_text(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Admin {
                id: get_uuid(&row, "id")?,
                username: get(&row, "username")?,
                password_hash: get(&row, "password_hash")?,
                must_change_password: get_bool(&row, "must_change_password")?,
                created_at: from_micros(get(&row, "created_at")?)?,
            })
        })
        .transpose()
    }

    async fn set_admin_password(&self, id: Uuid, password_hash: &str) -> Result<()> {
        Sql::new("UPDATE admins SET must_change_password = 0, password_hash = ")
            .bind_text(password_hash.to_owned())
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_token(&self, token: &ApiToken, token_hash: &str) -> Result<()> {
        Sql::new("INSERT INTO api_tokens (id, name, scope, prefix, token_hash, created_by, created_at) VALUES (")
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
            .push(")")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<ApiToken>> {
        let row = select_tokens()
            .push(" WHERE token_hash = ")
            .bind_text(token_hash.to_owned())
            .push(" AND revoked_at IS NULL")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row)?;
        // Recording use is best effort at minute granularity, to keep authentication read-mostly.
        let stale = token.last_used_at.is_none_or(|t| now - t > time::Duration::minutes(1));
        if stale {
            Sql::new("UPDATE api_tokens SET last_used_at = ")
                .bind_int(micros(now))
                .push(" WHERE id = ")
                .bind_text(token.id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = select_tokens()
            .push(" ORDER BY created_at DESC, id")
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
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(token_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found("token", id))
    }
}
