//! Import and reconciliation jobs: the plumbing both share. The run record is started (the items
//! of an attempt that died with its node are dropped), the target's listing is read page by page
//! under the app's flow limits (a 429 or a passing failure waits and asks for the same page
//! again), the directory is loaded in pages, and report rows about many subjects are built here.

use super::recorder::{Ledger, Recorder, Subject};
use super::{Engine, EngineStore, Request, Step, StepError};
use crate::domain::app::App;
use crate::domain::job::{Job, Operation, Outcome, Report, SubjectKind};
use crate::domain::now;
use crate::domain::target_run::{RunStatus, TargetRun};
use crate::domain::user::User;
use crate::outbound::listing::{Listing, PAGE_SIZE, read_all};
use crate::outbound::scim::ScimClient;
use crate::store::UserQuery;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// Attempts at one page before the read fails (and the job retries the whole run later).
const PAGE_ATTEMPTS: u32 = 6;
/// How often a running import or reconciliation renews its job's lease (to four times this).
const LEASE_RENEWAL: Duration = Duration::from_secs(20);
/// Items stored per transaction.
pub(super) const ITEMS_PER_WRITE: usize = 1_000;

/// A report row about one account of a run (not about the run's own subject).
pub(super) struct RunReport<'a> {
    pub operation: Operation,
    pub outcome: Outcome,
    pub user_id: Option<Uuid>,
    pub username: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub message: String,
    pub diff: Option<Value>,
}

