//! The SQL store itself: connecting, migrating, the sorting of database errors, and where write
//! transactions begin (`tx.rs` holds them, `commit.rs` batches directory writes, `query.rs` is the
//! query builder every module writes SQL with).

use super::commit::{CommitQueue, WriteBatchCounters, WriteFuture};
use crate::domain::error::StoreFault;
use crate::domain::{Error, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::path::Path;
use std::time::Duration;

pub(super) use super::query::{
    Sql, decode_cursor, encode_cursor, from_micros, get, get_bool, get_uuid, like_pattern, micros,
};
pub(super) use super::tx::WriteTx;

/// The migration history, oldest first. One list for both databases.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "directory", include_str!("../../migrations/0001_directory.sql")),
    (2, "outbound", include_str!("../../migrations/0002_outbound.sql")),
    (3, "scim_server", include_str!("../../migrations/0003_scim_server.sql")),
    (
        4,
        "deprovisioning",
        include_str!("../../migrations/0004_deprovisioning.sql"),
    ),
    (5, "console", include_str!("../../migrations/0005_console.sql")),
    (
        6,
        "report_counts",
        include_str!("../../migrations/0006_report_counts.sql"),
    ),
    (7, "job_claims", include_str!("../../migrations/0007_job_claims.sql")),
    (8, "target_runs", include_str!("../../migrations/0008_target_runs.sql")),
    (
        9,
        "ldap_sources",
        include_str!("../../migrations/0009_ldap_sources.sql"),
    ),
];

/// The database kinds Provisio runs on; chosen once when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server (for several nodes).
    Postgres,
}

/// The one storage implementation: every query here runs unchanged on SQLite and PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    backend: Backend,
    /// Queues this process's write transactions in arrival order. They are serialised by the
    /// change-log lock anyway (`begin_write`); queueing here first means a writer waits its turn
    /// instead of polling the database's lock (SQLite's busy handler sleeps in growing steps).
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Directory writes waiting to share the next transaction (group commit, `commit.rs`).
    commits: std::sync::Arc<CommitQueue>,
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return Error::Conflict {
                    field: None,
                    message: "that value is already taken".into(),
                };
            }
            if db.is_foreign_key_violation() {
                return Error::Conflict {
                    field: None,
                    message: "a referenced object does not exist or is still in use".into(),
                };
            }
        }
        match store_fault(&err) {
            Some(fault) => Error::StoreUnavailable {
                fault,
                detail: err.to_string(),
            },
            None => Error::Storage(err.to_string()),
        }
    }
}

/// Whether `err` is a passing condition of the database (full, unreachable, I/O) rather than a
/// bad statement or bad data: work refused for such a reason succeeds later unchanged.
fn store_fault(err: &sqlx::Error) -> Option<StoreFault> {
    match err {
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                let code = sqlx::error::DatabaseError::code(sqlite).and_then(|c| c.parse::<i32>().ok())?;
                sqlite_fault(code)
            } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_fault(pg.code())
            } else {
                None
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(StoreFault::Unreachable),
        _ => None,
    }
}

