//! Claiming runnable jobs in batches: one read takes, for each app with a free slot on this node,
//! its oldest due jobs up to its free slots and its share of the node's ceiling (an index range
//! per app, so that one app's long queue never hides another's jobs), and one UPDATE takes them under a lease. A job is taken only if it is
//! still pending and no job of the same subject is running, so two nodes never run the same job
//! or two jobs of one subject; the read and the UPDATE share one transaction.

use super::ClaimLimits;
use super::queue::{job_columns, job_from_row};
use super::sql::{Sql, SqlStore, get, get_uuid, micros};
use crate::domain::app::FlowControl;
use crate::domain::job::Job;
use crate::domain::{Error, Result};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The conditions the index range per app checks as it reads: the job pending and due at `at`,
/// its app able to take work (connection checks run regardless). Whether the subject has a running job is left to the
/// claiming UPDATE, which checks it for the few rows picked (checking it here would make the
/// planner test every pending job of the app, however few are taken).
fn due(sql: Sql, at: i64) -> Sql {
    sql.push("j.status = 'pending' AND j.not_before <= ")
        .bind_int(at)
        .push(
            " AND (j.subject_kind = 'connection' OR (a.enabled = 1 AND a.connection_status = 'ok' AND a.state = 'active' \
             AND (a.throttled_until IS NULL OR a.throttled_until <= ",
        )
        .bind_int(at)
        .push(")))")
}

/// Jobs claimed per statement.
const CLAIM_CHUNK: usize = 256;

impl SqlStore {
    /// Claims up to `limits.total` runnable jobs, at most `limits.free_for(app)` per app, oldest
    /// due first; returns each with its app's flow limits.
    pub(super) async fn claim_jobs(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: &ClaimLimits,
    ) -> Result<Vec<(Job, FlowControl)>> {
        if limits.total == 0 {
            return Ok(Vec::new());
        }
        let at = micros(now);
        let free_of = |app: &Uuid| {
            limits
                .free
                .iter()
                .find(|(known, _)| known == app)
                .map_or(limits.default_free, |(_, free)| *free)
        };
        let mut tx = self.begin().await?;
        // Each app with a free slot contributes its own oldest due jobs, at most its free slots
        // (an index range per app), so that one app's long queue never hides another's jobs.
        let apps = Sql::new("SELECT id FROM apps ORDER BY id").fetch_all(tx.conn()).await?;
        let apps = apps
            .iter()
            .map(|row| get_uuid(row, "id"))
            .collect::<Result<Vec<Uuid>>>()?;
        // Under the node's ceiling, each app with free places gets an equal share of what is
        // left, so that a few apps' long queues never leave the others waiting for the ceiling.
        let wanting = apps.iter().filter(|app| free_of(app) > 0).count().max(1);
        let share = limits.total.div_ceil(wanting);
        let mut branches = 0;
        let mut pick = Sql::new("SELECT id, app_id, flow FROM (");
        for app in apps {
            let free = free_of(&app).min(share);
            if free == 0 {
                continue;
            }
            if branches > 0 {
                pick = pick.push(" UNION ALL ");
            }
            branches += 1;
            pick = pick
                .push(
                    "SELECT * FROM (SELECT j.id, j.app_id, a.flow, j.not_before FROM sync_jobs j \
                     JOIN apps a ON a.id = j.app_id WHERE j.app_id = ",
                )
                .bind_text(app.to_string())
                .push(" AND ");
            pick = due(pick, at)
                .push(" ORDER BY j.not_before, j.id LIMIT ")
                .bind_int(i64::try_from(free).unwrap_or(i64::MAX))
                .push(") p");
        }
        if branches == 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let pick = pick
            .push(") c ORDER BY not_before, id LIMIT ")
            .bind_int(i64::try_from(limits.total).unwrap_or(i64::MAX));
        let rows = pick.fetch_all(tx.conn()).await?;
        if rows.is_empty() {
            // Nothing to claim: end the transaction cleanly, so its connection goes back to the pool.
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut flows: HashMap<Uuid, FlowControl> = HashMap::new();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let app = get_uuid(row, "app_id")?;
            if let std::collections::hash_map::Entry::Vacant(entry) = flows.entry(app) {
                let text: String = get(row, "flow")?;
                let flow: FlowControl =
                    serde_json::from_str(&text).map_err(|e| Error::Storage(format!("app flow limits: {e}")))?;
                entry.insert(flow);
            }
            ids.push(get::<String>(row, "id")?);
        }
        // The claim goes in pieces: sqlx's SQLite driver slows down sharply with many binds in
        // one statement, and a first claim for many apps can take over a thousand jobs.
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CLAIM_CHUNK) {
            let claim = Sql::new("UPDATE sync_jobs SET status = 'running', attempts = attempts + 1, lease_owner = ")
                .bind_text(owner.to_owned())
                .push(", lease_until = ")
                .bind_int(micros(lease_until))
                .push(", updated_at = ")
                .bind_int(at)
                .push(" WHERE id IN ")
                .bind_text_list(chunk.to_vec())
                .push(
                    " AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM sync_jobs r WHERE r.app_id = sync_jobs.app_id \
                     AND r.subject_kind = sync_jobs.subject_kind AND r.subject_id = sync_jobs.subject_id \
                     AND r.status = 'running' AND r.lease_until >= ",
                )
                .bind_int(at)
                .push(concat!(") RETURNING ", job_columns!()));
            rows.extend(claim.fetch_all(tx.conn()).await?);
        }
        tx.commit().await?;
        let mut jobs = rows
            .iter()
            .map(|row| {
                let job = job_from_row(row)?;
                let flow = flows.get(&job.app_id).copied().unwrap_or_default();
                Ok((job, flow))
            })
            .collect::<Result<Vec<_>>>()?;
        jobs.sort_by(|a, b| (a.0.not_before, &a.0.id).cmp(&(b.0.not_before, &b.0.id)));
        Ok(jobs)
    }
}
