//! The write transaction every store write runs in: begun and ended with plain `BEGIN` and
//! `COMMIT`, savepoints for writes that may be undone alone, and the change-log append.

use super::query::{Sql, micros};
use crate::domain::change::NewChange;
use crate::domain::scim::schema::ResourceSchema;
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
    /// The User schema with the custom attributes as this transaction sees them, read once for
    /// all the users it indexes (definitions cannot change while it holds the change log).
    pub(super) user_schema: Option<ResourceSchema>,
    /// The change sequence while this transaction holds it (directory writes only).
    sequence: Option<Sequence>,
}

/// The change log's sequence as a directory write transaction moves it: read once when the
/// transaction takes the `change_sequence` row, counted here, and stored once before the commit.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    /// The last number committed before this transaction.
    start: i64,
    /// The last number this transaction has given out.
    last: i64,
    /// `last` when the open savepoint began; restored when it is rolled back.
    at_savepoint: i64,
}

impl WriteTx {
    pub(super) async fn begin(pool: &AnyPool, gate: Option<tokio::sync::OwnedMutexGuard<()>>) -> Result<Self> {
        let conn = pool.acquire().await?;
        let mut tx = Self {
            conn,
            committed: false,
            _gate: gate,
            user_schema: None,
            sequence: None,
        };
        sqlx::query("BEGIN").execute(tx.conn()).await?;
        Ok(tx)
    }

    /// The connection the transaction runs on.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Starts a directory write: takes this process's turn to write, then the change-log row, so
    /// that writers are serialised and change sequence numbers commit in order, without gaps.
    pub(super) async fn begin_directory(pool: &AnyPool, gate: &std::sync::Arc<tokio::sync::Mutex<()>>) -> Result<Self> {
        let gate = gate.clone().lock_owned().await;
        let mut tx = Self::begin(pool, Some(gate)).await?;
        tx.take_sequence().await?;
        Ok(tx)
    }

    /// Takes the `change_sequence` row for the rest of the transaction (other directory writers,
    /// on any node, wait for its commit) and reads where the sequence stands.
    async fn take_sequence(&mut self) -> Result<()> {
        // Run to its end, like every statement with RETURNING (see `Sql::fetch_optional`).
        let rows = sqlx::query("UPDATE change_sequence SET last_seq = last_seq WHERE id = 1 RETURNING last_seq")
            .fetch_all(self.conn())
            .await?;
        let last: i64 = rows
            .first()
            .ok_or_else(|| Error::Storage("the change sequence row is missing".into()))?
            .try_get(0)?;
        self.sequence = Some(Sequence {
            start: last,
            last,
            at_savepoint: last,
        });
        Ok(())
    }

    /// Commits. Success means the database acknowledged the commit; on any error the
    /// connection is closed and nothing of the transaction is committed by this process.
    pub(super) async fn commit(mut self) -> Result<()> {
        if let Some(sequence) = self.sequence
            && sequence.last != sequence.start
        {
            Sql::new("UPDATE change_sequence SET last_seq = ")
                .bind_int(sequence.last)
                .push(" WHERE id = 1")
                .execute(self.conn())
                .await?;
        }
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
        if let Some(sequence) = &mut self.sequence {
            sequence.at_savepoint = sequence.last;
        }
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
        // The numbers given out since the savepoint went with its rows: give them out again.
        if let Some(sequence) = &mut self.sequence {
            sequence.last = sequence.at_savepoint;
        }
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
        let first = self.record_all(vec![change]).await?;
        Ok(first)
    }

    /// Appends `changes` to the log in order, with the next sequence numbers, in as few statements
    /// as the bind limits allow; returns the first number given out.
    pub(super) async fn record_all(&mut self, changes: Vec<NewChange>) -> Result<i64> {
        let sequence = self
            .sequence
            .as_mut()
            .ok_or_else(|| Error::Internal("a change was recorded outside a directory write".into()))?;
        let first = sequence.last + 1;
        let mut seq = sequence.last;
        sequence.last += i64::try_from(changes.len()).unwrap_or(i64::MAX);
        let occurred_at = micros(crate::domain::now());
        let mut changes = changes.into_iter().peekable();
        while changes.peek().is_some() {
            let mut sql = Sql::new(
                "INSERT INTO change_log (seq, occurred_at, entity, entity_id, related_id, operation, actor, data) VALUES ",
            );
            for (i, change) in changes.by_ref().take(CHANGE_CHUNK).enumerate() {
                seq += 1;
                sql = sql
                    .push(if i == 0 { "(" } else { ", (" })
                    .bind_int(seq)
                    .push(", ")
                    .bind_int(occurred_at)
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
                    .push(")");
            }
            sql.execute(self.conn()).await?;
        }
        Ok(first)
    }
}

/// Change-log rows inserted per statement (8 values each).
const CHANGE_CHUNK: usize = 50;
