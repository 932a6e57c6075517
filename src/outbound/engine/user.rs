//! User jobs: load what the directory says and what was pushed, let `plan_user` decide, and carry
//! the plan out (look-up and adopt before create, PATCH or PUT, deactivate, delete). Account
//! records go to the job's ledger and are stored with the job's end.

use super::EngineStore;
use super::recorder::{Ledger, Recorder, Subject};
use super::{Engine, Request, Step, StepError, patch_body, resource_id};
use crate::domain::app::{AccessLoss, AccountState, App, AppAccount};
use crate::domain::job::{Effect, Job, Operation, Outcome, SubjectKind};
use crate::domain::mapping::{patch_operations, restrict_to};
use crate::domain::{Error, now};
use crate::outbound::plan::{UserPlan, attribute_diff, fingerprint};
use crate::outbound::scim::{ScimClient, ScimError, encode_query, eq_filter};
use crate::outbound::state::UserState;
use provisio_scim::ast::AttrPath;
use provisio_scim::patch::{PatchOp, PatchOperation};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// The account record for `desired` as pushed now.
fn account_record(
    app: &App,
    user_id: Uuid,
    target_id: String,
    desired: &Value,
    state: AccountState,
    lost_access: Option<AccessLoss>,
) -> AppAccount {
    let deactivated = state == AccountState::Deactivated;
    AppAccount {
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
    }
}