/// Builds the report row of `entry` for the run job `job` in `app`.
pub(super) fn run_report(job: &Job, app: &App, entry: RunReport<'_>) -> Report {
    Report {
        id: Uuid::now_v7(),
        started_at: now(),
        duration_ms: 0,
        app_id: app.id,
        app_name: app.name.clone(),
        subject_kind: SubjectKind::User,
        subject_id: entry
            .user_id
            .map(|id| id.to_string())
            .or_else(|| entry.target_id.map(str::to_owned))
            .unwrap_or_default(),
        username: entry.username.map(str::to_owned),
        email: None,
        target_id: entry.target_id.map(str::to_owned),
        operation: entry.operation,
        outcome: entry.outcome,
        attempt: job.attempts,
        http_method: None,
        http_path: None,
        http_status: None,
        diff: entry.diff,
        message: Some(entry.message),
        request_body: None,
        response_body: None,
        correlation_id: job.correlation_id.clone(),
        cause: job.cause.clone(),
    }
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Runs an import or reconciliation job: the run named by the job's subject.
    pub(super) async fn run_target(&self, job: &Job, app: &App, client: &ScimClient) -> (Step<()>, Ledger) {
        let Ok(run_id) = Uuid::parse_str(&job.subject_id) else {
            return (Err(super::bad_subject(job)), Ledger::default());
        };
        let run = match self.store.get_target_run(run_id).await {
            Ok(Some(run)) => run,
            // The run was deleted with its app, or is over (a repeated job): nothing to do.
            Ok(None) => return (Ok(()), Ledger::default()),
            Err(e) => return (Err(e.into()), Ledger::default()),
        };
        if matches!(run.status, RunStatus::Done | RunStatus::Failed) {
            return (Ok(()), Ledger::default());
        }
        let subject = Subject {
            kind: job.subject_kind,
            id: run.id.to_string(),
            username: None,
            email: None,
        };
        let recorder = Recorder::new(job, app, subject, self.config.keep_bodies);
        let work = async {
            self.store.start_target_run(run.id, now()).await?;
            match job.subject_kind {
                SubjectKind::Import => self.import(&recorder, client, &run).await,
                _ => self.reconcile(&recorder, client, &run).await,
            }
        };
        // The job keeps its lease while the run works, however long the target takes.
        let renew = async {
            loop {
                tokio::time::sleep(LEASE_RENEWAL).await;
                let until = now() + LEASE_RENEWAL * 4;
                if let Err(e) = self.store.renew_lease(&job.id, until).await {
                    self.health
                        .background_error("cannot renew the lease of an import or reconciliation", &e);
                }
            }
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            never = renew => never,
        };
        (outcome, recorder.into_ledger())
    }

    /// Records how a run's job ended: a failure ends the run; a retry leaves it queued with
    /// the error, until its next attempt starts it again.
    pub(super) async fn note_run_end(&self, job: &Job, result: &super::JobResult) {
        let Ok(run_id) = Uuid::parse_str(&job.subject_id) else {
            return;
        };
        let (status, error) = match result {
            super::JobResult::Done | super::JobResult::StoreUnavailable { .. } => return,
            super::JobResult::Failed { error } => (RunStatus::Failed, error.clone()),
            super::JobResult::Retry { error, .. } | super::JobResult::Deferred { error } => {
                (RunStatus::Queued, format!("will try again: {error}"))
            }
        };
        let run = match self.store.get_target_run(run_id).await {
            Ok(Some(run)) => run,
            _ => return,
        };
        if let Err(e) = self
            .store
            .record_target_run(
                run.id,
                status,
                run.accounts_read,
                &run.counts,
                Some(&error),
                run.warning.as_deref(),
                now(),
            )
            .await
        {
            self.health
                .background_error("cannot record the end of an import or reconciliation", &e);
        }
    }

    /// Reads everything the target lists at `endpoint` (`/Users`, `/Groups`), each resource kept
    /// as `convert` makes it.
    pub(super) async fn read_listing<T>(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        endpoint: &str,
        convert: impl Fn(&Value) -> Option<T>,
    ) -> Step<Listing<T>> {
        read_all(
            |start, count| {
                let path = format!("{endpoint}?startIndex={start}&count={count}");
                async move { self.read_page(recorder, client, &path).await }
            },
            PAGE_SIZE,
            convert,
        )
        .await
    }

    /// One page, asked again after a 429 (once the target's pause is over) or a passing failure.
    async fn read_page(&self, recorder: &Recorder<'_>, client: &ScimClient, path: &str) -> Step<Value> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .send(recorder, client, Request::new(Operation::Lookup, Method::GET, path))
                .await
            {
                Ok(response) => return Ok(response.body),
                Err(StepError::Target(e)) if e.is_transient() && attempt < PAGE_ATTEMPTS => {
                    let pause = e
                        .retry_after()
                        .unwrap_or_else(|| Duration::from_millis(250 * u64::from(attempt)));
                    tokio::time::sleep(pause.min(Duration::from_secs(60))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every directory user, with their custom attributes.
    pub(super) async fn all_users(&self) -> Step<Vec<User>> {
        let mut users = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list_users(&UserQuery {
                    cursor,
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            users.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(users),
            }
        }
    }

    /// Records where a run is: `Running` with what it read and counted so far (the CLI's
    /// progress), or `Done` with its final counts.
    pub(super) async fn record_run(
        &self,
        run: &TargetRun,
        status: RunStatus,
        accounts_read: usize,
        counts: &std::collections::BTreeMap<String, i64>,
        warning: Option<&str>,
    ) -> Step<()> {
        self.store
            .record_target_run(
                run.id,
                status,
                i64::try_from(accounts_read).unwrap_or(i64::MAX),
                counts,
                None,
                warning,
                now(),
            )
            .await?;
        Ok(())
    }
}

/// The warning a run carries when the target's listing never held still while it was read.
pub(super) fn listing_warning<T>(listing: &Listing<T>) -> Option<String> {
    let mut warnings = Vec::new();
    if !listing.stable {
        warnings.push(format!(
            "the target's listing changed during each of {} reads; the run used every account any read saw",
            listing.passes
        ));
    }
    if listing.without_id > 0 {
        warnings.push(format!(
            "{} listed resources had no id and were left out",
            listing.without_id
        ));
    }
    (!warnings.is_empty()).then(|| warnings.join("; "))
}
