//! The background side of the engine: the dispatcher turns change-log events into jobs; the
//! scheduler claims runnable jobs in batches, no more per app than its concurrency lets run (with
//! as many again waiting their turn), and runs each job as its own task, so a slow app never holds
//! back another; the finisher stores finished jobs in batches (their ends, account records and
//! report rows in one transaction) and only then acknowledges them. All tasks stop through one
//! cancellation token and finish the jobs in hand first.

use super::engine::EngineStore;
use super::engine::{Engine, JobResult, JobRun};
use crate::domain::app::FlowControl;
use crate::domain::job::{FinishedJob, Job, JobEnd};
use crate::domain::{Error, now};
use crate::store::{ClaimLimits, QueueStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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

/// Jobs of one app in flight on this node, per request slot of the app: one running its request
/// and the others ready to send the moment a slot frees. An app is claimed for again only once
/// half of its places are free (see [`InFlight::free`]), so that each claim takes many jobs at
/// once instead of one per finished request: on a fast target the claims, not the requests, are
/// what costs.
const JOBS_PER_SLOT: usize = 16;

/// An app with a rate limit holds no more jobs in flight than it may send requests in this many
/// seconds, so that a claimed job never waits for its turn anywhere near its lease.
const RATE_WINDOW_SECS: usize = 10;

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
            let mut last_busy: Option<tokio::time::Instant> = None;
            let mut busy_streak = 0u32;
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
                        // While changes keep coming (a third dispatch with events within the
                        // spacing of the one before), the next dispatch waits out the spacing, so
                        // that a busy directory's changes go in batches; a change after a quiet
                        // spell, or a pair of them, still goes at once. A dispatch that stopped
                        // at its limit leaves more to read at once.
                        busy_streak = match last_busy {
                            Some(last) if began.duration_since(last) < DISPATCH_SPACING => busy_streak + 1,
                            _ => 0,
                        };
                        last_busy = Some(began);
                        let full = dispatched.events >= DISPATCH_BATCH as usize;
                        if busy_streak >= 2 && !full {
                            tokio::select! {
                                () = shutdown.cancelled() => break,
                                () = tokio::time::sleep_until(began + DISPATCH_SPACING) => {},
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

/// How long a task waits before trying the store again after it refused work.
const STORE_WAIT: Duration = Duration::from_secs(1);

/// A finished job on its way to the store, with the channel that acknowledges it.
type Finishing = (Arc<FinishedJob>, oneshot::Sender<Result<(), Error>>);

/// Jobs in flight on this node, per app, and what each app allows.
#[derive(Debug, Default)]
struct InFlight {
    total: usize,
    per_app: HashMap<uuid::Uuid, usize>,
    flows: HashMap<uuid::Uuid, FlowControl>,
}

impl InFlight {
    /// The request slots of an app.
    fn slots(flow: FlowControl) -> usize {
        usize::try_from(flow.concurrency.max(1)).unwrap_or(1)
    }

    /// Most jobs of an app in flight on this node.
    fn cap(flow: FlowControl) -> usize {
        let cap = Self::slots(flow).saturating_mul(JOBS_PER_SLOT);
        match flow.requests_per_second {
            Some(rate) => {
                let rated = usize::try_from(rate)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(RATE_WINDOW_SECS);
                cap.min(rated.max(Self::slots(flow)))
            }
            None => cap,
        }
    }

    /// The free places of an app worth a claim: none until half of its places are free, so that
    /// claims come in batches, not one per finished job.
    fn free(&self, app: &uuid::Uuid, flow: FlowControl) -> usize {
        let free = Self::cap(flow).saturating_sub(self.per_app.get(app).copied().unwrap_or(0));
        if free >= Self::cap(flow) / 2 { free } else { 0 }
    }

    /// What the next claim may take.
    fn limits(&self, max_in_flight: usize) -> ClaimLimits {
        ClaimLimits {
            total: max_in_flight.saturating_sub(self.total),
            free: self
                .flows
                .iter()
                .map(|(app, flow)| (*app, self.free(app, *flow)))
                .collect(),
            default_free: Self::cap(FlowControl::default()),
        }
    }

    fn start(&mut self, app: uuid::Uuid, flow: FlowControl) {
        self.total += 1;
        *self.per_app.entry(app).or_default() += 1;
        self.flows.insert(app, flow);
    }

    /// The job's requests are done: its app's slot is free (its end is still being stored).
    /// Returns whether this made a claim for the app worth its transaction: a batch's worth of
    /// its places is free.
    fn end_requests(&mut self, app: uuid::Uuid) -> bool {
        if let Some(n) = self.per_app.get_mut(&app) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_app.remove(&app);
            }
        }
        self.flows.get(&app).is_none_or(|flow| self.free(&app, *flow) > 0)
    }

    /// Whether some app this node runs has a batch's worth of free places (see
    /// [`InFlight::free`]), or `refill`: the node came down from its ceiling (see [`InFlight::end`]).
    fn worth_claiming(&self, max_in_flight: usize, refill: bool) -> bool {
        self.total < max_in_flight && (refill || self.flows.iter().any(|(app, flow)| self.free(app, *flow) > 0))
    }

    /// The job's end is stored. Returns whether this brought a node that was at its ceiling of
    /// jobs in flight down by an eighth of it (so a claim may take a batch again: one claim per
    /// ended job would cost a transaction per job).
    fn end(&mut self, max_in_flight: usize) -> bool {
        let refill_at = max_in_flight.saturating_sub((max_in_flight / 8).max(1));
        let before = self.total;
        self.total = self.total.saturating_sub(1);
        before > refill_at && self.total <= refill_at
    }
}

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

    fn flow(concurrency: u32, requests_per_second: Option<u32>) -> FlowControl {
        FlowControl {
            concurrency,
            requests_per_second,
        }
    }

    #[test]
    fn an_app_holds_its_slots_times_the_jobs_per_slot_unless_its_rate_allows_fewer() {
        assert_eq!(InFlight::cap(flow(8, None)), 8 * JOBS_PER_SLOT);
        // 2 requests per second: at most 10 seconds' worth of requests in flight.
        assert_eq!(InFlight::cap(flow(8, Some(2))), 2 * RATE_WINDOW_SECS);
        // Never fewer than the request slots.
        assert_eq!(InFlight::cap(flow(8, Some(0))), 8);
    }

    #[test]
    fn an_app_is_claimed_for_again_only_once_half_its_places_are_free() {
        let app = uuid::Uuid::now_v7();
        let limits = flow(2, None);
        let cap = InFlight::cap(limits);
        let mut in_flight = InFlight::default();
        for _ in 0..cap {
            in_flight.start(app, limits);
        }
        assert_eq!(in_flight.limits(512).free, vec![(app, 0)]);
        // Ending jobs one by one: no claim is worth it until half the places are free.
        for ended in 1..=cap {
            let worth = in_flight.end_requests(app);
            assert_eq!(worth, ended >= cap / 2, "after {ended} of {cap} ended");
            let free = in_flight.limits(512).free[0].1;
            assert_eq!(free, if ended >= cap / 2 { ended } else { 0 });
        }
        assert!(in_flight.worth_claiming(512, false));
    }

    #[test]
    fn a_node_at_its_ceiling_claims_again_when_a_job_ends() {
        let app = uuid::Uuid::now_v7();
        let limits = flow(4, None);
        let mut in_flight = InFlight::default();
        for _ in 0..16 {
            in_flight.start(app, limits);
        }
        assert_eq!(in_flight.limits(16).total, 0);
        // Not worth a claim until an eighth of the ceiling is free.
        in_flight.end_requests(app);
        assert!(!in_flight.end(16));
        in_flight.end_requests(app);
        let refill = in_flight.end(16);
        assert!(refill);
        assert_eq!(in_flight.limits(16).total, 2);
        assert!(in_flight.worth_claiming(16, refill));
    }
}
