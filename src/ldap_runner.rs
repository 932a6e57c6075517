//! The source runner: the background task that carries out LDAP sources' runs. It queues the
//! scheduled syncs that are due (once, whichever node comes first), takes back runs whose node
//! stopped (their lease ran out), and claims one queued run at a time under a lease that it
//! renews while the run works, so that a source runs on one node at a time.

use crate::domain::now;
use crate::health::StoreHealth;
use crate::outbound::worker::Wake;
use crate::service::ldap::LdapService;
use crate::store::{LdapRunStore, SqlStore};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a claimed run is reserved for its node; renewed every third of it.
pub const LEASE: Duration = Duration::from_secs(120);

/// How often the runner looks for due schedules, expired leases and queued runs when not woken.
const POLL: Duration = Duration::from_secs(1);

/// Starts the runner on `tracker`; it stops when `shutdown` is cancelled (a run in hand is left to
/// its lease).
pub fn spawn(
    service: LdapService<SqlStore>,
    health: Arc<StoreHealth>,
    node: String,
    wake: Wake,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) {
    tracker.spawn(async move {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let store = service.store();
            if let Err(e) = store.requeue_expired_ldap_runs(now()).await {
                health.background_error("taking back LDAP runs whose node stopped failed", &e);
            }
            match store.queue_due_ldap_syncs(now()).await {
                Ok(runs) if !runs.is_empty() => tracing::info!(runs = runs.len(), "scheduled LDAP syncs queued"),
                Ok(_) => {}
                Err(e) => health.background_error("queueing scheduled LDAP syncs failed", &e),
            }
            let lease_until = now() + LEASE;
            match store.claim_ldap_run(&node, now(), lease_until).await {
                Ok(Some(run)) => {
                    let id = run.id;
                    let renewing = renew(service.clone(), node.clone(), id);
                    let finished = tokio::select! {
                        finished = service.carry_out(run) => finished,
                        () = shutdown.cancelled() => {
                            renewing.abort();
                            break;
                        }
                    };
                    renewing.abort();
                    tracing::info!(run = %id, status = finished.status.as_str(), counts = ?finished.counts, error = ?finished.error, "LDAP run finished");
                    if let Err(e) = store.finish_ldap_run(&finished, &node).await {
                        health.background_error("storing the end of an LDAP run failed: it runs again after its lease", &e);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => health.background_error("claiming an LDAP run failed", &e),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.ldap_notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// Renews the lease of run `id` every third of [`LEASE`] until aborted.
fn renew(service: LdapService<SqlStore>, node: String, id: uuid::Uuid) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            match service.store().renew_ldap_run(id, &node, now() + LEASE).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run = %id, "another node took this LDAP run over");
                    break;
                }
                Err(e) => tracing::warn!(run = %id, error = %e, "renewing an LDAP run's lease failed"),
            }
        }
    })
}
