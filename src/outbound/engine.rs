//! The sync engine's executor: runs one queued job (a user, a group, or a connection check of one
//! app) against the target, records every action in the provisioning report, and says whether the
//! job is done, should be retried, or failed.

use super::flow::FlowRegistry;
use super::plan::{UserPlan, access_loss, attribute_diff, fingerprint, plan_user};
use super::scim::{ScimClient, ScimError, ScimResponse, encode_query, filter_literal};
use crate::domain::app::{
    AccessLoss, AccountState, App, AppAccount, AppGroup, AppState, Capabilities, ConnectionStatus,
};
use crate::domain::group::Group;
use crate::domain::job::{Job, Operation, Outcome, Report, SubjectKind, report_body};
use crate::domain::mapping::patch_operations;
use crate::domain::user::User;
use crate::domain::{Error, now};
use crate::health::StoreHealth;
use crate::secrets::SecretKey;
use crate::store::{AppStore, GroupStore, QueueStore, ReportStore, StoredApp, UserStore};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Most member changes sent in one group PATCH.
const MEMBER_BATCH: usize = 100;

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

/// Executes jobs over a store.
pub struct Engine<S> {
    store: S,
    key: SecretKey,
    http: reqwest::Client,
    config: EngineConfig,
    flows: FlowRegistry,
    health: Arc<StoreHealth>,
    /// Report rows of actions taken while the store refused writes, stored as soon as it takes them.
    unsaved_reports: Mutex<Vec<Report>>,
}

/// Most report rows kept in memory while the store refuses writes; workers stop claiming work
/// while it refuses writes, so only the jobs in hand add to it.
const MAX_UNSAVED_REPORTS: usize = 100_000;

/// Who a job is about, for its report records.
#[derive(Clone)]
struct Subject {
    kind: SubjectKind,
    id: String,
    username: Option<String>,
    email: Option<String>,
}

/// Records the report rows of one job run.
struct Recorder<'a, S> {
    store: &'a S,
    health: &'a StoreHealth,
    unsaved: &'a Mutex<Vec<Report>>,
    job: &'a Job,
    app: &'a App,
    subject: Subject,
    keep_bodies: bool,
}

