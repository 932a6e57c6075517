//! Backups and restores of the hub's store.
//!
//! `provisio backup` copies the store while hubs run on it: the embedded SQLite store with
//! `VACUUM INTO` (one read transaction, so the copy is consistent), PostgreSQL with `pg_dump`'s
//! custom format. `provisio restore` puts a backup back into a data directory no hub runs on, or
//! into an empty PostgreSQL database, and refuses a backup whose schema is newer than this binary.
//! `provisio serve --backup-dir` takes backups on a schedule and keeps the newest few.
//!
//! A backup holds what the store holds: app tokens and LDAP bind passwords stay encrypted with the
//! hub's secret key file, and passwords and tokens of people are stored only as hashes. The key
//! file is not in the backup: it must be kept beside it.

use crate::config::{BackupSchedule, DatabaseConfig};
use crate::data_lock::DataDirLock;
use crate::domain::{Error, Result};
use crate::store::{SqlStore, known_schema_version};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

/// The store's file in a data directory.
const STORE_FILE: &str = "provisio.db";

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupFormat {
    /// An SQLite database file (from the embedded store).
    Sqlite,
    /// A `pg_dump` archive in its custom format (from PostgreSQL).
    PgDump,
}

impl BackupFormat {
    /// The file name ending of scheduled backups in this format.
    fn extension(self) -> &'static str {
        match self {
            BackupFormat::Sqlite => "db",
            BackupFormat::PgDump => "pgdump",
        }
    }

    /// Reads the format from the file's first bytes.
    pub fn of_file(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut head = [0u8; 16];
        let read = std::fs::File::open(path)
            .and_then(|mut file| file.read(&mut head))
            .map_err(|e| Error::Config(format!("cannot read the backup {}: {e}", path.display())))?;
        if read == 16 && &head == b"SQLite format 3\0" {
            Ok(BackupFormat::Sqlite)
        } else if read >= 5 && &head[..5] == b"PGDMP" {
            Ok(BackupFormat::PgDump)
        } else {
            Err(Error::Config(format!(
                "{} is not a Provisio backup (neither an SQLite database nor a pg_dump archive)",
                path.display()
            )))
        }
    }
}

/// A backup taken.
#[derive(Debug, Clone)]
pub struct Backup {
    /// Where it was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The schema version of the store it copies.
    pub schema_version: i64,
    /// Its format.
    pub format: BackupFormat,
}

/// A restore carried out.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The schema version of the backup (migrations bring it up to date when the hub starts).
    pub schema_version: i64,
    /// Provisioning jobs and LDAP syncs that were running when the backup was taken, now due again.
    pub claims_released: u64,
}

/// Copies the store to `to`, which must not exist, while hubs may be running on it.
pub async fn backup(database: &DatabaseConfig, to: &Path) -> Result<Backup> {
    if to.exists() {
        return Err(Error::Config(format!(
            "{} exists already: a backup never overwrites a file",
            to.display()
        )));
    }
    let partial = partial_path(to)?;
    let _ = std::fs::remove_file(&partial);
    let taken = write_backup(database, &partial).await.and_then(|taken| {
        // VACUUM INTO and pg_dump leave the file to the page cache: on disk before it is named
        // like a backup, and the name on disk before the backup is said to be taken.
        sync_file(&partial)?;
        std::fs::rename(&partial, to)
            .map_err(|e| Error::Config(format!("cannot move the backup into {}: {e}", to.display())))?;
        if let Some(dir) = to.parent() {
            sync_directory(dir);
        }
        Ok(taken)
    });
    let (schema_version, format) = match taken {
        Ok(taken) => taken,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(Backup {
        path: to.to_owned(),
        bytes,
        schema_version,
        format,
    })
}

/// Writes the backup of `database` to `partial`; returns its schema version and format.
async fn write_backup(database: &DatabaseConfig, partial: &Path) -> Result<(i64, BackupFormat)> {
    Ok(match database {
        DatabaseConfig::Sqlite { data_dir } => {
            let store = open_existing_sqlite(data_dir).await?;
            let copied = async {
                let version = store.schema_version().await?;
                store.snapshot_sqlite(partial).await?;
                Ok::<_, Error>(version)
            }
            .await;
            store.close().await;
            (copied?, BackupFormat::Sqlite)
        }
        DatabaseConfig::Url(url) => {
            let store = SqlStore::connect(url.expose_secret()).await?;
            let version = store.schema_version().await;
            store.close().await;
            let version = version?;
            let partial_arg = partial.display().to_string();
            run_pg_tool(
                "pg_dump",
                &[
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--file",
                    &partial_arg,
                ],
                url,
            )
            .await?;
            (version, BackupFormat::PgDump)
        }
    })
}

/// Flushes a file's contents to disk.
fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| Error::Config(format!("cannot flush the backup {} to disk: {e}", path.display())))
}

