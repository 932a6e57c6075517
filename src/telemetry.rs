//! Logging (tracing to standard error, human or JSON) and Prometheus metrics kept in a registry
//! owned by the application state, not in a global.

use crate::config::LogFormat;
use crate::health::{StoreErrorLabels, StoreHealth};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
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

    /// Exposes the store's directory write batches: `directory_write_batches` transactions held
    /// `directory_writes` writes (group commit).
    pub fn watch_write_batches(&self, counters: crate::store::WriteBatchCounters) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(
                "directory_write_batches",
                "Directory write transactions, each shared by the writes that queued together",
                counters.batches,
            );
            registry.register(
                "directory_writes",
                "Directory writes, counted when their batch takes them",
                counters.writes,
            );
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
