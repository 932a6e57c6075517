//! The store's health as this process sees it: whether writes go through, one log line when an
//! outage starts and one when it ends, and the storage error counter. Shared by the HTTP layer
//! and the engine; it knows nothing of either.

use crate::domain::Error;
use crate::domain::error::StoreFault;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Labels of the storage error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    /// `full`, `io`, `unreachable`, `busy` (passing conditions) or `other`.
    pub cause: &'static str,
}

/// Whether the store takes writes, as this process sees it. The first failure for a passing cause
/// (disk full, database unreachable) starts an outage and logs one error line; the outage ends,
/// with one line, at the first success after [`StoreHealth::QUIET`] without a failure. Readiness
/// reports not ready during an outage. Every storage error is counted.
#[derive(Debug)]
pub struct StoreHealth {
    outage: Mutex<Option<Outage>>,
    errors: Family<StoreErrorLabels, Counter>,
}

#[derive(Debug, Clone, Copy)]
struct Outage {
    fault: StoreFault,
    since: Instant,
    last_failure: Instant,
    failures: u64,
}

impl StoreHealth {
    /// How long writes must go without a failure before an outage counts as over.
    pub const QUIET: Duration = Duration::from_secs(2);

    /// A health tracker counting storage errors in `errors` (a family registered with the metrics).
    pub fn new(errors: Family<StoreErrorLabels, Counter>) -> Self {
        Self {
            outage: Mutex::new(None),
            errors,
        }
    }

    /// Records the outcome of a store operation: a storage error is counted (and a passing one
    /// starts or extends an outage); anything else changes nothing.
    pub fn observe<T>(&self, result: &Result<T, Error>) {
        if let Err(error) = result {
            self.error(error);
        }
    }

    /// Records a failed store operation (errors that are not about storage are ignored).
    pub fn error(&self, error: &Error) {
        match error {
            Error::StoreUnavailable { fault, detail } => self.failed(*fault, detail),
            Error::Storage(_) => {
                self.errors.get_or_create(&StoreErrorLabels { cause: "other" }).inc();
            }
            _ => {}
        }
    }

    /// Records a failed store write of background work: a passing condition goes to the outage
    /// (logged once), any other error is logged here with `what` failed and counted.
    pub fn background_error(&self, what: &str, error: &Error) {
        if error.store_fault().is_none() {
            tracing::error!(%error, "{what}");
        }
        self.error(error);
    }

    /// Records that the store refused work for a passing reason.
    pub fn failed(&self, fault: StoreFault, detail: &str) {
        self.errors
            .get_or_create(&StoreErrorLabels { cause: fault.as_str() })
            .inc();
        let now = Instant::now();
        let Ok(mut outage) = self.outage.lock() else {
            return;
        };
        match outage.as_mut() {
            Some(current) => {
                current.last_failure = now;
                current.failures += 1;
                current.fault = fault;
            }
            None => {
                tracing::error!(
                    cause = fault.as_str(),
                    %detail,
                    "{}; requests get 503 and provisioning waits meanwhile",
                    fault.message()
                );
                *outage = Some(Outage {
                    fault,
                    since: now,
                    last_failure: now,
                    failures: 1,
                });
            }
        }
    }

    /// Records that a write was committed; ends an outage when none failed for [`Self::QUIET`].
    pub fn succeeded(&self) {
        let Ok(mut outage) = self.outage.lock() else {
            return;
        };
        if let Some(current) = *outage
            && current.last_failure.elapsed() >= Self::QUIET
        {
            tracing::info!(
                cause = current.fault.as_str(),
                failures = current.failures,
                seconds = current.since.elapsed().as_secs(),
                "the store takes writes again; requests and provisioning resume"
            );
            *outage = None;
        }
    }

    /// The cause of the current outage, if there is one.
    pub fn outage(&self) -> Option<StoreFault> {
        self.outage.lock().ok().and_then(|o| o.map(|o| o.fault))
    }
}
