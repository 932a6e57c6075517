//! The sync engine's executor: runs one queued job (a user, a group, or a connection check of one
//! app) against the target and says how it ended, with the report rows and account records it
//! leaves for the scheduler to store together with that end. By subject: `user.rs`, `group.rs`,
//! `connection.rs`; `recorder.rs` keeps what a run leaves behind.

mod connection;
mod group;
mod import;
mod inventory;
mod preload;
mod reconcile;
mod recorder;
mod target_run;
mod user;

pub use connection::ProbeFailure;
pub use preload::{JobState, Preloaded};
pub use recorder::Ledger;

use super::flow::FlowRegistry;
use super::scim::{ScimClient, ScimError, ScimResponse};
use crate::domain::app::{App, AppState, ConnectionStatus};
use crate::domain::job::{Job, Operation, Outcome, SubjectKind};
use crate::domain::{Error, now};
use crate::health::StoreHealth;
use crate::secrets::SecretKey;
use crate::store::{
    AppStore, AttributeStore, GroupStore, QueueStore, ReportStore, StoredApp, TargetRunStore, UserStore,
};
use provisio_scim::patch::{PatchOperation, patch_request_body};
use recorder::Recorder;
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// Finished; nothing left to do.
    Done,
    /// A transient failure: run again after this delay.
    Retry {
        /// The delay (the target's `Retry-After` when it gave one and it is longer).
        after: Duration,
        /// What failed.
        error: String,
    },
    /// The app's configuration is wrong (e.g. the token was refused): wait, without spending a retry,
    /// until the connection is fixed.
    Deferred {
        /// What failed.
        error: String,
    },
    /// A permanent failure: the job becomes a dead letter.
    Failed {
        /// What failed.
        error: String,
    },
    /// The hub's own store refused work (disk full, database unreachable): not the target's
    /// fault, so run again later without spending an attempt or counting against the app.
    StoreUnavailable {
        /// What failed.
        error: String,
    },
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Attempts before a job becomes a dead letter.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Keep request and response bodies (redacted, truncated) in report records.
    pub keep_bodies: bool,
    /// Transient failures in a row that quarantine an app.
    pub quarantine_after: i64,
    /// Delay before the first probe of a quarantined app (later ones grow like retries).
    pub probe_delay: Duration,
    /// Largest answer read from a target; a larger one fails the request.
    pub max_answer_bytes: usize,
    /// Send requests to link-local addresses (169.254.0.0/16, fe80::/10) too.
    pub allow_link_local_targets: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            keep_bodies: true,
            quarantine_after: 20,
            probe_delay: Duration::from_secs(5),
            max_answer_bytes: super::scim::MAX_ANSWER_BYTES,
            allow_link_local_targets: false,
        }
    }
}

/// A failure inside a job.
#[derive(Debug)]
enum StepError {
    Target(ScimError),
    Hub(Error),
}

impl From<ScimError> for StepError {
    fn from(value: ScimError) -> Self {
        StepError::Target(value)
    }
}

impl From<Error> for StepError {
    fn from(value: Error) -> Self {
        StepError::Hub(value)
    }
}

type Step<T> = Result<T, StepError>;

/// What the engine needs of the store: every store trait a job touches.
pub trait EngineStore:
    AppStore + UserStore + GroupStore + QueueStore + ReportStore + TargetRunStore + AttributeStore + Clone + 'static
{
}

impl<S> EngineStore for S where
    S: AppStore + UserStore + GroupStore + QueueStore + ReportStore + TargetRunStore + AttributeStore + Clone + 'static
{
}

/// Executes jobs over a store.
pub struct Engine<S> {
    store: S,
    key: SecretKey,
    http: reqwest::Client,
    config: EngineConfig,
    flows: FlowRegistry,
    health: Arc<StoreHealth>,
    inventories: inventory::Inventories,
    queue_depths: inventory::QueueDepths,
}

/// One job run: how it ended and what it left to store with that end.
#[derive(Debug)]
pub struct JobRun {
    /// How it ended.
    pub result: JobResult,
    /// Its report rows and writes.
    pub ledger: Ledger,
}

fn started() -> (time::OffsetDateTime, Instant) {
    (now(), Instant::now())
}

