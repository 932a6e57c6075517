//! SQL for reading the change log.

use super::ChangeLogStore;
use super::sql::{Sql, SqlStore, from_micros, get};
use crate::domain::change::{ChangeEvent, ChangeOp, EntityKind};
use crate::domain::{Error, Result};

fn select_changes() -> Sql {
    Sql::new("SELECT seq, occurred_at, entity, entity_id, related_id, operation, actor, data FROM change_log")
}

impl ChangeLogStore for SqlStore {
    async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<ChangeEvent>> {
        let rows = select_changes()
            .push(" WHERE seq > ")
            .bind_int(after)
            .push(" ORDER BY seq LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        events(&rows)
    }

    async fn changes_about(&self, id: &str, limit: u32) -> Result<Vec<ChangeEvent>> {
        let rows = select_changes()
            .push(" WHERE seq IN (SELECT seq FROM change_log WHERE entity_id = ")
            .bind_text(id.to_owned())
            .push(" UNION SELECT seq FROM change_log WHERE related_id = ")
            .bind_text(id.to_owned())
            .push(") ORDER BY seq LIMIT ")
            .bind_int(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        events(&rows)
    }
}

fn events(rows: &[sqlx::any::AnyRow]) -> Result<Vec<ChangeEvent>> {
    rows.iter()
        .map(|row| {
            let entity: String = get(row, "entity")?;
            let operation: String = get(row, "operation")?;
            let data: String = get(row, "data")?;
            Ok(ChangeEvent {
                seq: get(row, "seq")?,
                occurred_at: from_micros(get(row, "occurred_at")?)?,
                entity: EntityKind::parse(&entity)
                    .ok_or_else(|| Error::Storage(format!("unknown entity '{entity}' in the change log")))?,
                entity_id: get(row, "entity_id")?,
                related_id: get(row, "related_id")?,
                operation: ChangeOp::parse(&operation)
                    .ok_or_else(|| Error::Storage(format!("unknown operation '{operation}' in the change log")))?,
                actor: get(row, "actor")?,
                data: serde_json::from_str(&data).map_err(|e| Error::Storage(format!("change log data: {e}")))?,
            })
        })
        .collect()
}
