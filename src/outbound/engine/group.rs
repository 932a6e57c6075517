//! Group jobs (group push): load the group, its policy and its members' accounts, let
//! `plan_group` decide, and carry the plan out (look-up and adopt before create, member changes
//! in PATCH batches, PUT when the target lacks PATCH, delete). Pushed-group records go to the
//! job's ledger.

use super::EngineStore;
use super::recorder::{Ledger, Recorder, Subject};
use super::{Engine, Request, Step, StepError, patch_body, resource_id};
use crate::domain::app::{App, AppGroup};
use crate::domain::job::{Effect, Job, Operation, Outcome, SubjectKind};
use crate::outbound::plan::{DesiredGroup, GroupPlan, plan_group};
use crate::outbound::scim::{ScimClient, ScimError, encode_query, eq_filter};
use crate::outbound::state::GroupState;
use provisio_scim::ast::AttrPath;
use provisio_scim::patch::{PatchOp, PatchOperation};
use provisio_scim::schema::GROUP_SCHEMA;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Most member changes sent in one group PATCH.
const MEMBER_BATCH: usize = 100;

/// The member list of a SCIM group body.
fn member_values(members: &[String]) -> Vec<Value> {
    members.iter().map(|m| json!({"value": m})).collect()
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Reconciles one group in one app.
    pub(super) async fn reconcile_group(
        &self,
        job: &Job,
        app: &App,
        client: &ScimClient,
        group_id: Uuid,
    ) -> (Step<()>, Ledger) {
        let state = match GroupState::load(&self.store, app, group_id).await {
            Ok(state) => state,
            Err(e) => return (Err(StepError::from(e)), Ledger::default()),
        };
        let subject = Subject {
            kind: SubjectKind::Group,
            id: group_id.to_string(),
            username: state.name.clone(),
            email: None,
        };
        let recorder = Recorder::new(job, app, subject, self.config.keep_bodies);
        let outcome = self.carry_out_group(&recorder, client, group_id, state).await;
        (outcome, recorder.into_ledger())
    }

    async fn carry_out_group(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        group_id: Uuid,
        state: GroupState,
    ) -> Step<()> {
        let app = recorder.app();
        let GroupState { desired, pushed, .. } = &state;
        match state.plan() {
            GroupPlan::NoChange => Ok(()),
            GroupPlan::Delete { target_id } => {
                let path = format!("/Groups/{target_id}");
                let request = Request::new(Operation::GroupDelete, Method::DELETE, &path).target(&target_id);
                match self.send(recorder, client, request).await {
                    Ok(_) => {}
                    Err(StepError::Target(e)) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
                recorder.effect(Effect::DeleteGroup {
                    app_id: app.id,
                    group_id,
                });
                Ok(())
            }
            GroupPlan::Create(desired) => {
                let record = self.create_group(recorder, client, group_id, &desired).await?;
                // An adopted group may differ from what it should hold.
                match plan_group(Some(&desired), Some(&record)) {
                    GroupPlan::Update {
                        rename, added, removed, ..
                    } => {
                        self.update_group(recorder, client, record, &desired, rename, added, removed)
                            .await
                    }
                    _ => Ok(()),
                }
            }
            GroupPlan::Update {
                rename, added, removed, ..
            } => {
                let (Some(record), Some(desired)) = (pushed.clone(), desired) else {
                    return Err(StepError::Hub(crate::domain::Error::Internal(
                        "a group update plan needs a record and a desired state".into(),
                    )));
                };
                self.update_group(recorder, client, record, desired, rename, added, removed)
                    .await
            }
        }
    }

    /// Creates (or adopts) the group in the target; returns its record, kept in the ledger.
    async fn create_group(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        group_id: Uuid,
        desired: &DesiredGroup,
    ) -> Step<AppGroup> {
        let app = recorder.app();
        let path = format!(
            "/Groups?filter={}",
            encode_query(&eq_filter("displayName", &desired.name))
        );
        if let Some(found) = self.lookup(recorder, client, &path).await? {
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
                .entry(Operation::Adopt, Outcome::Success)
                .target(Some(&id))
                .message("linked the existing group")
                .record();
            let record = AppGroup {
                app_id: app.id,
                group_id,
                target_id: id,
                pushed_name: desired.name.clone(),
                pushed_members: existing,
            };
            recorder.effect(Effect::SaveGroup(record.clone()));
            return Ok(record);
        }
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": desired.name,
            "members": member_values(&desired.members),
        });
        let diff =
            json!({"displayName": {"old": null, "new": desired.name}, "members": {"old": [], "new": desired.members}});
        let request = Request::new(Operation::GroupCreate, Method::POST, "/Groups")
            .body(&body)
            .diff(diff);
        let response = self.send(recorder, client, request).await?;
        let id = resource_id(&response).ok_or_else(|| ScimError::NotScim {
            message: "the target created the group but returned no id".into(),
        })?;
        let record = AppGroup {
            app_id: app.id,
            group_id,
            target_id: id,
            pushed_name: desired.name.clone(),
            pushed_members: desired.members.clone(),
        };
        recorder.effect(Effect::SaveGroup(record.clone()));
        Ok(record)
    }

    /// Pushes a new name and member changes (PATCH in batches; PUT of the whole group when the
    /// target lacks PATCH). The record follows each accepted request, so a failure part-way keeps
    /// what the target already took.
    #[allow(clippy::too_many_arguments)]
    async fn update_group(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        mut record: AppGroup,
        desired: &DesiredGroup,
        rename: Option<String>,
        added: Vec<String>,
        removed: Vec<String>,
    ) -> Step<()> {
        let app = recorder.app();
        let path = format!("/Groups/{}", record.target_id);
        let target_id = record.target_id.clone();
        let patch_known_missing = app.capabilities.as_ref().is_some_and(|c| c.discovery && !c.patch);
        let mut use_put = patch_known_missing;
        if !use_put && let Some(name) = &rename {
            let body = patch_body(&[PatchOperation::on_attribute(
                PatchOp::Replace,
                AttrPath::simple("displayName"),
                Some(Value::String(name.clone())),
            )]);
            let diff = json!({"displayName": {"old": record.pushed_name, "new": name}});
            let request = Request::new(Operation::GroupUpdate, Method::PATCH, &path)
                .body(&body)
                .target(&target_id)
                .diff(diff);
            match self.send(recorder, client, request).await {
                Ok(_) => {
                    record.pushed_name = name.clone();
                    recorder.effect(Effect::SaveGroup(record.clone()));
                }
                Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => use_put = true,
                Err(StepError::Target(e)) if e.status() == Some(404) => {
                    return self.recreate_group(recorder, client, &record, desired).await;
                }
                Err(e) => return Err(e),
            }
        }
        if !use_put {
            for chunk in added.chunks(MEMBER_BATCH) {
                let body = patch_body(&[PatchOperation::on_attribute(
                    PatchOp::Add,
                    AttrPath::simple("members"),
                    Some(Value::Array(member_values(chunk))),
                )]);
                let request = Request::new(Operation::MembershipAdd, Method::PATCH, &path)
                    .body(&body)
                    .target(&target_id)
                    .diff(json!({"members": {"added": chunk}}));
                match self.send(recorder, client, request).await {
                    Ok(_) => {
                        record.pushed_members.extend(chunk.iter().cloned());
                        record.pushed_members.sort();
                        record.pushed_members.dedup();
                        recorder.effect(Effect::SaveGroup(record.clone()));
                    }
                    Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => {
                        use_put = true;
                        break;
                    }
                    Err(StepError::Target(e)) if e.status() == Some(404) => {
                        return self.recreate_group(recorder, client, &record, desired).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !use_put {
            for chunk in removed.chunks(MEMBER_BATCH) {
                let operations: Vec<PatchOperation> = chunk
                    .iter()
                    .map(|m| PatchOperation::remove_element("members", m))
                    .collect();
                let body = patch_body(&operations);
                let request = Request::new(Operation::MembershipRemove, Method::PATCH, &path)
                    .body(&body)
                    .target(&target_id)
                    .diff(json!({"members": {"removed": chunk}}));
                match self.send(recorder, client, request).await {
                    Ok(_) => {
                        record.pushed_members.retain(|m| !chunk.contains(m));
                        recorder.effect(Effect::SaveGroup(record.clone()));
                    }
                    Err(StepError::Target(e)) if matches!(e.status(), Some(405 | 501)) => {
                        use_put = true;
                        break;
                    }
                    Err(StepError::Target(e)) if e.status() == Some(404) => {
                        return self.recreate_group(recorder, client, &record, desired).await;
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
                "id": target_id,
                "displayName": desired.name,
                "members": member_values(&desired.members),
            });
            let diff = json!({"displayName": {"old": record.pushed_name, "new": desired.name}, "members": {"added": added, "removed": removed}});
            let request = Request::new(Operation::GroupUpdate, Method::PUT, &path)
                .body(&body)
                .target(&target_id)
                .diff(diff);
            self.send(recorder, client, request).await?;
            record.pushed_name = desired.name.clone();
            record.pushed_members = desired.members.clone();
            recorder.effect(Effect::SaveGroup(record));
        }
        Ok(())
    }

    /// The pushed group vanished from the target: forget it and create it again.
    async fn recreate_group(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        record: &AppGroup,
        desired: &DesiredGroup,
    ) -> Step<()> {
        recorder.effect(Effect::DeleteGroup {
            app_id: record.app_id,
            group_id: record.group_id,
        });
        let record = self.create_group(recorder, client, record.group_id, desired).await?;
        match plan_group(Some(desired), Some(&record)) {
            GroupPlan::Update {
                rename, added, removed, ..
            } => Box::pin(self.update_group(recorder, client, record, desired, rename, added, removed)).await,
            _ => Ok(()),
        }
    }
}