/// Flushes a directory's entries (a rename in it) to disk, where the system allows it.
fn sync_directory(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// Puts the backup `from` back: into a data directory no hub runs on (its store is replaced only
/// with `replace`), or into an empty PostgreSQL database. Refuses a backup whose schema is newer
/// than this binary. Claims held when the backup was taken are given back, so that the restored
/// hub resumes every pending job at once.
pub async fn restore(database: &DatabaseConfig, from: &Path, replace: bool) -> Result<Restored> {
    let format = BackupFormat::of_file(from)?;
    match database {
        DatabaseConfig::Sqlite { data_dir } => {
            if format != BackupFormat::Sqlite {
                return Err(Error::Config(format!(
                    "{} is a PostgreSQL backup: restore it with --database-url into an empty PostgreSQL database",
                    from.display()
                )));
            }
            restore_sqlite(data_dir, from, replace).await
        }
        DatabaseConfig::Url(url) => {
            if format != BackupFormat::PgDump {
                return Err(Error::Config(format!(
                    "{} is a backup of the embedded SQLite store: restore it with --data-dir",
                    from.display()
                )));
            }
            restore_postgres(url, from).await
        }
    }
}

async fn restore_sqlite(data_dir: &Path, from: &Path, replace: bool) -> Result<Restored> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Error::Config(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
    // Held until the restore ends: no hub can start on the directory meanwhile.
    let _lock = DataDirLock::acquire(data_dir)?;
    let store_file = data_dir.join(STORE_FILE);
    if store_file.exists() && !replace {
        return Err(Error::Config(format!(
            "{} holds a store already: restore into an empty data directory, or pass --replace to overwrite it",
            data_dir.display()
        )));
    }
    let restoring = data_dir.join(format!("{STORE_FILE}.restoring"));
    remove_store_files(&restoring)?;
    std::fs::copy(from, &restoring).map_err(|e| {
        Error::Config(format!(
            "cannot copy {} into {}: {e}",
            from.display(),
            data_dir.display()
        ))
    })?;
    let checked = check_and_release(&sqlite_file_url(&restoring)?).await;
    let restored = match checked {
        Ok(restored) => restored,
        Err(err) => {
            let _ = remove_store_files(&restoring);
            return Err(err);
        }
    };
    remove_store_files(&store_file)?;
    std::fs::rename(&restoring, &store_file)
        .map_err(|e| Error::Config(format!("cannot move the restored store into place: {e}")))?;
    Ok(restored)
}

async fn restore_postgres(url: &SecretString, from: &Path) -> Result<Restored> {
    let version = pg_dump_schema_version(from).await?;
    refuse_newer(version)?;
    let store = SqlStore::connect(url.expose_secret()).await?;
    let tables = store.table_count().await;
    store.close().await;
    if tables? > 0 {
        return Err(Error::Config(
            "the database holds tables already: a backup is restored into an empty database (the database of a hub is never empty, so no running hub is overwritten)".into(),
        ));
    }
    let from_arg = from.display().to_string();
    run_pg_tool(
        "pg_restore",
        &[
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            &from_arg,
        ],
        url,
    )
    .await?;
    check_and_release(url.expose_secret()).await
}

/// Opens a restored store, checks it, refuses a newer schema, and gives back its claims.
async fn check_and_release(url: &str) -> Result<Restored> {
    let store = SqlStore::connect(url).await?;
    let result = async {
        if store.backend() == crate::store::Backend::Sqlite {
            store.check_sqlite_integrity().await?;
        }
        let schema_version = store.schema_version().await?;
        refuse_newer(schema_version)?;
        if schema_version == 0 {
            return Err(Error::Config("the backup holds no Provisio store".into()));
        }
        // An older backup is brought up to this binary's schema first: what follows (and the
        // hub that starts on it) reads the tables as this binary knows them.
        store.migrate().await?;
        let claims_released = store.release_claims().await?;
        Ok(Restored {
            schema_version,
            claims_released,
        })
    }
    .await;
    store.close().await;
    result
}

fn refuse_newer(version: i64) -> Result<()> {
    let known = known_schema_version();
    if version > known {
        return Err(Error::Schema(format!(
            "the backup's schema is at version {version}, newer than this binary knows ({known}): restore it with the Provisio release that took it, or a newer one"
        )));
    }
    Ok(())
}

/// The newest migration recorded in a `pg_dump` archive, read with `pg_restore` (nothing is
/// restored).
async fn pg_dump_schema_version(archive: &Path) -> Result<i64> {
    let archive = archive.display().to_string();
    let listing = run_pg_tool_output(
        "pg_restore",
        &["--data-only", "--table=_sqlx_migrations", "--file=-", &archive],
        None,
    )
    .await?;
    let mut newest = 0;
    let mut in_copy = false;
    for line in listing.lines() {
        if line.starts_with("COPY ") && line.contains("_sqlx_migrations") {
            in_copy = true;
        } else if line == "\\." {
            in_copy = false;
        } else if in_copy && let Some(version) = line.split('\t').next().and_then(|v| v.parse::<i64>().ok()) {
            newest = newest.max(version);
        }
    }
    Ok(newest)
}

/// Opens the SQLite store of `data_dir` without creating one.
async fn open_existing_sqlite(data_dir: &Path) -> Result<SqlStore> {
    if !data_dir.join(STORE_FILE).is_file() {
        return Err(Error::Config(format!(
            "{} holds no Provisio store ({STORE_FILE} is missing)",
            data_dir.display()
        )));
    }
    SqlStore::open_data_dir(data_dir).await
}

fn sqlite_file_url(path: &Path) -> Result<String> {
    let path = path
        .to_str()
        .ok_or_else(|| Error::Config(format!("the path {} is not valid UTF-8", path.display())))?;
    Ok(format!("sqlite://{path}?mode=rwc"))
}

/// Removes an SQLite database file with its write-ahead log and shared-memory index.
fn remove_store_files(file: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Config(format!("cannot remove {}{suffix}: {e}", file.display()))),
        }
    }
    Ok(())
}

