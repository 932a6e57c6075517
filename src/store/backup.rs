//! What backups and restores need from the store: a consistent copy of an SQLite store taken
//! while it serves, the schema version a database is at, an integrity check, whether a database
//! holds anything, and the claims a restored database gives back (no worker of the restored hub
//! holds them).

use super::sql::{Backend, SqlStore};
use crate::domain::{Error, Result, now};
use std::path::Path;

/// The newest schema version this binary knows (its last migration).
pub fn known_schema_version() -> i64 {
    super::sql::known_schema_version()
}

impl SqlStore {
    /// Writes a consistent copy of this SQLite store to `path` (`VACUUM INTO`), while other
    /// connections go on reading and writing. `path` must not exist yet.
    pub async fn snapshot_sqlite(&self, path: &Path) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Err(Error::Config(
                "an online snapshot is taken of the embedded SQLite store only; PostgreSQL is backed up with pg_dump"
                    .into(),
            ));
        }
        let target = path
            .to_str()
            .ok_or_else(|| Error::Config(format!("the backup path {} is not valid UTF-8", path.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many tables the database holds (its catalog is the one thing the two databases name
    /// differently).
    pub async fn table_count(&self) -> Result<i64> {
        let catalog = match self.backend() {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        };
        self.query_scalar(catalog).await
    }

    /// The newest migration this database has applied (0 when it has none).
    pub async fn schema_version(&self) -> Result<i64> {
        if self.table_count().await? == 0 {
            return Ok(0);
        }
        Ok(self
            .query_integers("SELECT version FROM _sqlx_migrations ORDER BY version DESC LIMIT 1")
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// Checks an SQLite database file page by page (`PRAGMA integrity_check`).
    pub async fn check_sqlite_integrity(&self) -> Result<()> {
        let row = sqlx::query("PRAGMA integrity_check").fetch_one(&self.pool).await?;
        let verdict: String = sqlx::Row::try_get(&row, 0)?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(Error::Storage(format!("the database file is damaged: {verdict}")))
        }
    }

    /// Gives back every claim a restored database holds: running provisioning jobs become due
    /// again (a newer job for the same subject supersedes them) and running LDAP syncs are queued
    /// again. Returns how many were given back.
    pub async fn release_claims(&self) -> Result<u64> {
        self.execute_raw("UPDATE sync_jobs SET lease_until = 0 WHERE status = 'running'")
            .await?;
        self.execute_raw("UPDATE ldap_runs SET lease_until = 0 WHERE status = 'running'")
            .await?;
        let at = now();
        let jobs = super::QueueStore::requeue_expired(self, at).await?;
        let runs = super::LdapRunStore::requeue_expired_ldap_runs(self, at).await?;
        Ok(jobs + runs)
    }
}
