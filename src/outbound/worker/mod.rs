//! The background side of the engine: the dispatcher turns change-log events into jobs; the
//! scheduler claims runnable jobs in batches, no more per app than its concurrency lets run (with
//! as many again waiting their turn), and runs each job as its own task, so a slow app never holds
//! back another; the finisher stores finished jobs in batches (their ends, account records and
//! report rows in one transaction) and only then acknowledges them. All tasks stop through one
//! cancellation token and finish the jobs in hand first.

use super::engine::EngineStore;
use super::engine::{Engine, JobResult, JobRun};
use crate::domain::job::{FinishedJob, Job, JobEnd};
use crate::domain::{Error, now};
use crate::store::QueueStore;
use in_flight::InFlight;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod in_flight;

/// Tunables of the background tasks.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Most jobs in flight on this node, over all apps: a safety valve above the apps' own
    /// concurrency limits, which are what bound the work of each app.
    pub max_in_flight: usize,
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
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(250),
            node: format!("node-{}", uuid::Uuid::now_v7().simple()),
            deprovision_sweep: Duration::from_secs(3600),
        }
    }
}

/// The default of [`WorkerConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;

/// Most finished jobs stored in one transaction.
const FINISH_BATCH: usize = 256;

/// Wakes the dispatcher after a local change, so that work starts without waiting for a poll.
#[derive(Debug, Default, Clone)]
pub struct Wake {
    changes: Arc<Notify>,
    jobs: Arc<Notify>,
    ldap: Arc<Notify>,
}

impl Wake {
    /// Signals that the directory or configuration changed.
    pub fn changed(&self) {
        self.changes.notify_one();
    }

    /// Signals that jobs were queued. The signal is kept until the scheduler next waits, so a
    /// signal sent while it is busy claiming still wakes it (instead of the next poll).
    pub fn jobs_queued(&self) {
        self.jobs.notify_one();
    }

    /// Signals that an LDAP source's run was queued.
    pub fn ldap_queued(&self) {
        self.ldap.notify_one();
    }

    /// Resolves at the next [`Wake::ldap_queued`] (or at once if one came meanwhile).
    pub async fn ldap_notified(&self) {
        self.ldap.notified().await;
    }
}

