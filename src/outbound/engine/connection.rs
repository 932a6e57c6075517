//! Connection jobs: check that an app's target is a SCIM service that accepts the token, read
//! what it supports, and lift a quarantine when it answers again.

use super::EngineStore;
use super::recorder::{Ledger, Recorder, Subject};
use super::{Engine, Step, StepError};
use crate::domain::app::{App, AppState, Capabilities, ConnectionStatus};
use crate::domain::job::{Job, Operation, Outcome, SubjectKind};
use crate::domain::now;
use crate::outbound::scim::{ScimClient, ScimError};
use reqwest::Method;
use serde_json::Value;

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Checks one app's connection (also the quarantine probe).
    pub(super) async fn check_connection(&self, job: &Job, app: &App, client: &ScimClient) -> (Step<()>, Ledger) {
        let subject = Subject {
            kind: SubjectKind::Connection,
            id: app.id.to_string(),
            username: Some(app.name.clone()),
            email: None,
        };
        let recorder = Recorder::new(job, app, subject, self.config.keep_bodies);
        let outcome = self.check_connection_with(&recorder, client).await;
        (outcome, recorder.into_ledger())
    }

    async fn check_connection_with(&self, recorder: &Recorder<'_>, client: &ScimClient) -> Step<()> {
        let app = recorder.app();
        let entry = |outcome: Outcome| {
            recorder
                .entry(Operation::TestConnection, outcome)
                .request(&Method::GET, "/ServiceProviderConfig")
        };
        let at = super::started();
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
                entry(Outcome::Success).started(at).message(message).record();
                Ok(())
            }
            Err(failure) => {
                self.store
                    .set_connection(app.id, ConnectionStatus::Failed, Some(&failure.message), None, now())
                    .await?;
                if failure.transient {
                    entry(Outcome::Retrying)
                        .started(at)
                        .message(failure.message.clone())
                        .record();
                    return Err(StepError::Target(ScimError::Transport {
                        message: failure.message,
                    }));
                }
                // A configuration problem: the connection stays failed (holding all work) until fixed.
                if app.state == AppState::Quarantined {
                    self.store.set_app_state(app.id, AppState::Active, None, None).await?;
                }
                entry(Outcome::Failure).started(at).message(failure.message).record();
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
