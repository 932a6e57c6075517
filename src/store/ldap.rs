//! SQL for LDAP sources: their settings and encrypted bind passwords, and the links that say
//! which hub users and groups each owns (the runs are in `ldap_runs.rs`).

use super::run_rows::parse_json;
use super::sql::{Sql, SqlStore, WriteTx, from_micros, get, get_uuid, micros};
use super::users::{attach_attributes, select_users, user_from_row};
use crate::domain::ldap::{LdapLink, LdapSource, LinkKind};
use crate::domain::user::User;
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::HashSet;
use std::future::Future;
use time::OffsetDateTime;
use uuid::Uuid;

/// Ids per `IN` list.
const CHUNK: usize = 500;

/// LDAP sources and the users and groups they own.
pub trait LdapStore: Send + Sync {
    /// Stores a new source with its encrypted bind password; refuses a name taken regardless of case.
    fn insert_ldap_source(
        &self,
        source: &LdapSource,
        password_ciphertext: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces a source's name and settings, and its password when one is given.
    fn update_ldap_source(
        &self,
        source: &LdapSource,
        password_ciphertext: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// One source by id.
    fn get_ldap_source(&self, id: Uuid) -> impl Future<Output = Result<Option<LdapSource>>> + Send;
    /// One source by name, regardless of case.
    fn get_ldap_source_by_name(&self, name: &str) -> impl Future<Output = Result<Option<LdapSource>>> + Send;
    /// Every source, by name.
    fn list_ldap_sources(&self) -> impl Future<Output = Result<Vec<LdapSource>>> + Send;
    /// Deletes a source with its links and runs (its users and groups stay, owned by nobody).
    fn delete_ldap_source(&self, id: Uuid) -> impl Future<Output = Result<()>> + Send;
    /// A source's encrypted bind password.
    fn ldap_source_password(&self, id: Uuid) -> impl Future<Output = Result<String>> + Send;
    /// The users and groups a source owns.
    fn ldap_links(&self, source: Uuid) -> impl Future<Output = Result<Vec<LdapLink>>> + Send;
    /// Writes (inserts or updates) and removes a source's links in one transaction.
    fn save_ldap_links(
        &self,
        source: Uuid,
        links: &[LdapLink],
        removed: &[(LinkKind, String)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Which of `hub_ids` some source owns.
    fn ldap_owned(&self, kind: LinkKind, hub_ids: &[Uuid]) -> impl Future<Output = Result<HashSet<Uuid>>> + Send;
    /// The source that owns a user or group, if one does.
    fn ldap_owner(&self, kind: LinkKind, hub_id: Uuid) -> impl Future<Output = Result<Option<LdapSource>>> + Send;
    /// The users with these usernames (any case).
    fn users_by_usernames(&self, usernames: &[String]) -> impl Future<Output = Result<Vec<User>>> + Send;
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Storage(format!("cannot encode: {e}")))
}

pub(super) fn select_sources() -> Sql {
    Sql::new("SELECT id, name, settings, created_at, updated_at FROM ldap_sources")
}

pub(super) fn source_from_row(row: &AnyRow) -> Result<LdapSource> {
    Ok(LdapSource {
        id: get_uuid(row, "id")?,
        name: get(row, "name")?,
        settings: parse_json(row, "settings")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn name_taken(name: &str) -> Error {
    Error::conflict("name", format!("an LDAP source named '{name}' already exists"))
}

/// The body of `insert_ldap_source`, inside the caller's write transaction.
pub(super) async fn insert_ldap_source_in(
    tx: &mut WriteTx,
    source: &LdapSource,
    password_ciphertext: &str,
) -> Result<()> {
    let taken = Sql::new("SELECT id FROM ldap_sources WHERE name_key = ")
        .bind_text(source.name.to_lowercase())
        .fetch_optional(tx.conn())
        .await?;
    if taken.is_some() {
        return Err(name_taken(&source.name));
    }
    Sql::new("INSERT INTO ldap_sources (id, name, name_key, settings, password_ciphertext, next_sync_at, created_at, updated_at) VALUES (")
        .bind_text(source.id.to_string())
        .push(", ")
        .bind_text(source.name.clone())
        .push(", ")
        .bind_text(source.name.to_lowercase())
        .push(", ")
        .bind_text(to_json(&source.settings)?)
        .push(", ")
        .bind_text(password_ciphertext.to_owned())
        .push(", ")
        .bind_opt_int(next_sync(source, source.created_at))
        .push(", ")
        .bind_int(micros(source.created_at))
        .push(", ")
        .bind_int(micros(source.updated_at))
        .push(")")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The body of `update_ldap_source`, inside the caller's write transaction.
pub(super) async fn update_ldap_source_in(
    tx: &mut WriteTx,
    source: &LdapSource,
    password_ciphertext: Option<&str>,
) -> Result<()> {
    let taken = Sql::new("SELECT id FROM ldap_sources WHERE name_key = ")
        .bind_text(source.name.to_lowercase())
        .push(" AND id <> ")
        .bind_text(source.id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if taken.is_some() {
        return Err(name_taken(&source.name));
    }
    let mut sql = Sql::new("UPDATE ldap_sources SET name = ")
        .bind_text(source.name.clone())
        .push(", name_key = ")
        .bind_text(source.name.to_lowercase())
        .push(", settings = ")
        .bind_text(to_json(&source.settings)?)
        .push(", next_sync_at = ")
        .bind_opt_int(next_sync(source, source.updated_at))
        .push(", updated_at = ")
        .bind_int(micros(source.updated_at));
    if let Some(ciphertext) = password_ciphertext {
        sql = sql.push(", password_ciphertext = ").bind_text(ciphertext.to_owned());
    }
    let changed = sql
        .push(" WHERE id = ")
        .bind_text(source.id.to_string())
        .execute(tx.conn())
        .await?;
    if changed == 0 {
        return Err(Error::not_found("LDAP source", source.id));
    }
    Ok(())
}

/// The body of `delete_ldap_source`, inside the caller's write transaction.
pub(super) async fn delete_ldap_source_in(tx: &mut WriteTx, id: Uuid) -> Result<()> {
    // Children first: SQLite enforces the cascades only with foreign keys switched on.
    for table in [
        Sql::new("DELETE FROM ldap_runs WHERE source_id = "),
        Sql::new("DELETE FROM ldap_links WHERE source_id = "),
    ] {
        table.bind_text(id.to_string()).execute(tx.conn()).await?;
    }
    let deleted = Sql::new("DELETE FROM ldap_sources WHERE id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    if deleted == 0 {
        return Err(Error::not_found("LDAP source", id));
    }
    Ok(())
}

impl LdapStore for SqlStore {
    async fn insert_ldap_source(&self, source: &LdapSource, password_ciphertext: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_ldap_source_in(&mut tx, source, password_ciphertext).await?;
        tx.commit().await
    }

    async fn update_ldap_source(&self, source: &LdapSource, password_ciphertext: Option<&str>) -> Result<()> {
        let mut tx = self.begin().await?;
        update_ldap_source_in(&mut tx, source, password_ciphertext).await?;
        tx.commit().await
    }

    async fn get_ldap_source(&self, id: Uuid) -> Result<Option<LdapSource>> {
        let row = select_sources()
            .push(" WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn get_ldap_source_by_name(&self, name: &str) -> Result<Option<LdapSource>> {
        let row = select_sources()
            .push(" WHERE name_key = ")
            .bind_text(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn list_ldap_sources(&self) -> Result<Vec<LdapSource>> {
        let rows = select_sources()
            .push(" ORDER BY name_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn delete_ldap_source(&self, id: Uuid) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_ldap_source_in(&mut tx, id).await?;
        tx.commit().await
    }

    async fn ldap_source_password(&self, id: Uuid) -> Result<String> {
        let row = Sql::new("SELECT password_ciphertext FROM ldap_sources WHERE id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found("LDAP source", id))?;
        get(&row, "password_ciphertext")
    }

    async fn ldap_links(&self, source: Uuid) -> Result<Vec<LdapLink>> {
        let rows = Sql::new("SELECT kind, ldap_id, hub_id, dn, gone_since FROM ldap_links WHERE source_id = ")
            .bind_text(source.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LdapLink {
                    kind: LinkKind::parse(&get::<String>(row, "kind")?)?,
                    ldap_id: get(row, "ldap_id")?,
                    hub_id: get_uuid(row, "hub_id")?,
                    dn: get(row, "dn")?,
                    gone_since: get::<Option<i64>>(row, "gone_since")?.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    async fn save_ldap_links(&self, source: Uuid, links: &[LdapLink], removed: &[(LinkKind, String)]) -> Result<()> {
        if links.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (kind, ldap_id) in removed {
            Sql::new("DELETE FROM ldap_links WHERE source_id = ")
                .bind_text(source.to_string())
                .push(" AND kind = ")
                .bind_text(kind.as_str())
                .push(" AND ldap_id = ")
                .bind_text(ldap_id.clone())
                .execute(tx.conn())
                .await?;
        }
        for chunk in links.chunks(100) {
            let mut sql = Sql::new("INSERT INTO ldap_links (source_id, kind, ldap_id, hub_id, dn, gone_since) VALUES ");
            for (i, link) in chunk.iter().enumerate() {
                if i > 0 {
                    sql = sql.push(", ");
                }
                sql = sql
                    .push("(")
                    .bind_text(source.to_string())
                    .push(", ")
                    .bind_text(link.kind.as_str())
                    .push(", ")
                    .bind_text(link.ldap_id.clone())
                    .push(", ")
                    .bind_text(link.hub_id.to_string())
                    .push(", ")
                    .bind_text(link.dn.clone())
                    .push(", ")
                    .bind_opt_int(link.gone_since.map(micros))
                    .push(")");
            }
            sql.push(
                " ON CONFLICT (source_id, kind, ldap_id) DO UPDATE SET hub_id = excluded.hub_id, dn = excluded.dn, gone_since = excluded.gone_since",
            )
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await
    }

    async fn ldap_owned(&self, kind: LinkKind, hub_ids: &[Uuid]) -> Result<HashSet<Uuid>> {
        let mut owned = HashSet::new();
        for chunk in hub_ids.chunks(CHUNK) {
            let rows = Sql::new("SELECT hub_id FROM ldap_links WHERE kind = ")
                .bind_text(kind.as_str())
                .push(" AND hub_id IN ")
                .bind_text_list(chunk.iter().map(Uuid::to_string))
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                owned.insert(get_uuid(row, "hub_id")?);
            }
        }
        Ok(owned)
    }

    async fn ldap_owner(&self, kind: LinkKind, hub_id: Uuid) -> Result<Option<LdapSource>> {
        let row = select_sources()
            .push(" WHERE id IN (SELECT source_id FROM ldap_links WHERE kind = ")
            .bind_text(kind.as_str())
            .push(" AND hub_id = ")
            .bind_text(hub_id.to_string())
            .push(")")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn users_by_usernames(&self, usernames: &[String]) -> Result<Vec<User>> {
        let mut users = Vec::new();
        for chunk in usernames.chunks(CHUNK) {
            let rows = select_users()
                .push(" WHERE username_key IN ")
                .bind_text_list(chunk.iter().map(|name| name.to_lowercase()))
                .fetch_all(&self.pool)
                .await?;
            let mut found = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
            attach_attributes(&self.pool, &mut found).await?;
            users.extend(found);
        }
        Ok(users)
    }
}

/// When a source's next scheduled sync is due, counted from `from`.
pub(super) fn next_sync(source: &LdapSource, from: OffsetDateTime) -> Option<i64> {
    source
        .settings
        .sync_every_minutes
        .map(|minutes| micros(from + time::Duration::minutes(i64::from(minutes))))
}