/// `.NAME.partial` beside `to`: a backup is written there, then renamed, so a file named like a
/// backup is always whole.
fn partial_path(to: &Path) -> Result<PathBuf> {
    let name = to
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} names no file", to.display())))?;
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    Ok(to.with_file_name(partial))
}

/// Runs one of PostgreSQL's client tools on the database at `url`; the password goes in the
/// tool's environment, never on its command line.
async fn run_pg_tool(tool: &str, args: &[&str], url: &SecretString) -> Result<()> {
    run_pg_tool_output(tool, args, Some(url)).await.map(|_| ())
}

/// Runs a PostgreSQL client tool (on the database at `url`, when given) and returns what it
/// printed.
async fn run_pg_tool_output(tool: &str, args: &[&str], url: Option<&SecretString>) -> Result<String> {
    let mut command = tokio::process::Command::new(tool);
    command.args(args);
    if let Some(url) = url {
        let (dbname, password) = split_password(url)?;
        command.arg("--dbname").arg(dbname);
        if let Some(password) = password {
            command.env("PGPASSWORD", password.expose_secret());
        }
    }
    let output = command.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config(format!(
                "{tool} is not installed: install PostgreSQL's client tools (Debian: postgresql-client), the same major version as the server or newer"
            ))
        } else {
            Error::Config(format!("cannot run {tool}: {e}"))
        }
    })?;
    if !output.status.success() {
        return Err(Error::Config(format!(
            "{tool} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The database URL without its password, and the password.
fn split_password(url: &SecretString) -> Result<(String, Option<SecretString>)> {
    let mut parsed = reqwest::Url::parse(url.expose_secret())
        .map_err(|e| Error::Config(format!("the database URL cannot be read: {e}")))?;
    let password = parsed
        .password()
        .map(|p| {
            crate::domain::address::percent_decode(p)
                .map(SecretString::from)
                .ok_or_else(|| Error::Config("the database URL's password is not valid percent-encoded UTF-8".into()))
        })
        .transpose()?;
    if password.is_some() {
        parsed
            .set_password(None)
            .map_err(|()| Error::Config("the database URL cannot be read".into()))?;
    }
    Ok((parsed.to_string(), password))
}

/// Takes one scheduled backup into `schedule.dir` (named by the time, so that names sort by age)
/// and deletes the oldest beyond `schedule.keep`.
pub async fn scheduled_backup(database: &DatabaseConfig, schedule: &BackupSchedule) -> Result<Backup> {
    std::fs::create_dir_all(&schedule.dir).map_err(|e| {
        Error::Config(format!(
            "cannot create the backup directory {}: {e}",
            schedule.dir.display()
        ))
    })?;
    let format = match database {
        DatabaseConfig::Sqlite { .. } => BackupFormat::Sqlite,
        DatabaseConfig::Url(_) => BackupFormat::PgDump,
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .map_err(|e| Error::Internal(format!("backup time stamp: {e}")))?;
    let to = schedule.dir.join(format!("provisio-{stamp}.{}", format.extension()));
    let taken = backup(database, &to).await?;
    prune_backups(&schedule.dir, format, schedule.keep)?;
    remove_stale_partials(&schedule.dir);
    Ok(taken)
}

/// Removes `.provisio-*.partial` files a scheduled backup interrupted by a crash left behind.
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(".provisio-") && name.ends_with(".partial") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Deletes the oldest scheduled backups of `format` in `dir` beyond the newest `keep`; returns
/// the ones deleted.
pub fn prune_backups(dir: &Path, format: BackupFormat, keep: usize) -> Result<Vec<PathBuf>> {
    let suffix = format!(".{}", format.extension());
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("cannot read the backup directory {}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("provisio-") && n.ends_with(&suffix))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    let mut deleted = Vec::with_capacity(excess);
    for old in backups.into_iter().take(excess) {
        std::fs::remove_file(&old)
            .map_err(|e| Error::Config(format!("cannot delete the old backup {}: {e}", old.display())))?;
        deleted.push(old);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        let url = SecretString::from("postgres://hub:p%40ss%2Fw@db.example:5432/provisio?sslmode=require");
        let (dbname, password) = split_password(&url).unwrap();
        assert_eq!(dbname, "postgres://hub@db.example:5432/provisio?sslmode=require");
        assert_eq!(password.unwrap().expose_secret(), "p@ss/w");
        let (dbname, password) = split_password(&SecretString::from("postgres://hub@db/provisio")).unwrap();
        assert_eq!(dbname, "postgres://hub@db/provisio");
        assert!(password.is_none());
    }

    #[test]
    fn only_the_newest_scheduled_backups_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "provisio-20261201T010000.000Z.db",
            "provisio-20261201T020000.000Z.db",
            "provisio-20261201T030000.000Z.db",
            "provisio-20261201T000000.000Z.pgdump",
            "notes.db",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let deleted = prune_backups(dir.path(), BackupFormat::Sqlite, 2).unwrap();
        assert_eq!(deleted, vec![dir.path().join("provisio-20261201T010000.000Z.db")]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.db",
                "provisio-20261201T000000.000Z.pgdump",
                "provisio-20261201T020000.000Z.db",
                "provisio-20261201T030000.000Z.db"
            ]
        );
    }

    #[test]
    fn a_backup_is_known_by_its_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("a");
        std::fs::write(&sqlite, b"SQLite format 3\0rest").unwrap();
        assert_eq!(BackupFormat::of_file(&sqlite).unwrap(), BackupFormat::Sqlite);
        let dump = dir.path().join("b");
        std::fs::write(&dump, b"PGDMP\x01\x0e").unwrap();
        assert_eq!(BackupFormat::of_file(&dump).unwrap(), BackupFormat::PgDump);
        let other = dir.path().join("c");
        std::fs::write(&other, b"hello").unwrap();
        assert!(BackupFormat::of_file(&other).is_err());
    }
}