/// Keeps the record of an active account that now holds `desired`.
fn save_active(recorder: &Recorder<'_>, user_id: Uuid, target_id: String, desired: &Value) {
    recorder.effect(Effect::SaveAccount(account_record(
        recorder.app(),
        user_id,
        target_id,
        desired,
        AccountState::Active,
        None,
    )));
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Reconciles one user's account in one app.
    pub(super) async fn reconcile_user(
        &self,
        job: &Job,
        app: &App,
        client: &ScimClient,
        user_id: Uuid,
        read_ahead: Option<UserState>,
    ) -> (Step<()>, Ledger) {
        let loaded = match read_ahead {
            Some(state) => Ok(state),
            None => UserState::load(&self.store, app, user_id).await,
        };
        let state = match loaded {
            Ok(state) => state,
            Err(e) => return (Err(e.into()), Ledger::default()),
        };
        let subject = Subject {
            kind: SubjectKind::User,
            id: user_id.to_string(),
            username: state.name(),
            email: state.email(),
        };
        let recorder = Recorder::new(job, app, subject, self.config.keep_bodies);
        let outcome = self.carry_out_user(&recorder, client, user_id, state).await;
        (outcome, recorder.into_ledger())
    }

    async fn carry_out_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        user_id: Uuid,
        state: UserState,
    ) -> Step<()> {
        let app = recorder.app();
        let desired = match state.desired(app) {
            Ok(desired) => desired,
            Err(e) => {
                recorder
                    .entry(Operation::Skip, Outcome::Failure)
                    .message(format!("the mapping failed for this user: {e}"))
                    .record();
                return Err(StepError::Hub(e));
            }
        };
        let account = state.account.as_ref();
        let before = account.map(|a| (a.state, a.target_id.clone()));
        let loss = state.loss();
        match state.plan(app, desired) {
            // Nothing to do is not an action: no report record.
            UserPlan::NoChange => {}
            UserPlan::Skip { reason } => {
                recorder
                    .entry(Operation::Skip, Outcome::Skipped)
                    .message(reason)
                    .record();
            }
            UserPlan::Create { desired } => self.create_user(recorder, client, user_id, desired).await?,
            UserPlan::Update {
                desired,
                operations,
                diff,
                reactivate,
            } => {
                let account = account.ok_or_else(|| Error::Internal("an update plan needs an account".into()))?;
                self.update_user(recorder, client, account, desired, operations, diff, reactivate)
                    .await?;
            }
            UserPlan::Deactivate => {
                let account = account.ok_or_else(|| Error::Internal("a deactivation plan needs an account".into()))?;
                self.deactivate_user(recorder, client, account, loss).await?;
            }
            UserPlan::Delete => {
                let account = account.ok_or_else(|| Error::Internal("a deletion plan needs an account".into()))?;
                self.delete_user(recorder, client, account, state.user.is_none())
                    .await?;
            }
        }
        let after = recorder.last_account_write(user_id).unwrap_or_else(|| before.clone());
        if before != after {
            // The groups this user belongs to follow (when the app pushes groups, which the
            // transaction that stores this job's end reads).
            recorder.effect(Effect::UserAccountChanged {
                app_id: app.id,
                user_id,
            });
        }
        Ok(())
    }

    async fn lookup_user(&self, recorder: &Recorder<'_>, client: &ScimClient, username: &str) -> Step<Option<Value>> {
        let path = format!("/Users?filter={}", encode_query(&eq_filter("userName", username)));
        self.lookup(recorder, client, &path).await
    }

    async fn create_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        user_id: Uuid,
        desired: Value,
    ) -> Step<()> {
        let app = recorder.app();
        let username = desired
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // With many creates queued, the target's users were read once: a user it did not list
        // needs no look-up (a 409 still leads to one). One it listed is looked up as always, so
        // adoption works on what the target holds now.
        let listed_absent = match self.inventory(app, client).await {
            Some(inventory) => inventory.find(&username).is_none(),
            None => false,
        };
        if !listed_absent && let Some(found) = self.lookup_user(recorder, client, &username).await? {
            return self.adopt_user(recorder, client, user_id, found, desired).await;
        }
        let diff = attribute_diff(&Value::Null, &desired);
        let request = Request::new(Operation::Create, Method::POST, "/Users")
            .body(&desired)
            .diff(diff);
        match self.send(recorder, client, request).await {
            Ok(response) => {
                let id = resource_id(&response).ok_or_else(|| ScimError::NotScim {
                    message: "the target created the user but returned no id".into(),
                })?;
                save_active(recorder, user_id, id, &desired);
                Ok(())
            }
            Err(StepError::Target(e)) if e.status() == Some(409) => {
                // The account exists already (perhaps our own earlier create whose answer was lost): adopt it.
                match self.lookup_user(recorder, client, &username).await? {
                    Some(found) => self.adopt_user(recorder, client, user_id, found, desired).await,
                    None => {
                        recorder
                            .entry(Operation::Create, Outcome::Failure)
                            .request(&Method::POST, "/Users")
                            .status(Some(409))
                            .message(format!(
                                "the target reports a conflict ({e}) but no user named '{username}' can be found there"
                            ))
                            .record();
                        Err(StepError::Target(e))
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn adopt_user(
        &self,
        recorder: &Recorder<'_>,
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
        let operations: Vec<PatchOperation> = patch_operations(&current, &desired)
            .into_iter()
            .filter(|op| op.op != PatchOp::Remove)
            .collect();
        let diff = attribute_diff(&current, &desired);
        if operations.is_empty() {
            recorder
                .entry(Operation::Adopt, Outcome::Success)
                .target(Some(&id))
                .message("linked the existing account; it already matches")
                .record();
        } else {
            self.write_user(recorder, client, &id, &desired, &operations, Operation::Adopt, diff)
                .await?;
        }
        save_active(recorder, user_id, id, &desired);
        Ok(())
    }

    /// Sends `operations` as a PATCH, or the whole `desired` resource as a PUT when the target lacks PATCH.
    #[allow(clippy::too_many_arguments)]
    async fn write_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        id: &str,
        desired: &Value,
        operations: &[PatchOperation],
        operation: Operation,
        diff: Value,
    ) -> Step<()> {
        let app = recorder.app();
        let path = format!("/Users/{id}");
        let patch_known_missing = app.capabilities.as_ref().is_some_and(|c| c.discovery && !c.patch);
        if !patch_known_missing {
            let body = patch_body(operations);
            let request = Request::new(operation, Method::PATCH, &path)
                .body(&body)
                .target(id)
                .diff(diff.clone());
            match self.send(recorder, client, request).await {
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
        let request = Request::new(operation, Method::PUT, &path)
            .body(&full)
            .target(id)
            .diff(diff);
        self.send(recorder, client, request).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        account: &AppAccount,
        desired: Value,
        operations: Vec<PatchOperation>,
        diff: Value,
        reactivate: bool,
    ) -> Step<()> {
        let app = recorder.app();
        let operation = if reactivate {
            Operation::Reactivate
        } else {
            Operation::Update
        };
        if !operations.is_empty() {
            match self
                .write_user(
                    recorder,
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
                        .entry(operation, Outcome::Failure)
                        .status(Some(404))
                        .target(Some(&account.target_id))
                        .message("the account no longer exists in the target; creating it again")
                        .record();
                    recorder.effect(Effect::DeleteAccount {
                        app_id: app.id,
                        user_id: account.user_id,
                    });
                    return Box::pin(self.create_user(recorder, client, account.user_id, desired)).await;
                }
                Err(e) => return Err(e),
            }
        }
        save_active(recorder, account.user_id, account.target_id.clone(), &desired);
        Ok(())
    }

    async fn deactivate_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        account: &AppAccount,
        loss: AccessLoss,
    ) -> Step<()> {
        let app = recorder.app();
        let mut desired = account.pushed.clone();
        if let Value::Object(map) = &mut desired {
            map.insert("active".into(), Value::Bool(false));
        }
        let operations = [PatchOperation::on_attribute(
            PatchOp::Replace,
            AttrPath::simple("active"),
            Some(Value::Bool(false)),
        )];
        let diff = json!({"active": {"old": true, "new": false}});
        let state = match self
            .write_user(
                recorder,
                client,
                &account.target_id,
                &desired,
                &operations,
                Operation::Deactivate,
                diff,
            )
            .await
        {
            Ok(()) => AccountState::Deactivated,
            Err(StepError::Target(e)) if e.status() == Some(404) => AccountState::Deleted,
            Err(e) => return Err(e),
        };
        recorder.effect(Effect::SaveAccount(account_record(
            app,
            account.user_id,
            account.target_id.clone(),
            &desired,
            state,
            (state == AccountState::Deactivated).then_some(loss),
        )));
        Ok(())
    }

    async fn delete_user(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        account: &AppAccount,
        forget: bool,
    ) -> Step<()> {
        let path = format!("/Users/{}", account.target_id);
        let request = Request::new(Operation::Delete, Method::DELETE, &path).target(&account.target_id);
        match self.send(recorder, client, request).await {
            Ok(_) => {}
            Err(StepError::Target(e)) if e.status() == Some(404) => {
                recorder
                    .entry(Operation::Delete, Outcome::Success)
                    .request(&Method::DELETE, &path)
                    .status(Some(404))
                    .target(Some(&account.target_id))
                    .message("the account was already gone")
                    .record();
            }
            Err(e) => return Err(e),
        }
        if forget {
            recorder.effect(Effect::DeleteAccount {
                app_id: account.app_id,
                user_id: account.user_id,
            });
        } else {
            let mut gone = account.clone();
            gone.state = AccountState::Deleted;
            gone.updated_at = now();
            recorder.effect(Effect::SaveAccount(gone));
        }
        Ok(())
    }
}