fn resource_id(response: &ScimResponse) -> Option<String> {
    response.body.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// A create answered with success but without the new resource's id is the target's failure: the
/// hub could not keep the account, and the next run finds it by look-up instead of creating it
/// again.
fn require_created_id(operation: Operation, response: ScimResponse) -> Result<ScimResponse, ScimError> {
    let what = match operation {
        Operation::Create => "user",
        Operation::GroupCreate => "group",
        _ => return Ok(response),
    };
    if resource_id(&response).is_some_and(|id| !id.is_empty()) {
        return Ok(response);
    }
    Err(ScimError::Unusable {
        status: response.status,
        message: format!(
            "the target answered {} without an id for the created {what}; the hub keeps no account for it and \
             looks it up before creating it again",
            response.status
        ),
    })
}

fn list_first(body: &Value) -> Option<Value> {
    body.get("Resources")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .cloned()
}

fn patch_body(operations: &[PatchOperation]) -> Value {
    patch_request_body(operations)
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// An engine over `store`, decrypting app tokens with `key`, sending over `http`, telling
    /// `health` when the store refuses work.
    pub fn new(
        store: S,
        key: SecretKey,
        http: reqwest::Client,
        config: EngineConfig,
        health: Arc<StoreHealth>,
    ) -> Self {
        Self {
            store,
            key,
            http,
            config,
            flows: FlowRegistry::default(),
            health,
            inventories: Default::default(),
            queue_depths: Default::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store's health as the engine sees it.
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    fn backoff(&self, attempt: i64) -> Duration {
        let exponent = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
        let base = self
            .config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.config.backoff_max);
        // Jitter: 80% to 120% of the delay, so that retries of many jobs spread out.
        let mut byte = [0u8; 1];
        rand::fill(&mut byte[..]);
        base.mul_f64(0.8 + f64::from(byte[0]) / 255.0 * 0.4)
    }

    fn client(&self, stored: &StoredApp) -> Result<ScimClient, Error> {
        let token = self.key.decrypt(&stored.token_ciphertext, &stored.app.id.to_string())?;
        Ok(ScimClient::new(self.http.clone(), &stored.app.base_url, token)
            .with_limits(self.config.max_answer_bytes, self.config.allow_link_local_targets))
    }

    /// Runs one claimed job, with what it read ahead (see [`Engine::preload`]; what is missing
    /// it reads now): how it ended, and the report rows and records it leaves. Nothing of the
    /// ledger is stored yet; the caller stores it with the job's end.
    pub async fn run(&self, job: &Job, read_ahead: JobState) -> JobRun {
        let JobState {
            app,
            user: user_state,
            refused,
        } = read_ahead;
        if let Some(error) = refused {
            return JobRun::bare(JobResult::StoreUnavailable { error });
        }
        let loaded = match app {
            Some(app) => Ok(Some(app)),
            None => self.store.get_app(job.app_id).await,
        };
        let stored = match loaded {
            Ok(Some(stored)) => stored,
            Ok(None) => return JobRun::bare(JobResult::Done),
            Err(e) if e.store_fault().is_some() => {
                return JobRun::bare(JobResult::StoreUnavailable { error: e.to_string() });
            }
            Err(e) => {
                return JobRun::bare(JobResult::Retry {
                    after: self.backoff(job.attempts),
                    error: e.to_string(),
                });
            }
        };
        let client = match self.client(&stored) {
            Ok(client) => client,
            Err(e) => return JobRun::bare(JobResult::Failed { error: e.to_string() }),
        };
        let app = &stored.app;
        let (outcome, ledger) = match job.subject_kind {
            SubjectKind::User => match Uuid::parse_str(&job.subject_id) {
                Ok(user) => self.reconcile_user(job, app, &client, user, user_state).await,
                Err(_) => (Err(bad_subject(job)), Ledger::default()),
            },
            SubjectKind::Group => match Uuid::parse_str(&job.subject_id) {
                Ok(group) => self.reconcile_group(job, app, &client, group).await,
                Err(_) => (Err(bad_subject(job)), Ledger::default()),
            },
            SubjectKind::Connection => self.check_connection(job, app, &client).await,
            SubjectKind::Import | SubjectKind::Reconcile => self.run_target(job, app, &client).await,
        };
        let result = self.classify(job, &stored, outcome).await;
        if matches!(job.subject_kind, SubjectKind::Import | SubjectKind::Reconcile) {
            self.note_run_end(job, &result).await;
        }
        if job.subject_kind != SubjectKind::Connection {
            self.track_health(app, &result).await;
        }
        JobRun { result, ledger }
    }

    /// Counts transient failures of an app in a row; at the threshold the app is quarantined and a
    /// probe is queued. A success resets the count.
    async fn track_health(&self, app: &App, result: &JobResult) {
        let failure = match result {
            JobResult::Retry { error, .. } => Some(error.as_str()),
            JobResult::Done if app.consecutive_failures > 0 => None,
            _ => return,
        };
        let probe_at = now() + self.config.probe_delay;
        let reason = format!(
            "{} requests in a row failed; the last: {}",
            self.config.quarantine_after,
            failure.unwrap_or_default()
        );
        match self
            .store
            .record_outcome(
                app.id,
                failure.is_some(),
                self.config.quarantine_after,
                &reason,
                probe_at,
            )
            .await
        {
            Ok(true) => {
                tracing::warn!(app = %app.name, %reason, "app quarantined");
                let probe = crate::domain::job::NewJob {
                    app_id: app.id,
                    subject_kind: SubjectKind::Connection,
                    subject_id: app.id.to_string(),
                    run_id: None,
                    cause: "quarantine".into(),
                    not_before: Some(probe_at),
                };
                if let Err(e) = self.store.enqueue(&probe).await {
                    self.health.background_error("cannot queue the quarantine probe", &e);
                }
            }
            Ok(false) => {}
            Err(e) => self.health.background_error("cannot record the app's health", &e),
        }
    }

    async fn classify(&self, job: &Job, stored: &StoredApp, outcome: Step<()>) -> JobResult {
        match outcome {
            Ok(()) => JobResult::Done,
            Err(StepError::Target(e)) if matches!(e.status(), Some(401 | 403)) => {
                let message = format!("the target refused the bearer token ({}): check the token", e);
                if let Err(err) = self
                    .store
                    .set_connection(job.app_id, ConnectionStatus::Failed, Some(&message), None, now())
                    .await
                {
                    self.health
                        .background_error("cannot record the connection failure", &err);
                }
                JobResult::Deferred { error: message }
            }
            Err(StepError::Target(e)) if e.is_transient() => {
                // Connection checks (and quarantine probes) never give up: they are how an app recovers.
                if job.attempts >= self.config.max_attempts && job.subject_kind != SubjectKind::Connection {
                    return JobResult::Failed {
                        error: format!("gave up after {} attempts: {e}", job.attempts),
                    };
                }
                let after = self
                    .backoff(job.attempts)
                    .max(e.retry_after().unwrap_or(Duration::ZERO));
                if job.subject_kind == SubjectKind::Connection
                    && stored.app.state == AppState::Quarantined
                    && let Err(err) = self
                        .store
                        .set_app_state(
                            job.app_id,
                            AppState::Quarantined,
                            stored.app.state_reason.as_deref(),
                            Some(now() + after),
                        )
                        .await
                {
                    self.health.background_error("cannot record the next probe time", &err);
                }
                JobResult::Retry {
                    after,
                    error: e.to_string(),
                }
            }
            Err(StepError::Target(e)) => JobResult::Failed { error: e.to_string() },
            Err(StepError::Hub(e)) if e.store_fault().is_some() => {
                self.health.error(&e);
                JobResult::StoreUnavailable { error: e.to_string() }
            }
            // A database error that is not a passing fault may pass too (a lock, a lost
            // connection the driver did not name): try again later.
            Err(StepError::Hub(e @ (Error::Storage(_) | Error::Schema(_)))) => JobResult::Retry {
                after: self.backoff(job.attempts),
                error: e.to_string(),
            },
            // The hub's own fault or a refused value: retrying would not help.
            Err(StepError::Hub(e)) => JobResult::Failed { error: e.to_string() },
        }
    }

    /// Sends a request under the app's flow limits. A success is recorded (look-ups are not);
    /// a failure the engine does not handle by design is recorded as retrying or failure.
    async fn send(&self, recorder: &Recorder<'_>, client: &ScimClient, request: Request<'_>) -> Step<ScimResponse> {
        let Request {
            operation,
            method,
            path,
            body,
            target_id,
            diff,
        } = request;
        let app = recorder.app();
        let flow = self.flows.get(app.id, app.flow);
        let permit = flow.admit().await;
        let at = started();
        let result = client
            .send(method.clone(), path, body)
            .await
            .and_then(|response| require_created_id(operation, response));
        if let Err(e) = &result
            && e.status() == Some(429)
        {
            // The target asked for a break: every job of this app on this node holds, and other
            // nodes stop claiming. The pause is set before this request's slot is freed, so no
            // waiting request can slip in between.
            let delay = e.retry_after().unwrap_or(Duration::from_secs(1));
            flow.pause(delay);
            drop(permit);
            self.store.throttle(app.id, now() + delay).await?;
        } else {
            drop(permit);
        }
        match result {
            Ok(response) => {
                if operation != Operation::Lookup {
                    recorder
                        .entry(operation, Outcome::Success)
                        .started(at)
                        .request(&method, path)
                        .status(Some(response.status))
                        .target(target_id.or(resource_id(&response).as_deref()))
                        .diff(diff)
                        .bodies(body, Some(&response.body))
                        .record();
                }
                Ok(response)
            }
            Err(e) => {
                // Answers the engine handles by design: a look-up the target cannot filter, a missing
                // or duplicate resource, a method the target lacks. Everything else is on record.
                let expected = match operation {
                    Operation::Lookup => matches!(e.status(), Some(400 | 501)),
                    _ => matches!(e.status(), Some(404 | 409 | 405 | 501)),
                };
                if !expected {
                    let outcome = if e.is_transient() && recorder.job().attempts < self.config.max_attempts {
                        Outcome::Retrying
                    } else {
                        Outcome::Failure
                    };
                    recorder
                        .entry(operation, outcome)
                        .started(at)
                        .request(&method, path)
                        .status(e.answer_status())
                        .target(target_id)
                        .diff(diff)
                        .message(e.to_string())
                        .bodies(body, None)
                        .record();
                }
                Err(StepError::Target(e))
            }
        }
    }

    /// Looks a resource up by a filter (`userName eq ...`); the first one listed. A target that
    /// cannot filter answers `None`, and the create that follows relies on 409 to find duplicates.
    async fn lookup(&self, recorder: &Recorder<'_>, client: &ScimClient, path: &str) -> Step<Option<Value>> {
        match self
            .send(recorder, client, Request::new(Operation::Lookup, Method::GET, path))
            .await
        {
            Ok(response) => Ok(list_first(&response.body)),
            Err(StepError::Target(e)) if matches!(e.status(), Some(400 | 501)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The users `app`'s target holds, read once when many user jobs of the app are queued
    /// (see `inventory.rs`); `None`: look each user up.
    async fn inventory(&self, app: &App, client: &ScimClient) -> Option<Arc<inventory::Inventory>> {
        if let Some(ready) = self.inventories.ready(app.id) {
            return ready;
        }
        let queued = self
            .queue_depths
            .get(app.id, || async { self.store.queued_user_jobs(app.id).await.ok() })
            .await?;
        let flow = self.flows.get(app.id, app.flow);
        let (inventory, throttled) = self.inventories.get(app.id, queued, client, &flow).await;
        if let Some(delay) = throttled
            && let Err(e) = self.store.throttle(app.id, now() + delay).await
        {
            // This node pauses the app already; other nodes learn of the 429 from the next one.
            tracing::debug!(error = %e, "recording a target's 429 for the other nodes failed");
        }
        inventory
    }

    /// Remembers that the target lacks PATCH, so later writes go straight to PUT.
    async fn note_no_patch(&self, app: &App) -> Step<()> {
        let mut capabilities = app.capabilities.clone().unwrap_or_default();
        capabilities.patch = false;
        capabilities.discovery = true;
        self.store
            .set_connection(
                app.id,
                app.connection_status,
                app.connection_message.as_deref(),
                Some(&capabilities),
                now(),
            )
            .await?;
        Ok(())
    }
}

impl JobRun {
    /// A run that took no action.
    fn bare(result: JobResult) -> Self {
        Self {
            result,
            ledger: Ledger::default(),
        }
    }
}

fn bad_subject(job: &Job) -> StepError {
    StepError::Hub(Error::Internal(format!(
        "bad {} id '{}' in a job",
        job.subject_kind.as_str(),
        job.subject_id
    )))
}

/// One request to a target, as `Engine::send` records it.
struct Request<'a> {
    operation: Operation,
    method: Method,
    path: &'a str,
    body: Option<&'a Value>,
    target_id: Option<&'a str>,
    diff: Option<Value>,
}

impl<'a> Request<'a> {
    fn new(operation: Operation, method: Method, path: &'a str) -> Self {
        Self {
            operation,
            method,
            path,
            body: None,
            target_id: None,
            diff: None,
        }
    }

    fn body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }

    fn target(mut self, target_id: &'a str) -> Self {
        self.target_id = Some(target_id);
        self
    }

    fn diff(mut self, diff: Value) -> Self {
        self.diff = Some(diff);
        self
    }
}
