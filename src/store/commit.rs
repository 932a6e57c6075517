//! Group commit for directory writes: writers that arrive while another batch is being written
//! share the next transaction, and each is answered only after that transaction commits.
//!
//! SQLite takes one writer at a time and PostgreSQL pays a flush per commit, so a commit per
//! request is the ceiling of the write path. Here a writer hands its work (a closure over the
//! transaction) to a queue. The first writer to find the queue idle starts a batch runner, a task
//! of its own so that no request's cancellation can cut a batch short. The runner takes everything
//! queued, runs each write in its own savepoint (a write that fails is undone alone and the others
//! of its batch go on), commits once, and only then answers each writer. It runs batch after batch
//! until the queue is empty, then ends.

use super::tx::WriteTx;
use crate::domain::{Error, Result};
use prometheus_client::metrics::counter::Counter;
use sqlx::AnyPool;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// The work of one writer, run inside the shared transaction.
pub(super) type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

/// One queued write with its result type erased; its value is kept by the closure itself.
type ErasedWrite = Box<dyn for<'t> FnOnce(&'t mut WriteTx) -> WriteFuture<'t, ()> + Send>;

/// The most writes one transaction takes: a batch stays short enough that the first writer of
/// the batch is not kept waiting long for the last.
const MAX_BATCH: usize = 128;

/// A write waiting for its batch, with the channel that answers its writer after the commit.
struct QueuedWrite {
    run: ErasedWrite,
    answer: oneshot::Sender<Result<()>>,
}

/// The writes waiting for the next batch, and whether a runner is at work.
#[derive(Default)]
struct Pending {
    writes: Vec<QueuedWrite>,
    running: bool,
}

/// The queue of directory writes of one store (shared by its clones), with what its batches
/// begin their transactions on.
pub(super) struct CommitQueue {
    pending: Mutex<Pending>,
    counts: WriteBatchCounters,
    pool: AnyPool,
    /// The store's write gate (see `SqlStore::begin`).
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// How many directory write transactions ran and how many writes they held: their ratio is the
/// mean batch size. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct WriteBatchCounters {
    /// Write transactions begun for batches.
    pub batches: Counter,
    /// Writes taken by those batches.
    pub writes: Counter,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitQueue").finish_non_exhaustive()
    }
}

impl CommitQueue {
    /// An empty queue whose batches write on `pool`, taking `gate` like every writer of the store.
    pub(super) fn new(pool: AnyPool, gate: Arc<tokio::sync::Mutex<()>>) -> Self {
        CommitQueue {
            pending: Mutex::default(),
            counts: WriteBatchCounters::default(),
            pool,
            gate,
        }
    }

    /// The counts of its batches (clones share them).
    pub(super) fn counters(&self) -> WriteBatchCounters {
        self.counts.clone()
    }

    /// Queues a write; returns true when no runner is at work, so the caller must start one.
    fn push(&self, write: QueuedWrite) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.writes.push(write);
        !std::mem::replace(&mut pending.running, true)
    }

    /// Takes the next batch, or marks the runner gone when nothing waits.
    fn next_batch(&self) -> Option<Vec<QueuedWrite>> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.writes.is_empty() {
            pending.running = false;
            return None;
        }
        let take = pending.writes.len().min(MAX_BATCH);
        self.counts.batches.inc();
        self.counts.writes.inc_by(take as u64);
        Some(pending.writes.drain(..take).collect())
    }
}

impl CommitQueue {
    /// Runs `write` in a directory write transaction shared with the writers that queue beside it,
    /// and returns its value once that transaction has committed. An error from `write` undoes
    /// only what `write` did; a failure to begin or commit fails every write of the batch, and
    /// none of them is stored.
    pub(super) async fn write<T, F>(self: &Arc<Self>, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut WriteTx) -> WriteFuture<'t, T> + Send + 'static,
    {
        let value = Arc::new(Mutex::new(None));
        let (answer, answered) = oneshot::channel();
        let run = erase(write, value.clone());
        if self.push(QueuedWrite { run, answer }) {
            let queue = self.clone();
            // Not on the server's task tracker on purpose: the runner ends as soon as the queue
            // is empty, and every write it holds has a writer awaiting its answer, so shutting
            // down (which waits for the requests in flight) also waits for it.
            tokio::spawn(async move { queue.run_batches().await });
        }
        match answered.await {
            Ok(Ok(())) => value
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .ok_or_else(|| Error::Internal("a committed write left no result".into())),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::Internal("the write's batch ended without an answer".into())),
        }
    }

    /// Writes batch after batch until nothing waits. Each batch is a task of its own, so a write
    /// that panics ends only its batch (its writers get an internal error), never the runner.
    async fn run_batches(self: Arc<Self>) {
        while let Some(batch) = self.next_batch() {
            let queue = self.clone();
            if let Err(err) = tokio::spawn(async move { queue.write_batch(batch).await }).await {
                tracing::error!(error = %err, "a batch of directory writes ended abnormally");
            }
        }
    }

    /// One transaction for `batch`: each write in a savepoint (a lone write needs none), one commit,
    /// then every writer's answer.
    async fn write_batch(&self, batch: Vec<QueuedWrite>) {
        let mut tx = match WriteTx::begin_directory(&self.pool, &self.gate).await {
            Ok(tx) => tx,
            Err(err) => return fail_all(batch, &err),
        };
        let alone = batch.len() == 1;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut broken = None;
        for QueuedWrite { run, answer } in batch {
            if broken.is_some() {
                outcomes.push((answer, Ok(())));
                continue;
            }
            if !alone && let Err(err) = tx.savepoint().await {
                broken = Some(err);
                outcomes.push((answer, Ok(())));
                continue;
            }
            let result = run(&mut tx).await;
            let ended = match (&result, alone) {
                (_, true) => Ok(()),
                (Ok(()), false) => tx.release_savepoint().await,
                (Err(_), false) => tx.rollback_to_savepoint().await,
            };
            if let Err(err) = ended {
                broken = Some(err);
            }
            outcomes.push((answer, result));
        }
        // A lone write that failed ends its transaction here, uncommitted.
        if alone && outcomes.first().is_some_and(|(_, result)| result.is_err()) {
            drop(tx);
            for (answer, result) in outcomes {
                let _ = answer.send(result);
            }
            return;
        }
        let committed = match broken {
            Some(err) => Err(err),
            None => tx.commit().await,
        };
        for (answer, result) in outcomes {
            let answer_with = match (&committed, result) {
                // A write that failed on its own keeps its own error: it did nothing either way.
                (_, Err(own)) => Err(own),
                (Ok(()), Ok(())) => Ok(()),
                (Err(shared), Ok(())) => Err(shared.duplicate()),
            };
            // The writer may have gone (its request was dropped); what it wrote stands.
            let _ = answer.send(answer_with);
        }
    }
}

/// Wraps `write` so that its value waits in `value` until the commit.
fn erase<T, F>(write: F, value: Arc<Mutex<Option<T>>>) -> ErasedWrite
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut WriteTx) -> WriteFuture<'t, T> + Send + 'static,
{
    Box::new(move |tx: &mut WriteTx| {
        Box::pin(async move {
            let result = write(tx).await?;
            *value.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            Ok(())
        })
    })
}

/// Answers every write of a batch that could not begin.
fn fail_all(batch: Vec<QueuedWrite>, err: &Error) {
    for write in batch {
        let _ = write.answer.send(Err(err.duplicate()));
    }
}