/// Starts the dispatcher, the scheduler and the finisher on `tracker`; they stop when `shutdown`
/// is cancelled.
pub fn spawn<S>(
    engine: Arc<Engine<S>>,
    config: WorkerConfig,
    wake: Wake,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) where
    S: EngineStore + 'static,
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
            let mut pace = DispatchPace::default();
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
                    // Imports and reconciliations whose scheduled time has come.
                    match engine.store().queue_due_runs(now()).await {
                        Ok(runs) if runs.is_empty() => {}
                        Ok(runs) => {
                            tracing::info!(runs = runs.len(), "scheduled imports and reconciliations queued");
                            wake.jobs_queued();
                        }
                        Err(e) => engine.health().background_error("queueing scheduled runs failed", &e),
                    }
                    next_reap = tokio::time::Instant::now()
                        + (lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
                }
                let mut wait = poll;
                let began = tokio::time::Instant::now();
                match engine.store().dispatch_changes(DISPATCH_BATCH).await {
                    Ok(dispatched) if dispatched.events == 0 => {}
                    Ok(dispatched) => {
                        engine.health().succeeded();
                        if dispatched.jobs > 0 {
                            wake.jobs_queued();
                        }
                        if let Some(next) = pace.next_dispatch(began, dispatched.events) {
                            tokio::select! {
                                () = shutdown.cancelled() => break,
                                () = tokio::time::sleep_until(next) => {},
                            }
                        }
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
    let (finish_tx, finish_rx) = mpsc::channel::<Finishing>(FINISH_BATCH * 4);
    {
        let store = engine.store().clone();
        tracker.spawn(finisher(store, finish_rx));
    }
    tracker.spawn(scheduler(engine, config, wake, tracker.clone(), shutdown, finish_tx));
}

/// Most change-log events one dispatch reads.
const DISPATCH_BATCH: u32 = 500;

/// The least time between the starts of two dispatches that found events: while the directory
/// changes without pause, each dispatch (a write transaction) takes what came in meanwhile,
/// instead of one transaction per directory write competing with the writes for the writer.
const DISPATCH_SPACING: Duration = Duration::from_millis(10);

/// When the dispatcher reads the change log again after a dispatch that found events. While
/// changes keep coming (a third dispatch with events within the spacing of the one before), the
/// next dispatch waits out the spacing, so that a busy directory's changes go in batches; a change
/// after a quiet spell, or a pair of them, still goes at once. A dispatch that stopped at its
/// limit leaves more to read at once.
#[derive(Debug, Default)]
struct DispatchPace {
    /// When the last dispatch that found events began.
    last_busy: Option<tokio::time::Instant>,
    /// Dispatches with events in a row, each within the spacing of the one before, less one.
    streak: u32,
}

impl DispatchPace {
    /// Notes a dispatch that began at `began` and read `events` (at least one); returns when
    /// the next may begin, or None for at once.
    fn next_dispatch(&mut self, began: tokio::time::Instant, events: usize) -> Option<tokio::time::Instant> {
        self.streak = match self.last_busy {
            Some(last) if began.duration_since(last) < DISPATCH_SPACING => self.streak + 1,
            _ => 0,
        };
        self.last_busy = Some(began);
        let full = events >= DISPATCH_BATCH as usize;
        (self.streak >= 2 && !full).then_some(began + DISPATCH_SPACING)
    }
}

/// How long a task waits before trying the store again after it refused work.
const STORE_WAIT: Duration = Duration::from_secs(1);

/// A finished job on its way to the store, with the channel that acknowledges it.
type Finishing = (Arc<FinishedJob>, oneshot::Sender<Result<(), Error>>);

/// Claims runnable jobs while there is room and runs each as a task.
async fn scheduler<S>(
    engine: Arc<Engine<S>>,
    config: WorkerConfig,
    wake: Wake,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    finish_tx: mpsc::Sender<Finishing>,
) where
    S: EngineStore + 'static,
{
    let in_flight = Arc::new(Mutex::new(InFlight::default()));
    let freed = Arc::new(Notify::new());
    let owner = config.node.clone();
    let max_in_flight = config.max_in_flight.max(1);
    let refill = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut claim = true;
    while !shutdown.is_cancelled() {
        let limits = match in_flight.lock() {
            Ok(in_flight) => in_flight.limits(max_in_flight),
            Err(_) => break,
        };
        let mut wait = Some(config.poll);
        if claim && limits.total > 0 {
            let lease_until = now() + config.lease;
            match engine.store().claim_batch(&owner, now(), lease_until, &limits).await {
                Ok(jobs) => {
                    if !jobs.is_empty() {
                        // The claim was a committed write.
                        engine.health().succeeded();
                        // A full batch may leave more runnable jobs: claim again at once.
                        if jobs.len() == limits.total {
                            wait = None;
                        }
                    }
                    let claimed: Vec<&Job> = jobs.iter().map(|(job, _)| job).collect();
                    let mut preloaded = engine.preload(claimed).await;
                    for (job, flow) in jobs {
                        let read_ahead = preloaded.take(&job);
                        if let Ok(mut in_flight) = in_flight.lock() {
                            in_flight.start(job.app_id, flow);
                        }
                        let engine = engine.clone();
                        let in_flight = in_flight.clone();
                        let freed = freed.clone();
                        let refill = refill.clone();
                        let finish_tx = finish_tx.clone();
                        let shutdown = shutdown.clone();
                        let owner = owner.clone();
                        tracker.spawn(async move {
                            let app = job.app_id;
                            let run = engine.run(&job, read_ahead).await;
                            // The app's slot frees as soon as its requests are done; the job
                            // stays running in the queue (no other job of its subject starts)
                            // until its end is stored.
                            if in_flight
                                .lock()
                                .map_or(true, |mut in_flight| in_flight.end_requests(app))
                            {
                                freed.notify_one();
                            }
                            finish(&engine, job, owner, run, &finish_tx, &shutdown).await;
                            if in_flight
                                .lock()
                                .map_or(true, |mut in_flight| in_flight.end(max_in_flight))
                            {
                                refill.store(true, std::sync::atomic::Ordering::Relaxed);
                                freed.notify_one();
                            }
                        });
                    }
                }
                Err(e) => {
                    engine.health().background_error("claiming jobs failed", &e);
                    wait = Some(STORE_WAIT);
                }
            }
        }
        // A job's end is worth a claim only when it leaves a batch's worth of free places: a
        // claim per finished job would cost a transaction per job.
        claim = match wait {
            None => true,
            Some(wait) => tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.jobs.notified() => true,
                () = freed.notified() => {
                    let refill = refill.swap(false, std::sync::atomic::Ordering::Relaxed);
                    in_flight
                        .lock()
                        .map_or(true, |in_flight| in_flight.worth_claiming(max_in_flight, refill))
                }
                () = tokio::time::sleep(wait) => true,
            },
        };
    }
}

