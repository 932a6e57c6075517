//! The app and policy rows as every app SQL file reads and writes them: the app columns, a row
//! into a `StoredApp` or `Policy`, and JSON columns.

use super::StoredApp;
use super::sql::{Sql, from_micros, get, get_bool, get_uuid};
use crate::domain::app::{App, AppState, Capabilities, ConnectionStatus, Deprovisioning, Policy};
use crate::domain::{Error, Result};
use sqlx::any::AnyRow;

pub(super) fn select_apps() -> Sql {
    Sql::new(
        "SELECT id, name, kind, base_url, token_ciphertext, features, deprovision, enabled, mapping, preset, capabilities, \
         connection_status, connection_message, connection_checked_at, flow, state, state_reason, next_probe_at, \
         throttled_until, consecutive_failures, version, created_at, updated_at, sync_settings FROM apps",
    )
}

pub(super) fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| Error::Storage(format!("column {column}: {e}")))
}

pub(super) fn app_from_row(row: &AnyRow) -> Result<StoredApp> {
    let capabilities: Option<String> = get(row, "capabilities")?;
    let capabilities = capabilities
        .map(|text| serde_json::from_str::<Capabilities>(&text))
        .transpose()
        .map_err(|e| Error::Storage(format!("column capabilities: {e}")))?;
    Ok(StoredApp {
        app: App {
            id: get_uuid(row, "id")?,
            name: get(row, "name")?,
            kind: get(row, "kind")?,
            base_url: get(row, "base_url")?,
            features: json_column(row, "features")?,
            deprovision: Deprovisioning::from_stored(&get::<String>(row, "deprovision")?)?,
            enabled: get_bool(row, "enabled")?,
            mapping: json_column(row, "mapping")?,
            preset: get(row, "preset")?,
            capabilities,
            connection_status: ConnectionStatus::parse(&get::<String>(row, "connection_status")?)?,
            connection_message: get(row, "connection_message")?,
            connection_checked_at: get::<Option<i64>>(row, "connection_checked_at")?
                .map(from_micros)
                .transpose()?,
            flow: json_column(row, "flow")?,
            sync: json_column(row, "sync_settings")?,
            state: AppState::parse(&get::<String>(row, "state")?)?,
            state_reason: get(row, "state_reason")?,
            next_probe_at: get::<Option<i64>>(row, "next_probe_at")?.map(from_micros).transpose()?,
            throttled_until: get::<Option<i64>>(row, "throttled_until")?
                .map(from_micros)
                .transpose()?,
            consecutive_failures: get(row, "consecutive_failures")?,
            version: get(row, "version")?,
            created_at: from_micros(get(row, "created_at")?)?,
            updated_at: from_micros(get(row, "updated_at")?)?,
        },
        token_ciphertext: get(row, "token_ciphertext")?,
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Storage(format!("cannot encode: {e}")))
}

pub(super) fn policy_from_row(row: &AnyRow) -> Result<Policy> {
    Ok(Policy {
        id: get_uuid(row, "id")?,
        name: get(row, "name")?,
        app_id: get_uuid(row, "app_id")?,
        group_id: get_uuid(row, "group_id")?,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}
