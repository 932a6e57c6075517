//! The write transaction every store write runs in: begun and ended with plain `BEGIN` and
//! `COMMIT`, savepoints for writes that may be undone alone, and the change-log append.

use super::sql::{Sql, micros};
use crate::domain::change::NewChange;
use crate::domain::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row};

/// A write transaction on a connection of its own. The transaction is begun and ended here, with
/// plain `BEGIN` and `COMMIT`, and never handed back unfinished: unless `commit` succeeds, the
/// connection is closed instead of returned to the pool, which ends the transaction on the
/// server (rolled back). So a connection whose transaction state is in doubt after an error
/// (SQLite may roll a transaction back by itself on `SQLITE_FULL`, `SQLITE_IOERR`, ...; a
/// PostgreSQL connection may be cut) never serves another request, and success means committed.
pub(super) struct WriteTx {
    conn: PoolConnection<Any>,
    committed: bool,
    /// This process's turn to write, released with the transaction.
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(super) async fn begin(pool: &AnyPool, gate: Option<tokio::sync::OwnedMutexGuard<()>>) -> Result<Self> {
        let conn = pool.acquire().await?;
        let mut tx = Self {
            conn,
            committed: false,
            _gate: gate,
        };
        sqlx::query("BEGIN").execute(tx.conn()).await?;
        Ok(tx)
    }

    /// The connection the transaction runs on.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Commits. Success means the database acknowledged the commit; on any error the
    /// connection is closed and nothing of the transaction is committed by this process.
    pub(super) async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(self.conn()).await?;
        // The connection is clean again and may go back to the pool.
        self.committed = true;
        Ok(())
    }
}

impl WriteTx {
    /// Opens a savepoint: the statements after it can be undone alone (`rollback_to_savepoint`).
    pub(super) async fn savepoint(&mut self) -> Result<()> {
        sqlx::query("SAVEPOINT item").execute(self.conn()).await?;
        Ok(())
    }

    /// Keeps what was done since the savepoint and closes it.
    pub(super) async fn release_savepoint(&mut self) -> Result<()> {
        sqlx::query("RELEASE SAVEPOINT item").execute(self.conn()).await?;
        Ok(())
    }

    /// Undoes what was done since the savepoint and closes it; the transaction goes on.
    pub(super) async fn rollback_to_savepoint(&mut self) -> Result<()> {
        sqlx::query("ROLLBACK TO SAVEPOINT item").execute(self.conn()).await?;
        sqlx::query("RELEASE SAVEPOINT item").execute(self.conn()).await?;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        // Not committed (an error, or the caller's future was dropped): whatever state the
        // transaction is in, closing the connection rolls it back and keeps it out of the pool.
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl WriteTx {
    /// Appends `change` to the log with the next sequence number.
    pub(super) async fn record(&mut self, change: NewChange) -> Result<i64> {
        // Run to its end, like every statement with RETURNING (see `Sql::fetch_optional`).
        let rows = sqlx::query("UPDATE change_sequence SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq")
            .fetch_all(self.conn())
            .await?;
        let seq: i64 = rows
            .first()
            .ok_or_else(|| Error::Storage("the change sequence row is missing".into()))?
            .try_get(0)?;
        Sql::new(
            "INSERT INTO change_log (seq, occurred_at, entity, entity_id, related_id, operation, actor, data) VALUES (",
        )
        .bind_int(seq)
        .push(", ")
        .bind_int(micros(crate::domain::now()))
        .push(", ")
        .bind_text(change.entity.as_str())
        .push(", ")
        .bind_text(change.entity_id)
        .push(", ")
        .bind_opt_text(change.related_id)
        .push(", ")
        .bind_text(change.operation.as_str())
        .push(", ")
        .bind_text(change.actor)
        .push(", ")
        .bind_text(change.data.to_string())
        .push(")")
        .execute(self.conn())
        .await?;
        Ok(seq)
    }
}
