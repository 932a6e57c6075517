//! What one job run leaves behind, kept in memory until the job is finished: the report rows of
//! its actions (built with [`Entry`]) and the account and pushed-group records it changed. The
//! scheduler stores both with the job's end, in one transaction.

use crate::domain::app::App;
use crate::domain::job::{Effect, Job, Operation, Outcome, Report, SubjectKind, report_body};
use crate::domain::now;
use reqwest::Method;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who a job is about, for its report records.
#[derive(Debug, Clone)]
pub(super) struct Subject {
    /// User, group or connection.
    pub kind: SubjectKind,
    /// The directory id.
    pub id: String,
    /// The username (the group's name).
    pub username: Option<String>,
    /// The user's email.
    pub email: Option<String>,
}

/// The report rows and writes of one job run so far.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The writes, in order.
    pub effects: Vec<Effect>,
    /// The report rows, in order.
    pub reports: Vec<Report>,
}

/// Collects the report rows and writes of one job run.
pub(super) struct Recorder<'a> {
    job: &'a Job,
    app: &'a App,
    subject: Subject,
    keep_bodies: bool,
    ledger: Mutex<Ledger>,
}

impl<'a> Recorder<'a> {
    /// A recorder for `job` on `app` about `subject`; `keep_bodies` keeps request and response
    /// bodies (redacted, truncated) in the rows.
    pub(super) fn new(job: &'a Job, app: &'a App, subject: Subject, keep_bodies: bool) -> Self {
        Self {
            job,
            app,
            subject,
            keep_bodies,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// The job being run.
    pub(super) fn job(&self) -> &Job {
        self.job
    }

    /// The app the job is for.
    pub(super) fn app(&self) -> &App {
        self.app
    }

    /// Starts a report row for an action that starts now.
    pub(super) fn entry(&self, operation: Operation, outcome: Outcome) -> Entry<'_, 'a> {
        Entry {
            recorder: self,
            started: (now(), Instant::now()),
            operation,
            outcome,
            request: None,
            status: None,
            target_id: None,
            diff: None,
            message: None,
            bodies: (None, None),
        }
    }

    /// Keeps a write, to be stored with the job's end.
    pub(super) fn effect(&self, effect: Effect) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.effects.push(effect);
        }
    }

    /// The account writes for `user` so far: the last one says what the account is now
    /// (`Some(None)`: forgotten), `None` when nothing was written.
    pub(super) fn last_account_write(&self, user: Uuid) -> Option<Option<(crate::domain::app::AccountState, String)>> {
        let ledger = self.ledger.lock().ok()?;
        ledger.effects.iter().rev().find_map(|effect| match effect {
            Effect::SaveAccount(account) if account.user_id == user => {
                Some(Some((account.state, account.target_id.clone())))
            }
            Effect::DeleteAccount { user_id, .. } if *user_id == user => Some(None),
            _ => None,
        })
    }

    /// Everything kept, for storing.
    pub(super) fn into_ledger(self) -> Ledger {
        self.ledger.into_inner().unwrap_or_default()
    }

    fn push(&self, report: Report) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.reports.push(report);
        }
    }
}

/// One report row under construction; [`Entry::record`] keeps it.
pub(super) struct Entry<'r, 'a> {
    recorder: &'r Recorder<'a>,
    started: (OffsetDateTime, Instant),
    operation: Operation,
    outcome: Outcome,
    request: Option<(String, String)>,
    status: Option<u16>,
    target_id: Option<String>,
    diff: Option<Value>,
    message: Option<String>,
    bodies: (Option<String>, Option<String>),
}

impl Entry<'_, '_> {
    /// The action started at `started` (by default: when the entry was made).
    pub(super) fn started(mut self, started: (OffsetDateTime, Instant)) -> Self {
        self.started = started;
        self
    }

    /// The request sent.
    pub(super) fn request(mut self, method: &Method, path: &str) -> Self {
        self.request = Some((method.to_string(), path.to_owned()));
        self
    }

    /// The HTTP status received.
    pub(super) fn status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    /// The resource id in the target.
    pub(super) fn target(mut self, target_id: Option<&str>) -> Self {
        self.target_id = target_id.map(str::to_owned);
        self
    }

    /// The attributes pushed.
    pub(super) fn diff(mut self, diff: Option<Value>) -> Self {
        self.diff = diff;
        self
    }

    /// What happened, in words.
    pub(super) fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The request and response bodies, kept (redacted, truncated) when the engine keeps bodies.
    pub(super) fn bodies(mut self, request: Option<&Value>, response: Option<&Value>) -> Self {
        if self.recorder.keep_bodies {
            self.bodies = (request.and_then(report_body), response.and_then(report_body));
        }
        self
    }

    /// Keeps the row with the job's ledger.
    pub(super) fn record(self) {
        let recorder = self.recorder;
        let (method, path) = match self.request {
            Some((method, path)) => (Some(method), Some(path)),
            None => (None, None),
        };
        recorder.push(Report {
            id: Uuid::now_v7(),
            started_at: self.started.0,
            duration_ms: i64::try_from(self.started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            app_id: recorder.app.id,
            app_name: recorder.app.name.clone(),
            subject_kind: recorder.subject.kind,
            subject_id: recorder.subject.id.clone(),
            username: recorder.subject.username.clone(),
            email: recorder.subject.email.clone(),
            target_id: self.target_id,
            operation: self.operation,
            outcome: self.outcome,
            attempt: recorder.job.attempts,
            http_method: method,
            http_path: path,
            http_status: self.status.map(i64::from),
            diff: self.diff,
            message: self.message,
            request_body: self.bodies.0,
            response_body: self.bodies.1,
            correlation_id: recorder.job.correlation_id.clone(),
            cause: recorder.job.cause.clone(),
        });
    }
}
