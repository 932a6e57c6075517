//! Logging (tracing to standard error, human or JSON), Prometheus metrics kept in a registry
//! owned by the application state, not in a global, and the store's health as this process sees it.

use crate::config::LogFormat;
use crate::domain::Error;
use crate::domain::error::StoreFault;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber. Logs go to standard error; standard output is kept for
/// what a command prints for people or scripts.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests running several hubs in one process) keeps the first.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template (e.g. `/api/v1/users/{id}`).
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of the HTTP latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
}

/// Labels of the storage error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    /// `full`, `io`, `unreachable`, `busy` (passing conditions) or `other`.
    pub cause: &'static str,
}

/// The hub's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Whether the store takes writes; counts storage errors.
    pub store: Arc<StoreHealth>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the registry and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("provisio");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let store_errors = Family::<StoreErrorLabels, Counter>::default();
        registry.register(
            "storage_errors",
            "Storage errors seen by requests and the engine, by cause",
            store_errors.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            store: Arc::new(StoreHealth::new(store_errors)),
        }
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
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

    fn new(errors: Family<StoreErrorLabels, Counter>) -> Self {
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
