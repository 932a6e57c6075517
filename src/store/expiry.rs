//! The deletion of accounts that stayed deactivated: finds, per app with
//! `delete_deactivated_after_days`, the accounts deactivated long enough ago and queues a job for
//! each user; the engine's plan then deletes the account and records it in the report.

use super::jobs::insert_jobs;
use super::sql::{Sql, SqlStore, get, micros};
use crate::domain::app::{Deprovisioning, Features};
use crate::domain::job::{NewJob, SubjectKind};
use crate::domain::{Error, Result};
use time::OffsetDateTime;
use uuid::Uuid;

/// The cause recorded on the jobs (and their report records) this sweep queues.
pub const EXPIRY_CAUSE: &str = "deprovision:deactivated_for_days";

/// See [`super::QueueStore::queue_expired_deactivations`].
pub(super) async fn queue_expired_deactivations(store: &SqlStore, now: OffsetDateTime) -> Result<usize> {
    let apps = Sql::new("SELECT id, features, deprovision FROM apps")
        .fetch_all(&store.pool)
        .await?;
    let mut jobs = Vec::new();
    for row in &apps {
        let features: Features = serde_json::from_str(&get::<String>(row, "features")?)
            .map_err(|e| Error::Storage(format!("app features: {e}")))?;
        let rules = Deprovisioning::from_stored(&get::<String>(row, "deprovision")?)?;
        let Some(days) = rules.delete_deactivated_after_days else {
            continue;
        };
        if !features.delete_users {
            continue;
        }
        let app: String = get(row, "id")?;
        let app_id = Uuid::parse_str(&app).map_err(|e| Error::Storage(e.to_string()))?;
        let due = now - time::Duration::days(i64::from(days));
        let users = Sql::new("SELECT user_id FROM app_accounts WHERE app_id = ")
            .bind_text(app)
            .push(" AND state = 'deactivated' AND deactivated_at <= ")
            .bind_int(micros(due))
            .fetch_all(&store.pool)
            .await?;
        for user in &users {
            jobs.push(NewJob {
                app_id,
                subject_kind: SubjectKind::User,
                subject_id: get(user, "user_id")?,
                run_id: None,
                cause: EXPIRY_CAUSE.to_owned(),
                not_before: None,
            });
        }
    }
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin_write().await?;
    for chunk in jobs.chunks(200) {
        insert_jobs(&mut tx, chunk).await?;
    }
    tx.commit().await?;
    Ok(jobs.len())
}