/// SQLite result codes (primary code in the low byte of an extended one) that pass by themselves.
fn sqlite_fault(code: i32) -> Option<StoreFault> {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    const SQLITE_NOMEM: i32 = 7;
    const SQLITE_READONLY: i32 = 8;
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_FULL: i32 = 13;
    const SQLITE_CANTOPEN: i32 = 14;
    match code & 0xff {
        SQLITE_FULL => Some(StoreFault::Full),
        SQLITE_IOERR | SQLITE_READONLY | SQLITE_CANTOPEN | SQLITE_NOMEM => Some(StoreFault::Io),
        SQLITE_BUSY | SQLITE_LOCKED => Some(StoreFault::Busy),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs that pass by themselves: out of space or resources, shutting down or
/// starting up, connection lost, read-only (a standby), I/O trouble.
fn postgres_fault(code: &str) -> Option<StoreFault> {
    match code {
        "53100" => Some(StoreFault::Full),
        "58030" | "25006" | "53000" | "53200" => Some(StoreFault::Io),
        _ if code.starts_with("08") || code.starts_with("57P") || code == "53300" => Some(StoreFault::Unreachable),
        _ => None,
    }
}

fn migrate_error(err: MigrateError) -> Error {
    match err {
        MigrateError::VersionMissing(v) => Error::Schema(format!(
            "the database has migration {v}, which this binary does not know: it was written by a newer Provisio; upgrade the binary"
        )),
        other => Error::Schema(other.to_string()),
    }
}

/// The SQLite URL for the store file inside `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("provisio.db").display())
}

/// The newest schema version this binary knows (its last migration).
pub(super) fn known_schema_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

impl SqlStore {
    /// Connects to `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::Config(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        // A request waits at most this long for a connection; while the database is down or
        // restarting, it is then answered 503 instead of hanging.
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        options = match backend {
            // One file, many readers, one writer at a time: WAL lets readers go on while a write commits.
            // A connection to a local file does not go stale, so it is not pinged before each use
            // (a ping is a round trip to the connection's thread, as costly as a small query).
            Backend::Sqlite => options
                .max_connections(8)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        // 8 MB of pages per connection instead of SQLite's 2 MB, so that the index
                        // pages a write touches stay in memory as the store grows.
                        sqlx::query("PRAGMA cache_size = -8192").execute(&mut *conn).await?;
                        // Temporary files (the journals a write's savepoints keep, sorts) in
                        // memory: on disk they were most of what SCIM writes sent through write()
                        // (6,000 writes: 2.1 GB with them on disk, 0.57 GB with them in memory).
                        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => options.max_connections(16).after_connect(|_, _| {
                Box::pin(async move {
                    super::nodelay::set_on_tcp_sockets();
                    Ok(())
                })
            }),
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|e| Error::Storage(format!("cannot open the database: {}", redact_url_error(e))))?;
        let write_gate = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        Ok(Self {
            commits: std::sync::Arc::new(CommitQueue::new(pool.clone(), write_gate.clone())),
            pool,
            backend,
            write_gate,
        })
    }

    /// Opens (creating if needed) the embedded SQLite store in `data_dir`.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Config(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
        Self::connect(&sqlite_url(data_dir)).await
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations, each in its own transaction; refuses a schema newer than this binary.
    /// Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table(&migrator.table_name)
            .await
            .map_err(migrate_error)?;
        let applied = conn
            .list_applied_migrations(&migrator.table_name)
            .await
            .map_err(migrate_error)?;
        let known = known_schema_version();
        if let Some(newest) = applied.iter().map(|m| m.version).max()
            && newest > known
        {
            return Err(Error::Schema(format!(
                "the database schema is at version {newest}, newer than this binary knows ({known}): upgrade Provisio before using this database"
            )));
        }
        let before: Vec<i64> = applied.iter().map(|m| m.version).collect();
        migrator.run(&mut *conn).await.map_err(migrate_error)?;
        Ok(MIGRATIONS.iter().map(|m| m.0).filter(|v| !before.contains(v)).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a directory write: takes the change-log lock first, so that writers are serialised
    /// and change sequence numbers commit in order, without gaps.
    pub(super) async fn begin_write(&self) -> Result<WriteTx> {
        WriteTx::begin_directory(&self.pool, &self.write_gate).await
    }

    /// Runs `write` in a directory write transaction shared with the writers that queue beside it
    /// (group commit, `commit.rs`), and returns its value once that transaction has committed.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut WriteTx) -> WriteFuture<'t, T> + Send + 'static,
    {
        self.commits.write(write).await
    }

    /// The counts of directory write batches, for the metrics.
    pub fn write_batch_counters(&self) -> WriteBatchCounters {
        self.commits.counters()
    }

    /// Starts a write transaction that does not touch the change log (job claims and ends,
    /// report rows). It takes this process's turn to write like a directory write: SQLite has one
    /// writer at a time, and a transaction that read before another's commit could not write
    /// after it (`SQLITE_BUSY_SNAPSHOT`), so in-process writers queue here instead.
    pub(super) async fn begin(&self) -> Result<WriteTx> {
        let gate = self.write_gate.clone().lock_owned().await;
        WriteTx::begin(&self.pool, Some(gate)).await
    }

    /// Proves that the store takes writes now: one write transaction, committed. Readiness uses it.
    pub async fn probe_write(&self) -> Result<()> {
        self.begin_write().await?.commit().await
    }
}

fn redact_url_error(err: sqlx::Error) -> String {
    // Connection errors from the drivers do not echo the URL, but be certain no password leaks.
    let text = err.to_string();
    match text.find("://") {
        Some(_) => "connection failed (details withheld because they contain the URL)".into(),
        None => text,
    }
}

impl SqlStore {
    /// Runs one statement of fixed administrative SQL (e.g. `CREATE DATABASE` in test set-up and tools).
    /// Never pass text that contains user input.
    pub async fn execute_raw(&self, statement: &str) -> Result<u64> {
        Ok(sqlx::query(AssertSqlSafe(statement.to_owned()))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Runs a fixed query that returns one integer (counts in tests and tools).
    pub async fn query_scalar(&self, statement: &str) -> Result<i64> {
        let row = sqlx::query(AssertSqlSafe(statement.to_owned()))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }
}

impl SqlStore {
    /// Runs a fixed query that returns one integer per row (measurements in tools and benchmarks).
    /// Never pass text that contains user input.
    pub async fn query_integers(&self, statement: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(AssertSqlSafe(statement.to_owned()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(Error::from))
            .collect()
    }
}

impl SqlStore {
    /// Runs a fixed query that returns one text per row (inspections in tools and tests).
    /// Never pass text that contains user input.
    pub async fn query_texts(&self, statement: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(AssertSqlSafe(statement.to_owned()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<Option<String>, _>(0)
                    .map(Option::unwrap_or_default)
                    .map_err(Error::from)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file in `migrations/` is in the history, in order and without gaps: a migration file
    /// that is written but not listed would never run.
    #[test]
    fn every_migration_file_is_in_the_history() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("the migrations folder")
            .map(|entry| {
                entry
                    .expect("a migrations entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(version, name, _)| format!("{version:04}_{name}.sql"))
            .collect();
        assert_eq!(files, listed);
        for (index, (version, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, index as i64 + 1, "versions run 1, 2, 3, ... without gaps");
            let text = std::fs::read_to_string(dir.join(&listed[index])).expect("a migration file");
            assert_eq!(&text, sql, "the embedded text is the file's");
        }
    }
}
