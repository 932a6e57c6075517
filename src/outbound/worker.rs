//! The background side of the engine: a dispatcher that turns change-log events into jobs, and
//! workers that claim and run jobs. All tasks stop through one cancellation token and finish the
//! job in hand first.

use super::engine::{Engine, JobResult};
use crate::domain::job::Job;
use crate::domain::now;
use crate::store::{AppStore, GroupStore, QueueStore, ReportStore, UserStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tunables of the background tasks.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent workers on this node.
    pub workers: usize,
    /// How long a claimed job is reserved for its worker.
    pub lease: Duration,
    /// How often idle tasks look for work (they are also woken on local changes).
    pub poll: Duration,
    /// This node's name in leases.
    pub node: String,
    /// How often deactivated accounts are checked against their app's deletion after days.
    pub deprovision_sweep: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(250),
            node: format!("node-{}", uuid::Uuid::now_v7().simple()),
            deprovision_sweep: Duration::from_secs(3600),
        }
    }
}

/// Wakes the dispatcher after a local change, so that work starts without waiting for a poll.
#[derive(Debug, Default, Clone)]
pub struct Wake {
    changes: Arc<Notify>,
    jobs: Arc<Notify>,
}

impl Wake {
    /// Signals that the directory or configuration changed.
    pub fn changed(&self) {
        self.changes.notify_one();
    }

    /// Signals that jobs were queued.
    pub fn jobs_queued(&self) {
        self.jobs.notify_waiters();
    }
}

/// Starts the dispatcher and the workers on `tracker`; they stop when `shutdown` is cancelled.
pub fn spawn<S>(
    engine: Arc<Engine<S>>,
    config: WorkerConfig,
    wake: Wake,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) where
    S: AppStore + UserStore + GroupStore + QueueStore + ReportStore + Clone + 'static,
{
    {
        let engine = engine.clone();
        let wake = wake.clone();
        let shutdown = shutdown.clone();
        let poll = config.poll;
        let lease = config.lease;
        let sweep = config.deprovision_sweep;
        tracker.spawn(async move {
            let mut next_reap = tokio::time::Instant::now();
            let mut next_sweep = tokio::time::Instant::now() + sweep.min(Duration::from_secs(60));
            loop {
                // Accounts deactivated for as many days as their app allows get a job that deletes them.
                if tokio::time::Instant::now() >= next_sweep {
                    match engine.store().queue_expired_deactivations(now()).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(accounts = n, "deactivated accounts are due for deletion");
                            wake.jobs_queued();
                        }
                        Err(e) => engine
                            .health()
                            .background_error("looking for deactivated accounts to delete failed", &e),
                    }
                    next_sweep = tokio::time::Instant::now() + sweep;
                }
                // Jobs of a worker that died (its lease ran out) go back to the queue.
                if tokio::time::Instant::now() >= next_reap {
                    match engine.store().requeue_expired(now()).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::warn!(jobs = n, "took over jobs whose worker stopped");
                            wake.jobs_queued();
                        }
                        Err(e) => engine.health().background_error("requeueing expired jobs failed", &e),
                    }
                    next_reap = tokio::time::Instant::now()
                        + (lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
                }
                let mut wait = poll;
                match engine.store().dispatch_changes(500).await {
                    Ok(0) => {}
                    Ok(_) => {
                        engine.health().succeeded();
                        wake.jobs_queued();
                        continue;
                    }
                    Err(e) => {
                        engine.health().background_error("dispatching changes failed", &e);
                        wait = STORE_WAIT;
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = wake.changes.notified() => {},
                    () = tokio::time::sleep(wait) => {},
                }
            }
        });
    }
    for index in 0..config.workers.max(1) {
        let engine = engine.clone();
        let wake = wake.clone();
        let shutdown = shutdown.clone();
        let config = config.clone();
        let owner = format!("{}-w{index}", config.node);
        tracker.spawn(async move {
            while !shutdown.is_cancelled() {
                let lease_until = now() + config.lease;
                match engine.store().claim(&owner, now(), lease_until).await {
                    Ok(Some(job)) => {
                        // The claim was a committed write.
                        engine.health().succeeded();
                        let result = engine.run(&job).await;
                        finish(&engine, &job, &owner, &result, &shutdown).await;
                        // Store outages are logged once by the health tracker, not per job.
                        if !matches!(result, JobResult::Done | JobResult::StoreUnavailable { .. }) {
                            tracing::warn!(job = %job.id, ?result, "job did not complete");
                        }
                    }
                    Ok(None) => {
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = wake.jobs.notified() => {},
                            () = tokio::time::sleep(config.poll) => {},
                        }
                    }
                    Err(e) => {
                        engine.health().background_error("claiming a job failed", &e);
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(STORE_WAIT) => {},
                        }
                    }
                }
            }
        });
    }
}

/// How long a task waits before trying the store again after it refused work.
const STORE_WAIT: Duration = Duration::from_secs(1);

/// Records how a job ended, together with the report rows its actions left unsaved. While the
/// store refuses writes this is tried again (the worker keeps the job's lease meanwhile), so an
/// outage neither loses the end of a job nor spends one of its attempts; at shutdown the job is
/// left to its lease, after which any node takes it over.
async fn finish<S>(engine: &Engine<S>, job: &Job, owner: &str, result: &JobResult, shutdown: &CancellationToken)
where
    S: AppStore + UserStore + GroupStore + QueueStore + ReportStore + Clone + 'static,
{
    let store = engine.store();
    let mut wait = Duration::from_millis(200);
    loop {
        let saved = match engine.save_unsaved_reports().await {
            Ok(()) => match result {
                JobResult::Done => store.complete(job, owner).await,
                JobResult::Retry { after, error } => store.retry_later(job, owner, now() + *after, error, true).await,
                JobResult::Deferred { error } => {
                    store
                        .retry_later(job, owner, now() + Duration::from_secs(5), error, false)
                        .await
                }
                JobResult::StoreUnavailable { error } => {
                    store.retry_later(job, owner, now() + STORE_WAIT, error, false).await
                }
                JobResult::Failed { error } => store.fail(job, owner, error).await,
            },
            Err(e) => Err(e),
        };
        match saved {
            Ok(()) => {
                engine.health().succeeded();
                return;
            }
            Err(e) if e.store_fault().is_some() => {
                engine.health().error(&e);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {},
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, job = %job.id, "cannot record the end of a job");
                return;
            }
        }
    }
}