/// Stores finished jobs in batches: whatever has arrived while the last transaction ran goes
/// into the next one. Each job is acknowledged after the commit, with its own result.
async fn finisher<S>(store: S, mut finishing: mpsc::Receiver<Finishing>)
where
    S: QueueStore,
{
    while let Some(first) = finishing.recv().await {
        let mut batch = vec![first];
        while batch.len() < FINISH_BATCH {
            match finishing.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let jobs: Vec<&FinishedJob> = batch.iter().map(|(job, _)| job.as_ref()).collect();
        match store.finish_jobs(&jobs).await {
            Ok(results) => {
                for ((_, ack), result) in batch.into_iter().zip(results) {
                    // The job's task may be gone (shutdown): its lease covers it.
                    let _ = ack.send(result);
                }
            }
            Err(e) => {
                for (_, ack) in batch {
                    let _ = ack.send(Err(same_error(&e)));
                }
            }
        }
    }
}

/// A copy of a batch's error for each of its jobs: a passing store fault stays one.
fn same_error(error: &Error) -> Error {
    match error {
        Error::StoreUnavailable { fault, detail } => Error::StoreUnavailable {
            fault: *fault,
            detail: detail.clone(),
        },
        other => Error::Storage(other.to_string()),
    }
}

/// How the queue records a job's result.
fn job_end(result: &JobResult) -> JobEnd {
    let retry = |after: Duration, error: &str, count_attempt: bool| JobEnd::Retry {
        not_before: now() + after,
        error: error.to_owned(),
        count_attempt,
    };
    match result {
        JobResult::Done => JobEnd::Done,
        JobResult::Retry { after, error } => retry(*after, error, true),
        JobResult::Deferred { error } => retry(Duration::from_secs(5), error, false),
        JobResult::StoreUnavailable { error } => retry(STORE_WAIT, error, false),
        JobResult::Failed { error } => JobEnd::Failed { error: error.clone() },
    }
}

/// Hands a job's end, its records and report rows to the finisher and waits until they are
/// committed. While the store refuses writes this is tried again (the job keeps its lease
/// meanwhile), so an outage neither loses the end of a job nor spends one of its attempts; at
/// shutdown the job is left to its lease, after which any node takes it over.
async fn finish<S>(
    engine: &Engine<S>,
    job: Job,
    owner: String,
    run: JobRun,
    finish_tx: &mpsc::Sender<Finishing>,
    shutdown: &CancellationToken,
) where
    S: EngineStore + 'static,
{
    // Store outages are logged once by the health tracker, not per job.
    if !matches!(run.result, JobResult::Done | JobResult::StoreUnavailable { .. }) {
        tracing::warn!(job = %job.id, result = ?run.result, "job did not complete");
    }
    let finished = Arc::new(FinishedJob {
        end: job_end(&run.result),
        job,
        owner,
        effects: run.ledger.effects,
        reports: run.ledger.reports,
    });
    let mut wait = Duration::from_millis(200);
    let mut refusals = 0;
    loop {
        let (ack, acked) = oneshot::channel();
        if finish_tx.send((finished.clone(), ack)).await.is_err() {
            return;
        }
        match acked.await {
            Ok(Ok(())) => {
                engine.health().succeeded();
                return;
            }
            Ok(Err(e)) if e.store_fault().is_some() => {
                engine.health().error(&e);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {},
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            // Refused for this job alone (e.g. a newer job of its subject was queued meanwhile):
            // once more, then its lease decides.
            Ok(Err(e)) if refusals == 0 => {
                refusals += 1;
                tracing::debug!(error = %e, job = %finished.job.id, "recording the end of a job was refused; trying again");
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, job = %finished.job.id, "cannot record the end of a job");
                return;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_are_spaced_only_while_changes_keep_coming() {
        let start = tokio::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut pace = DispatchPace::default();
        // A change after a quiet spell, and a second one soon after, go at once.
        assert_eq!(pace.next_dispatch(at(0), 1), None);
        assert_eq!(pace.next_dispatch(at(2), 1), None);
        // The third in a row within the spacing: the next waits it out.
        assert_eq!(pace.next_dispatch(at(4), 3), Some(at(4) + DISPATCH_SPACING));
        assert_eq!(pace.next_dispatch(at(9), 3), Some(at(9) + DISPATCH_SPACING));
        // A full batch leaves more to read: at once, streak or not.
        assert_eq!(pace.next_dispatch(at(12), DISPATCH_BATCH as usize), None);
        // A quiet spell longer than the spacing starts over.
        assert_eq!(pace.next_dispatch(at(100), 1), None);
        assert_eq!(pace.next_dispatch(at(105), 1), None);
        assert_eq!(pace.next_dispatch(at(108), 1), Some(at(108) + DISPATCH_SPACING));
    }

    #[tokio::test]
    async fn a_jobs_signal_sent_while_the_scheduler_is_busy_is_kept_for_its_next_wait() {
        let wake = Wake::default();
        // Nobody waits yet (the scheduler is claiming): the signal must not be lost.
        wake.jobs_queued();
        tokio::time::timeout(Duration::from_millis(500), wake.jobs.notified())
            .await
            .expect("the signal was kept for the next wait");
        // One signal wakes one wait: the next wait blocks until another comes.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wake.jobs.notified())
                .await
                .is_err()
        );
    }
}
