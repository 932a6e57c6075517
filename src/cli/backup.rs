//! `provisio backup` and `provisio restore`: server-side commands over the store itself (no
//! running hub needed; a restore refuses one).

use super::client::ClientError;
use crate::backup::BackupFormat;
use crate::config::StoreArgs;
use std::path::Path;

/// Writes a backup of the store to `to`.
pub(super) async fn backup(store: &StoreArgs, to: &Path) -> Result<(), ClientError> {
    crate::telemetry::init_logging(crate::config::LogFormat::Human, "warn");
    let database = store.database().map_err(|e| ClientError::Usage(e.to_string()))?;
    let taken = crate::backup::backup(&database, to)
        .await
        .map_err(|e| ClientError::Other(e.to_string()))?;
    let what = match taken.format {
        BackupFormat::Sqlite => "SQLite store",
        BackupFormat::PgDump => "PostgreSQL database (pg_dump archive)",
    };
    println!(
        "backed up the {what} {} at schema version {} to {} ({} bytes)",
        database.describe(),
        taken.schema_version,
        taken.path.display(),
        taken.bytes
    );
    println!("keep the hub's secret key file with it: the app tokens in the backup are encrypted with that key");
    Ok(())
}

/// Restores the backup `from` into the store.
pub(super) async fn restore(store: &StoreArgs, from: &Path, replace: bool) -> Result<(), ClientError> {
    crate::telemetry::init_logging(crate::config::LogFormat::Human, "warn");
    let database = store.database().map_err(|e| ClientError::Usage(e.to_string()))?;
    let restored = crate::backup::restore(&database, from, replace)
        .await
        .map_err(|e| ClientError::Other(e.to_string()))?;
    println!(
        "restored {} into {} (schema version {}; {} claimed jobs and syncs will run again)",
        from.display(),
        database.describe(),
        restored.schema_version,
        restored.claims_released
    );
    println!("start the hub with the secret key file of the hub the backup was taken from");
    Ok(())
}