impl<S: ReportStore> Recorder<'_, S> {
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        started: (time::OffsetDateTime, Instant),
        operation: Operation,
        outcome: Outcome,
        request: Option<(&Method, &str)>,
        status: Option<u16>,
        target_id: Option<&str>,
        diff: Option<Value>,
        message: Option<String>,
    ) {
        self.record_with_bodies(
            started,
            operation,
            outcome,
            request,
            status,
            target_id,
            diff,
            message,
            (None, None),
        )
        .await;
    }

    /// Like [`Recorder::record`], keeping the request and response bodies (redacted, truncated)
    /// when the engine is configured to.
    #[allow(clippy::too_many_arguments)]
    async fn record_with_bodies(
        &self,
        started: (time::OffsetDateTime, Instant),
        operation: Operation,
        outcome: Outcome,
        request: Option<(&Method, &str)>,
        status: Option<u16>,
        target_id: Option<&str>,
        diff: Option<Value>,
        message: Option<String>,
        bodies: (Option<&Value>, Option<&Value>),
    ) {
        let (request_body, response_body) = if self.keep_bodies {
            (bodies.0.and_then(report_body), bodies.1.and_then(report_body))
        } else {
            (None, None)
        };
        let report = Report {
            id: Uuid::now_v7(),
            started_at: started.0,
            duration_ms: i64::try_from(started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            app_id: self.app.id,
            app_name: self.app.name.clone(),
            subject_kind: self.subject.kind,
            subject_id: self.subject.id.clone(),
            username: self.subject.username.clone(),
            email: self.subject.email.clone(),
            target_id: target_id.map(str::to_owned),
            operation,
            outcome,
            attempt: self.job.attempts,
            http_method: request.map(|(m, _)| m.to_string()),
            http_path: request.map(|(_, p)| p.to_owned()),
            http_status: status.map(i64::from),
            diff,
            message,
            request_body,
            response_body,
            correlation_id: self.job.correlation_id.clone(),
            cause: self.job.cause.clone(),
        };
        match self.store.insert_report(&report).await {
            Ok(()) => {}
            Err(e) if e.store_fault().is_some() => {
                // The action happened: keep its record until the store takes it.
                self.health.error(&e);
                if let Ok(mut unsaved) = self.unsaved.lock() {
                    if unsaved.len() < MAX_UNSAVED_REPORTS {
                        unsaved.push(report);
                    } else {
                        tracing::error!("too many report records wait for the store; one is dropped");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot store a provisioning report record"),
        }
    }
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

fn patch_body(operations: &[Value]) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// Keeps only the attributes of `found` that `desired` sets, so that adopting an account never
/// removes what the target holds beyond the mapping.
fn restrict_to(found: &Value, desired: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Value::Object(found), Value::Object(desired)) = (found, desired) {
        for key in desired.keys() {
            if let Some(value) = found.get(key) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

impl<S> Engine<S>
where
    S: AppStore + UserStore + GroupStore + QueueStore + ReportStore + Clone,
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
            unsaved_reports: Mutex::new(Vec::new()),
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

    /// Stores the report rows kept while the store refused writes. On failure they stay kept.
    pub async fn save_unsaved_reports(&self) -> Result<(), Error> {
        let pending = match self.unsaved_reports.lock() {
            Ok(mut unsaved) if !unsaved.is_empty() => std::mem::take(&mut *unsaved),
            _ => return Ok(()),
        };
        let result = self.store.insert_reports(&pending).await;
        if result.is_err()
            && let Ok(mut unsaved) = self.unsaved_reports.lock()
        {
            let newer = std::mem::replace(&mut *unsaved, pending);
            unsaved.extend(newer);
        }
        result
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

    /// Runs one claimed job and says how it ended.
    pub async fn run(&self, job: &Job) -> JobResult {
        let stored = match self.store.get_app(job.app_id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return JobResult::Done,
            Err(e) if e.store_fault().is_some() => return JobResult::StoreUnavailable { error: e.to_string() },
            Err(e) => {
                return JobResult::Retry {
                    after: self.backoff(job.attempts),
                    error: e.to_string(),
                };
            }
        };
        let client = match self.client(&stored) {
            Ok(client) => client,
            Err(e) => return JobResult::Failed { error: e.to_string() },
        };
        let outcome = match job.subject_kind {
            SubjectKind::User => match Uuid::parse_str(&job.subject_id) {
                Ok(user) => self.reconcile_user(job, &stored.app, &client, user).await,
                Err(_) => Err(StepError::Hub(Error::Storage(format!(
                    "bad user id '{}' in a job",
                    job.subject_id
                )))),
            },
            SubjectKind::Group => match Uuid::parse_str(&job.subject_id) {
                Ok(group) => self.reconcile_group(job, &stored.app, &client, group).await,
                Err(_) => Err(StepError::Hub(Error::Storage(format!(
                    "bad group id '{}' in a job",
                    job.subject_id
                )))),
            },
            SubjectKind::Connection => self.check_connection(job, &stored.app, &client).await,
        };
        let result = self.classify(job, &stored, outcome).await;
        if job.subject_kind != SubjectKind::Connection {
            self.track_health(&stored.app, &result).await;
        }
        result
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
            Err(StepError::Hub(e @ (Error::Storage(_) | Error::Schema(_)))) => JobResult::Retry {
                after: self.backoff(job.attempts),
                error: e.to_string(),
            },
            Err(StepError::Hub(e)) => JobResult::Failed { error: e.to_string() },
        }
    }

    /// Sends a request; on failure records a report row (retrying or failure) before returning the error.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        recorder: &Recorder<'_, S>,
        client: &ScimClient,
        operation: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
        target_id: Option<&str>,
        diff: Option<Value>,
    ) -> Step<ScimResponse> {
        let flow = self.flows.get(recorder.app.id, recorder.app.flow);
        let permit = flow.admit().await;
        let at = started();
        let result = client
            .send(method.clone(), path, body)
            .await
            .and_then(|response| require_created_id(operation, response));
        if let Err(e) = &result
            && e.status() == Some(429)
        {
            // The target asked for a break: every worker of this node holds, and other nodes stop
            // claiming. The pause is set before this request's slot is freed, so no waiting request
            // can slip in between.
            let delay = e.retry_after().unwrap_or(Duration::from_secs(1));
            flow.pause(delay);
            drop(permit);
            self.store.throttle(recorder.app.id, now() + delay).await?;
        } else {
            drop(permit);
        }
        match result {
            Ok(response) => {
                if operation != Operation::Lookup {
                    recorder
                        .record_with_bodies(
                            at,
                            operation,
                            Outcome::Success,
                            Some((&method, path)),
                            Some(response.status),
                            target_id.or(resource_id(&response).as_deref()),
                            diff,
                            None,
                            (body, Some(&response.body)),
                        )
                        .await;
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
                    let outcome = if e.is_transient() && recorder.job.attempts < self.config.max_attempts {
                        Outcome::Retrying
                    } else {
                        Outcome::Failure
                    };
                    recorder
                        .record_with_bodies(
                            at,
                            operation,
                            outcome,
                            Some((&method, path)),
                            e.answer_status(),
                            target_id,
                            diff,
                            Some(e.to_string()),
                            (body, None),
                        )
                        .await;
                }
                Err(StepError::Target(e))
            }
        }
    }

    async fn lookup_user(
        &self,
        recorder: &Recorder<'_, S>,
        client: &ScimClient,
        username: &str,
    ) -> Step<Option<Value>> {
        let path = format!(
            "/Users?filter={}",
            encode_query(&format!("userName eq {}", filter_literal(username)))
        );
        match self
            .send(
                recorder,
                client,
                Operation::Lookup,
                Method::GET,
                &path,
                None,
                None,
                None,
            )
            .await
        {
            Ok(response) => Ok(list_first(&response.body)),
            // A target that cannot filter: create and rely on 409 to find duplicates.
            Err(StepError::Target(e)) if matches!(e.status(), Some(400 | 501)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn reconcile_user(&self, job: &Job, app: &App, client: &ScimClient, user_id: Uuid) -> Step<()> {
        let user = self.store.get_user(user_id).await?;
        let account = self.store.get_account(app.id, user_id).await?;
        let assigned = user.is_some() && self.store.is_assigned(app.id, user_id).await?;
        let subject = Subject {
            kind: SubjectKind::User,
            id: user_id.to_string(),
            username: user
                .as_ref()
                .map(|u| u.username.clone())
                .or_else(|| account.as_ref().map(|a| a.target_username.clone())),
            // A deleted user is still named by what was last pushed for them.
            email: user.as_ref().and_then(|u| u.email.clone()).or_else(|| {
                account
                    .as_ref()
                    .and_then(|a| a.pushed["emails"][0]["value"].as_str().map(str::to_owned))
            }),
        };
        let recorder = Recorder {
            store: &self.store,
            health: &self.health,
            unsaved: &self.unsaved_reports,
            job,
            app,
            subject,
            keep_bodies: self.config.keep_bodies,
        };
        let desired = match (&user, assigned) {
            (Some(user), true) => match app.mapping.render(user) {
                Ok(resource) => Some(resource),
                Err(e) => {
                    recorder
                        .record(
                            started(),
                            Operation::Skip,
                            Outcome::Failure,
                            None,
                            None,
                            None,
                            None,
                            Some(format!("the mapping failed for this user: {e}")),
                        )
                        .await;
                    return Err(StepError::Hub(e));
                }
            },
            _ => None,
        };
        let before = account.as_ref().map(|a| (a.state, a.target_id.clone()));
        let loss = access_loss(user.as_ref());
        match plan_user(app, desired, account.as_ref(), loss, now()) {
            // Nothing to do is not an action: no report record.
            UserPlan::NoChange => {}
            UserPlan::Skip { reason } => {
                recorder
                    .record(
                        started(),
                        Operation::Skip,
                        Outcome::Skipped,
                        None,
                        None,
                        None,
                        None,
                        Some(reason),
                    )
                    .await;
            }
            UserPlan::Create { desired } => self.create_user(&recorder, app, client, user_id, desired).await?,
            UserPlan::Update {
                desired,
                operations,
                diff,
                reactivate,
            } => {
                let account = account
                    .as_ref()
                    .ok_or_else(|| Error::Storage("an update plan needs an account".into()))?;
                self.update_user(&recorder, app, client, account, desired, operations, diff, reactivate)
                    .await?;
            }
            UserPlan::Deactivate => {
                let account = account
                    .as_ref()
                    .ok_or_else(|| Error::Storage("a deactivation plan needs an account".into()))?;
                self.deactivate_user(&recorder, app, client, account, loss).await?;
            }
            UserPlan::Delete => {
                let account = account
                    .as_ref()
                    .ok_or_else(|| Error::Storage("a deletion plan needs an account".into()))?;
                self.delete_user(&recorder, client, account, user.is_none()).await?;
            }
        }
        let after = self
            .store
            .get_account(app.id, user_id)
            .await?
            .map(|a| (a.state, a.target_id));
        // Read the settings again: group push may have been switched on while this job ran, and a
        // group job that started before this account was saved would have missed it.
        let push_groups = self
            .store
            .get_app(app.id)
            .await?
            .is_some_and(|s| s.app.features.push_groups);
        if push_groups && before != after {
            for group in self.store.policy_groups_of_user(app.id, user_id).await? {
                self.store
                    .enqueue(&crate::domain::job::NewJob {
                        app_id: app.id,
                        subject_kind: SubjectKind::Group,
                        subject_id: group.to_string(),
                        run_id: None,
                        cause: format!("user:{user_id}"),
                        not_before: None,
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn save_account(
        &self,
        app: &App,
        user_id: Uuid,
        target_id: String,
        desired: &Value,
        state: AccountState,
        lost_access: Option<AccessLoss>,
    ) -> Step<()> {
        let deactivated = state == AccountState::Deactivated;
        let account = AppAccount {
            app_id: app.id,
            user_id,
            target_id,
            target_username: desired
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            state,
            fingerprint: fingerprint(desired),
            pushed: desired.clone(),
            deactivated_at: deactivated.then(now),
            lost_access: if deactivated { lost_access } else { None },
            updated_at: now(),
        };
        self.store.save_account(&account).await?;
        Ok(())
    }

    async fn create_user(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        user_id: Uuid,
        desired: Value,
    ) -> Step<()> {
        let username = desired
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(found) = self.lookup_user(recorder, client, &username).await? {
            return self.adopt_user(recorder, app, client, user_id, found, desired).await;
        }
        let diff = attribute_diff(&Value::Null, &desired);
        match self
            .send(
                recorder,
                client,
                Operation::Create,
                Method::POST,
                "/Users",
                Some(&desired),
                None,
                Some(diff),
            )
            .await
        {
            Ok(response) => {
                let id = resource_id(&response).ok_or_else(|| ScimError::NotScim {
                    message: "the target created the user but returned no id".into(),
                })?;
                self.save_account(app, user_id, id, &desired, AccountState::Active, None)
                    .await
            }
            Err(StepError::Target(e)) if e.status() == Some(409) => {
                // The account exists already (perhaps our own earlier create whose answer was lost): adopt it.
                match self.lookup_user(recorder, client, &username).await? {
                    Some(found) => self.adopt_user(recorder, app, client, user_id, found, desired).await,
                    None => {
                        recorder.record(started(), Operation::Create, Outcome::Failure, Some((&Method::POST, "/Users")), Some(409), None, None,
                            Some(format!("the target reports a conflict ({e}) but no user named '{username}' can be found there"))).await;
                        Err(StepError::Target(e))
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn adopt_user(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        user_id: Uuid,
        found: Value,
        desired: Value,
    ) -> Step<()> {
        let id = found
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ScimError::NotScim {
                message: "the target listed a user without an id".into(),
            })?
            .to_owned();
        let current = restrict_to(&found, &desired);
        let operations: Vec<Value> = patch_operations(&current, &desired)
            .into_iter()
            .filter(|op| op["op"] != "remove")
            .collect();
        let diff = attribute_diff(&current, &desired);
        if operations.is_empty() {
            recorder
                .record(
                    started(),
                    Operation::Adopt,
                    Outcome::Success,
                    None,
                    None,
                    Some(&id),
                    None,
                    Some("linked the existing account; it already matches".into()),
                )
                .await;
        } else {
            self.write_user(
                recorder,
                app,
                client,
                &id,
                &desired,
                &operations,
                Operation::Adopt,
                diff,
            )
            .await?;
        }
        self.save_account(app, user_id, id, &desired, AccountState::Active, None)
            .await
    }

    /// Sends `operations` as a PATCH, or the whole `desired` resource as a PUT when the target lacks PATCH.
    #[allow(clippy::too_many_arguments)]
    async fn write_user(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        id: &str,
        desired: &Value,
        operations: &[Value],
        operation: Operation,
        diff: Value,
    ) -> Step<()> {
        let path = format!("/Users/{id}");
        let patch_known_missing = app.capabilities.as_ref().is_some_and(|c| c.discovery && !c.patch);
        if !patch_known_missing {
            match self
                .send(
                    recorder,
                    client,
                    operation,
                    Method::PATCH,
                    &path,
                    Some(&patch_body(operations)),
                    Some(id),
                    Some(diff.clone()),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => {
                    self.note_no_patch(app).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut full = desired.clone();
        if let Value::Object(map) = &mut full {
            map.insert("id".into(), Value::String(id.to_owned()));
        }
        self.send(
            recorder,
            client,
            operation,
            Method::PUT,
            &path,
            Some(&full),
            Some(id),
            Some(diff),
        )
        .await?;
        Ok(())
    }

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

    #[allow(clippy::too_many_arguments)]
    async fn update_user(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        account: &AppAccount,
        desired: Value,
        operations: Vec<Value>,
        diff: Value,
        reactivate: bool,
    ) -> Step<()> {
        let operation = if reactivate {
            Operation::Reactivate
        } else {
            Operation::Update
        };
        if !operations.is_empty() {
            match self
                .write_user(
                    recorder,
                    app,
                    client,
                    &account.target_id,
                    &desired,
                    &operations,
                    operation,
                    diff,
                )
                .await
            {
                Ok(()) => {}
                Err(StepError::Target(e)) if e.status() == Some(404) => {
                    // The account vanished from the target: create it again.
                    recorder
                        .record(
                            started(),
                            operation,
                            Outcome::Failure,
                            None,
                            Some(404),
                            Some(&account.target_id),
                            None,
                            Some("the account no longer exists in the target; creating it again".into()),
                        )
                        .await;
                    self.store.delete_account(app.id, account.user_id).await?;
                    return self.create_user(recorder, app, client, account.user_id, desired).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.save_account(
            app,
            account.user_id,
            account.target_id.clone(),
            &desired,
            AccountState::Active,
            None,
        )
        .await
    }

    async fn deactivate_user(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        account: &AppAccount,
        loss: AccessLoss,
    ) -> Step<()> {
        let mut desired = account.pushed.clone();
        if let Value::Object(map) = &mut desired {
            map.insert("active".into(), Value::Bool(false));
        }
        let operations = vec![json!({"op": "replace", "path": "active", "value": false})];
        let diff = json!({"active": {"old": true, "new": false}});
        match self
            .write_user(
                recorder,
                app,
                client,
                &account.target_id,
                &desired,
                &operations,
                Operation::Deactivate,
                diff,
            )
            .await
        {
            Ok(()) => {
                self.save_account(
                    app,
                    account.user_id,
                    account.target_id.clone(),
                    &desired,
                    AccountState::Deactivated,
                    Some(loss),
                )
                .await
            }
            Err(StepError::Target(e)) if e.status() == Some(404) => {
                self.save_account(
                    app,
                    account.user_id,
                    account.target_id.clone(),
                    &desired,
                    AccountState::Deleted,
                    None,
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_user(
        &self,
        recorder: &Recorder<'_, S>,
        client: &ScimClient,
        account: &AppAccount,
        forget: bool,
    ) -> Step<()> {
        let path = format!("/Users/{}", account.target_id);
        match self
            .send(
                recorder,
                client,
                Operation::Delete,
                Method::DELETE,
                &path,
                None,
                Some(&account.target_id),
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(StepError::Target(e)) if e.status() == Some(404) => {
                recorder
                    .record(
                        started(),
                        Operation::Delete,
                        Outcome::Success,
                        Some((&Method::DELETE, &path)),
                        Some(404),
                        Some(&account.target_id),
                        None,
                        Some("the account was already gone".into()),
                    )
                    .await;
            }
            Err(e) => return Err(e),
        }
        if forget {
            self.store.delete_account(account.app_id, account.user_id).await?;
        } else {
            let mut gone = account.clone();
            gone.state = AccountState::Deleted;
            gone.updated_at = now();
            self.store.save_account(&gone).await?;
        }
        Ok(())
    }

    async fn reconcile_group(&self, job: &Job, app: &App, client: &ScimClient, group_id: Uuid) -> Step<()> {
        let group: Option<Group> = self.store.get_group(group_id).await?;
        let record = self.store.get_app_group(app.id, group_id).await?;
        let subject = Subject {
            kind: SubjectKind::Group,
            id: group_id.to_string(),
            username: group
                .as_ref()
                .map(|g| g.name.clone())
                .or_else(|| record.as_ref().map(|r| r.pushed_name.clone())),
            email: None,
        };
        let recorder = Recorder {
            store: &self.store,
            health: &self.health,
            unsaved: &self.unsaved_reports,
            job,
            app,
            subject,
            keep_bodies: self.config.keep_bodies,
        };
        let wanted = match &group {
            Some(_) => app.features.push_groups && self.store.has_policy(app.id, group_id).await?,
            None => false,
        };
        let (Some(group), true) = (group, wanted) else {
            if let Some(record) = record {
                let path = format!("/Groups/{}", record.target_id);
                match self
                    .send(
                        &recorder,
                        client,
                        Operation::GroupDelete,
                        Method::DELETE,
                        &path,
                        None,
                        Some(&record.target_id),
                        None,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(StepError::Target(e)) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
                self.store.delete_app_group(app.id, group_id).await?;
            }
            return Ok(());
        };
        let members = self.store.member_target_ids(app.id, group_id).await?;
        let record = match record {
            Some(record) => record,
            None => match self.create_group(&recorder, client, &group, &members).await? {
                Some(record) => record,
                None => return Ok(()),
            },
        };
        self.update_group(&recorder, app, client, &group, record, members).await
    }

    /// Creates (or adopts) the group in the target; returns the record, already saved.
    async fn create_group(
        &self,
        recorder: &Recorder<'_, S>,
        client: &ScimClient,
        group: &Group,
        members: &[String],
    ) -> Step<Option<AppGroup>> {
        let app = recorder.app;
        let path = format!(
            "/Groups?filter={}",
            encode_query(&format!("displayName eq {}", filter_literal(&group.name)))
        );
        let found = match self
            .send(
                recorder,
                client,
                Operation::Lookup,
                Method::GET,
                &path,
                None,
                None,
                None,
            )
            .await
        {
            Ok(response) => list_first(&response.body),
            Err(StepError::Target(e)) if matches!(e.status(), Some(400 | 501)) => None,
            Err(e) => return Err(e),
        };
        if let Some(found) = found {
            let id = found
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| ScimError::NotScim {
                    message: "the target listed a group without an id".into(),
                })?
                .to_owned();
            let mut existing: Vec<String> = found
                .get("members")
                .and_then(Value::as_array)
                .map(|m| {
                    m.iter()
                        .filter_map(|v| v.get("value").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            existing.sort();
            recorder
                .record(
                    started(),
                    Operation::Adopt,
                    Outcome::Success,
                    None,
                    None,
                    Some(&id),
                    None,
                    Some("linked the existing group".into()),
                )
                .await;
            let record = AppGroup {
                app_id: app.id,
                group_id: group.id,
                target_id: id,
                pushed_name: group.name.clone(),
                pushed_members: existing,
            };
            self.store.save_app_group(&record).await?;
            return Ok(Some(record));
        }
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": group.name,
            "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
        });
        let diff = json!({"displayName": {"old": null, "new": group.name}, "members": {"old": [], "new": members}});
        let response = self
            .send(
                recorder,
                client,
                Operation::GroupCreate,
                Method::POST,
                "/Groups",
                Some(&body),
                None,
                Some(diff),
            )
            .await?;
        let id = resource_id(&response).ok_or_else(|| ScimError::NotScim {
            message: "the target created the group but returned no id".into(),
        })?;
        let record = AppGroup {
            app_id: app.id,
            group_id: group.id,
            target_id: id,
            pushed_name: group.name.clone(),
            pushed_members: members.to_vec(),
        };
        self.store.save_app_group(&record).await?;
        Ok(Some(record))
    }

    async fn update_group(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        group: &Group,
        mut record: AppGroup,
        members: Vec<String>,
    ) -> Step<()> {
        let path = format!("/Groups/{}", record.target_id);
        let pushed: BTreeSet<&String> = record.pushed_members.iter().collect();
        let wanted: BTreeSet<&String> = members.iter().collect();
        let added: Vec<String> = wanted.difference(&pushed).map(|s| (*s).clone()).collect();
        let removed: Vec<String> = pushed.difference(&wanted).map(|s| (*s).clone()).collect();
        let renamed = record.pushed_name != group.name;
        if !renamed && added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let patch_known_missing = app.capabilities.as_ref().is_some_and(|c| c.discovery && !c.patch);
        let mut use_put = patch_known_missing;
        if !use_put && renamed {
            let ops = vec![json!({"op": "replace", "path": "displayName", "value": group.name})];
            let diff = json!({"displayName": {"old": record.pushed_name, "new": group.name}});
            match self
                .send(
                    recorder,
                    client,
                    Operation::GroupUpdate,
                    Method::PATCH,
                    &path,
                    Some(&patch_body(&ops)),
                    Some(&record.target_id),
                    Some(diff),
                )
                .await
            {
                Ok(_) => {
                    record.pushed_name = group.name.clone();
                    self.store.save_app_group(&record).await?;
                }
                Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => use_put = true,
                Err(StepError::Target(e)) if e.status() == Some(404) => {
                    return self.recreate_group(recorder, app, client, group, &members).await;
                }
                Err(e) => return Err(e),
            }
        }
        if !use_put {
            for chunk in added.chunks(MEMBER_BATCH) {
                let ops = vec![
                    json!({"op": "add", "path": "members", "value": chunk.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()}),
                ];
                match self
                    .send(
                        recorder,
                        client,
                        Operation::MembershipAdd,
                        Method::PATCH,
                        &path,
                        Some(&patch_body(&ops)),
                        Some(&record.target_id),
                        Some(json!({"members": {"added": chunk}})),
                    )
                    .await
                {
                    Ok(_) => {
                        record.pushed_members.extend(chunk.iter().cloned());
                        record.pushed_members.sort();
                        record.pushed_members.dedup();
                        self.store.save_app_group(&record).await?;
                    }
                    Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => {
                        use_put = true;
                        break;
                    }
                    Err(StepError::Target(e)) if e.status() == Some(404) => {
                        return self.recreate_group(recorder, app, client, group, &members).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !use_put {
            for chunk in removed.chunks(MEMBER_BATCH) {
                let ops: Vec<Value> = chunk
                    .iter()
                    .map(|m| json!({"op": "remove", "path": format!("members[value eq {}]", filter_literal(m))}))
                    .collect();
                match self
                    .send(
                        recorder,
                        client,
                        Operation::MembershipRemove,
                        Method::PATCH,
                        &path,
                        Some(&patch_body(&ops)),
                        Some(&record.target_id),
                        Some(json!({"members": {"removed": chunk}})),
                    )
                    .await
                {
                    Ok(_) => {
                        record.pushed_members.retain(|m| !chunk.contains(m));
                        self.store.save_app_group(&record).await?;
                    }
                    Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => {
                        use_put = true;
                        break;
                    }
                    Err(StepError::Target(e)) if e.status() == Some(404) => {
                        return self.recreate_group(recorder, app, client, group, &members).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if use_put {
            if !patch_known_missing {
                self.note_no_patch(app).await?;
            }
            let body = json!({
                "schemas": [GROUP_SCHEMA],
                "id": record.target_id,
                "displayName": group.name,
                "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
            });
            let diff = json!({"displayName": {"old": record.pushed_name, "new": group.name}, "members": {"added": added, "removed": removed}});
            self.send(
                recorder,
                client,
                Operation::GroupUpdate,
                Method::PUT,
                &path,
                Some(&body),
                Some(&record.target_id),
                Some(diff),
            )
            .await?;
            record.pushed_name = group.name.clone();
            record.pushed_members = members;
            self.store.save_app_group(&record).await?;
        }
        Ok(())
    }

    async fn recreate_group(
        &self,
        recorder: &Recorder<'_, S>,
        app: &App,
        client: &ScimClient,
        group: &Group,
        members: &[String],
    ) -> Step<()> {
        self.store.delete_app_group(app.id, group.id).await?;
        if let Some(record) = self.create_group(recorder, client, group, members).await? {
            return Box::pin(self.update_group(recorder, app, client, group, record, members.to_vec())).await;
        }
        Ok(())
    }

    async fn check_connection(&self, job: &Job, app: &App, client: &ScimClient) -> Step<()> {
        let subject = Subject {
            kind: SubjectKind::Connection,
            id: app.id.to_string(),
            username: Some(app.name.clone()),
            email: None,
        };
        let recorder = Recorder {
            store: &self.store,
            health: &self.health,
            unsaved: &self.unsaved_reports,
            job,
            app,
            subject,
            keep_bodies: self.config.keep_bodies,
        };
        let at = started();
        let request = Some((&Method::GET, "/ServiceProviderConfig"));
        match self.probe(client).await {
            Ok(capabilities) => {
                self.store
                    .set_connection(app.id, ConnectionStatus::Ok, None, Some(&capabilities), now())
                    .await?;
                let mut message = "the target answered as a SCIM 2.0 service and accepted the token".to_owned();
                if app.state == AppState::Quarantined {
                    self.store.set_app_state(app.id, AppState::Active, None, None).await?;
                    message.push_str("; the app leaves quarantine");
                    tracing::info!(app = %app.name, "the target answers again: quarantine lifted");
                }
                recorder
                    .record(
                        at,
                        Operation::TestConnection,
                        Outcome::Success,
                        request,
                        None,
                        None,
                        None,
                        Some(message),
                    )
                    .await;
                Ok(())
            }
            Err(failure) => {
                self.store
                    .set_connection(app.id, ConnectionStatus::Failed, Some(&failure.message), None, now())
                    .await?;
                if failure.transient {
                    recorder
                        .record(
                            at,
                            Operation::TestConnection,
                            Outcome::Retrying,
                            request,
                            None,
                            None,
                            None,
                            Some(failure.message.clone()),
                        )
                        .await;
                    return Err(StepError::Target(ScimError::Transport {
                        message: failure.message,
                    }));
                }
                // A configuration problem: the connection stays failed (holding all work) until fixed.
                if app.state == AppState::Quarantined {
                    self.store.set_app_state(app.id, AppState::Active, None, None).await?;
                }
                recorder
                    .record(
                        at,
                        Operation::TestConnection,
                        Outcome::Failure,
                        request,
                        None,
                        None,
                        None,
                        Some(failure.message),
                    )
                    .await;
                Ok(())
            }
        }
    }

    /// Checks that the target is a SCIM service that accepts the token, and reads what it supports.
    pub async fn probe(&self, client: &ScimClient) -> Result<Capabilities, ProbeFailure> {
        let permanent = |message: String| ProbeFailure {
            message,
            transient: false,
        };
        let mut capabilities = Capabilities {
            patch: true,
            filter: true,
            ..Default::default()
        };
        match client.send(Method::GET, "/ServiceProviderConfig", None).await {
            Ok(response) if response.body.is_object() => {
                let body = &response.body;
                let flag = |name: &str| body.get(name).and_then(|v| v.get("supported")).and_then(Value::as_bool);
                capabilities = Capabilities {
                    patch: flag("patch").unwrap_or(true),
                    filter: flag("filter").unwrap_or(true),
                    bulk: flag("bulk").unwrap_or(false),
                    etag: flag("etag").unwrap_or(false),
                    max_results: body
                        .get("filter")
                        .and_then(|f| f.get("maxResults"))
                        .and_then(Value::as_i64),
                    discovery: true,
                };
            }
            Ok(_) => {}
            Err(ScimError::Status {
                status: 401 | 403,
                detail,
                ..
            }) => {
                return Err(permanent(format!("the target refused the bearer token: {detail}")));
            }
            Err(e) if e.is_transient() && e.status().is_none() => {
                // No answer at all. A name that does not resolve is a configuration error; anything
                // else (refused, reset, timed out) may pass.
                let transient = !e.to_string().contains("DNS");
                return Err(ProbeFailure {
                    message: e.to_string(),
                    transient,
                });
            }
            Err(_) => {}
        }
        match client.send(Method::GET, "/Users?count=1", None).await {
            Ok(response) if response.body.get("Resources").is_some() || response.body.get("totalResults").is_some() => {
                Ok(capabilities)
            }
            Ok(response) => Err(permanent(format!(
                "the target answered GET /Users with {} but not with a SCIM list: is the base URL the SCIM endpoint?",
                response.status
            ))),
            Err(ScimError::Status {
                status: code @ (401 | 403),
                detail,
                ..
            }) => Err(permanent(format!(
                "the target refused the bearer token ({code}): {detail}"
            ))),
            Err(ScimError::Status { status: 404, .. }) => Err(permanent(
                "no SCIM service at this base URL (404 for /Users): check the URL, e.g. it usually ends in /scim/v2"
                    .into(),
            )),
            Err(e) => Err(ProbeFailure {
                transient: e.is_transient(),
                message: e.to_string(),
            }),
        }
    }
}

/// Why a connection check failed.
#[derive(Debug, Clone)]
pub struct ProbeFailure {
    /// In words for the administrator.
    pub message: String,
    /// Whether trying again later may succeed (the target is down) rather than the configuration being wrong.
    pub transient: bool,
}

/// Renders what a user would be sent, for previews.
pub fn preview(app: &App, user: &User) -> crate::domain::Result<Value> {
    app.mapping.render(user)
}
