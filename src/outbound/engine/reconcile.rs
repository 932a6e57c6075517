//! Reconciliation jobs: read what the target holds, build what the hub expects of each account
//! and pushed group (the same rendering the engine pushes), let `plan_reconcile` list the
//! differences, and fix as far as the run may. Fixes go through the engine's own road: the
//! account or group record is set to what the target really holds, and the user's or group's
//! job is queued, so the usual plan sends exactly what differs (and a missing account is
//! created, an unlinked one adopted). Extra accounts no directory user owns are deprovisioned
//! here, as the app's settings for users who lose access say.

use super::recorder::Recorder;
use super::target_run::{ITEMS_PER_WRITE, RunReport, listing_warning, run_report};
use super::{Engine, EngineStore, Request, Step, StepError};
use crate::domain::app::{AccountState, AppAccount, AppGroup, DeprovisionAction};
use crate::domain::import::{TargetAccount, TargetGroup};
use crate::domain::job::{NewJob, Operation, Outcome, SubjectKind};
use crate::domain::mapping::restrict_to;
use crate::domain::now;
use crate::domain::reconcile::{Drift, Expectation, ExpectedAccount, ExpectedGroup, plan_reconcile};
use crate::domain::target_run::{RunItem, RunStatus, TargetRun};
use crate::outbound::plan::fingerprint;
use crate::outbound::scim::ScimClient;
use provisio_scim::ast::AttrPath;
use provisio_scim::patch::{PatchOp, PatchOperation, patch_request_body};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What a reconciliation changes in the hub's records and queues.
#[derive(Default)]
struct Fixes {
    accounts: Vec<AppAccount>,
    forget_accounts: Vec<(Uuid, Uuid)>,
    groups: Vec<AppGroup>,
    forget_groups: Vec<(Uuid, Uuid)>,
    jobs: Vec<NewJob>,
    users_done: HashSet<Uuid>,
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Carries out (or only reports) the reconciliation `run`.
    pub(super) async fn reconcile(&self, recorder: &Recorder<'_>, client: &ScimClient, run: &TargetRun) -> Step<()> {
        let app = recorder.app();
        let listing = self
            .read_listing(recorder, client, "/Users", |r| TargetAccount::from_resource(r.clone()))
            .await?;
        let warning = listing_warning(&listing);
        let read = listing.resources.len();
        let accounts = listing.resources;
        let users = self.all_users().await?;
        let assigned = self.store.assigned_user_ids(app.id).await?;
        let links: Vec<(Uuid, String, AccountState)> = self
            .store
            .account_links(app.id)
            .await?
            .into_iter()
            .filter(|(_, _, state)| *state != AccountState::Deleted)
            .collect();
        let by_user: HashMap<Uuid, (&str, AccountState)> = links
            .iter()
            .map(|(user, target, state)| (*user, (target.as_str(), *state)))
            .collect();
        let links_by_target: HashMap<String, Uuid> =
            links.iter().map(|(user, target, _)| (target.clone(), *user)).collect();
        let directory: HashMap<Uuid, &crate::domain::user::User> = users.iter().map(|u| (u.id, u)).collect();
        // What the hub expects of each user, rendered one at a time as the plan consumes it.
        let expected = users
            .iter()
            .filter_map(|user| {
                let record = by_user.get(&user.id);
                let linked = record.map(|(target, _)| (*target).to_owned());
                let expectation = if user.active && assigned.contains(&user.id) {
                    match app.mapping.render(user) {
                        Ok(desired) => Expectation::Present(desired),
                        // The user's own job reports the mapping failure.
                        Err(_) => Expectation::Known,
                    }
                } else {
                    match record.map(|(_, state)| *state) {
                        Some(AccountState::Deactivated) => Expectation::Inactive,
                        Some(_) => Expectation::Known,
                        None => return None,
                    }
                };
                Some(ExpectedAccount {
                    user_id: user.id,
                    username: user.username.clone(),
                    linked,
                    expectation,
                })
            })
            .chain(
                links
                    .iter()
                    .filter(|(user, _, _)| !directory.contains_key(user))
                    .map(|(user, target, _)| ExpectedAccount {
                        user_id: *user,
                        username: String::new(),
                        linked: Some(target.clone()),
                        expectation: Expectation::Known,
                    }),
            );
        let (groups, target_groups, pushed) = if app.features.push_groups {
            let pushed = self.store.list_app_groups(app.id).await?;
            let mut groups = Vec::with_capacity(pushed.len());
            for group in &pushed {
                groups.push(ExpectedGroup {
                    group_id: group.group_id,
                    name: group.pushed_name.clone(),
                    target_id: group.target_id.clone(),
                    members: self.store.member_target_ids(app.id, group.group_id).await?,
                });
            }
            let listed = self
                .read_listing(recorder, client, "/Groups", |g| {
                    TargetGroup::from_resource(g).map(|group| (group.id, group.members))
                })
                .await?;
            let target_groups: HashMap<String, Vec<String>> = listed.resources.into_iter().collect();
            (groups, target_groups, pushed)
        } else {
            (Vec::new(), HashMap::new(), Vec::new())
        };
        let inactive_is_deprovisioned = app.deprovision.on_unassign == DeprovisionAction::Deactivate;
        let plan = plan_reconcile(
            expected,
            &accounts,
            &links_by_target,
            &groups,
            &target_groups,
            inactive_is_deprovisioned,
        );
        let found: HashMap<&str, &TargetAccount> = accounts.iter().map(|a| (a.id.as_str(), a)).collect();
        let pushed: HashMap<Uuid, &AppGroup> = pushed.iter().map(|g| (g.group_id, g)).collect();
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        counts.insert("in_step".into(), plan.in_step as i64);
        let drifts = plan.drifts;
        let mut fixes = Fixes::default();
        let mut seq = 0i64;
        for chunk in drifts.chunks(ITEMS_PER_WRITE) {
            let mut items = Vec::with_capacity(chunk.len());
            let mut reports = Vec::new();
            for drift in chunk {
                seq += 1;
                *counts.entry(drift.kind().to_owned()).or_default() += 1;
                let fix = !run.dry_run && drift.fixed_by(run.apply);
                let note = if fix {
                    self.fix(
                        recorder,
                        client,
                        drift,
                        &directory,
                        &found,
                        &pushed,
                        &target_groups,
                        &mut fixes,
                    )
                    .await?
                } else if run.dry_run {
                    "found by a dry run; nothing was changed".to_owned()
                } else {
                    format!(
                        "found; the app's reconcile setting ({}) leaves it as it is",
                        run.apply.as_str()
                    )
                };
                let (target_id, target_username) = drift_target(drift, &found);
                let mut detail = serde_json::to_value(drift).unwrap_or(Value::Null);
                detail["note"] = Value::String(note.clone());
                reports.push(run_report(
                    recorder.job(),
                    app,
                    RunReport {
                        operation: Operation::Drift,
                        outcome: match (run.dry_run, fix) {
                            (true, _) => Outcome::DryRun,
                            (false, true) => Outcome::Success,
                            (false, false) => Outcome::Skipped,
                        },
                        user_id: drift.user_id(),
                        username: target_username.as_deref(),
                        target_id: target_id.as_deref(),
                        message: format!("{}: {note}", drift.kind().replace('_', " ")),
                        diff: None,
                    },
                ));
                items.push(RunItem {
                    seq,
                    outcome: drift.kind().to_owned(),
                    target_id,
                    target_username,
                    user_id: drift.user_id(),
                    detail,
                    applied: fix,
                });
            }
            self.store
                .record_run_progress(run.id, &items, &[], &[], &reports)
                .await?;
        }
        if !fixes.jobs.is_empty() || !fixes.accounts.is_empty() || !fixes.forget_groups.is_empty() {
            self.store
                .record_fixes(
                    &fixes.accounts,
                    &fixes.forget_accounts,
                    &fixes.groups,
                    &fixes.forget_groups,
                    &fixes.jobs,
                )
                .await?;
        }
        self.record_run(run, RunStatus::Done, read, &counts, warning.as_deref())
            .await
    }

    /// Fixes one difference (records and jobs into `fixes`; extra accounts deprovisioned now);
    /// says what was done.
    #[allow(clippy::too_many_arguments)]
    async fn fix(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        drift: &Drift,
        directory: &HashMap<Uuid, &crate::domain::user::User>,
        found: &HashMap<&str, &TargetAccount>,
        pushed: &HashMap<Uuid, &AppGroup>,
        target_groups: &HashMap<String, Vec<String>>,
        fixes: &mut Fixes,
    ) -> Step<String> {
        let app = recorder.app();
        let user_job = |user: Uuid| NewJob {
            app_id: app.id,
            subject_kind: SubjectKind::User,
            subject_id: user.to_string(),
            run_id: None,
            cause: format!("reconcile:{}", recorder.job().subject_id),
            not_before: None,
        };
        let group_job = |group: Uuid| NewJob {
            subject_kind: SubjectKind::Group,
            subject_id: group.to_string(),
            ..user_job(group)
        };
        Ok(match drift {
            Drift::Missing { user_id, target_id, .. } => {
                if target_id.is_some() {
                    fixes.forget_accounts.push((app.id, *user_id));
                }
                fixes.jobs.push(user_job(*user_id));
                "queued the user's job, which creates the account".into()
            }
            Drift::Unlinked { user_id, .. } => {
                fixes.jobs.push(user_job(*user_id));
                "queued the user's job, which links the account and updates it".into()
            }
            Drift::Drifted { user_id, target_id, .. } | Drift::WrongActive { user_id, target_id, .. } => {
                if fixes.users_done.insert(*user_id)
                    && let (Some(record), Some(account)) = (
                        self.store.get_account(app.id, *user_id).await?,
                        found.get(target_id.as_str()),
                    )
                {
                    let desired = directory.get(user_id).and_then(|user| app.mapping.render(user).ok());
                    let held = restrict_to(&account.resource(), desired.as_ref().unwrap_or(&record.pushed));
                    let inactive = account.active == Some(false);
                    let mut record = record;
                    record.fingerprint = fingerprint(&held);
                    record.pushed = held;
                    record.state = if inactive {
                        AccountState::Deactivated
                    } else {
                        AccountState::Active
                    };
                    record.deactivated_at = if inactive {
                        record.deactivated_at.or(Some(now()))
                    } else {
                        None
                    };
                    record.updated_at = now();
                    fixes.accounts.push(record);
                    fixes.jobs.push(user_job(*user_id));
                }
                "queued the user's job, which pushes the hub's values back".into()
            }
            Drift::Extra { target_id, .. } => self.deprovision_extra(recorder, client, target_id, found).await?,
            Drift::GroupMissing { group_id, .. } => {
                fixes.forget_groups.push((app.id, *group_id));
                fixes.jobs.push(group_job(*group_id));
                "queued the group's job, which creates it again".into()
            }
            Drift::Membership {
                group_id, target_id, ..
            } => {
                if let Some(group) = pushed.get(group_id) {
                    let mut held = AppGroup::clone(group);
                    let mut members = target_groups.get(target_id).cloned().unwrap_or_default();
                    members.sort();
                    held.pushed_members = members;
                    fixes.groups.push(held);
                }
                fixes.jobs.push(group_job(*group_id));
                "queued the group's job, which sets its members back".into()
            }
        })
    }

    /// Deprovisions an account no directory user owns, as the app's setting for users who
    /// lose access says (and its features allow).
    async fn deprovision_extra(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        target_id: &str,
        found: &HashMap<&str, &TargetAccount>,
    ) -> Step<String> {
        let app = recorder.app();
        let path = format!("/Users/{}", crate::outbound::scim::encode_query(target_id));
        match app.deprovision.on_unassign {
            DeprovisionAction::Delete if app.features.delete_users => {
                match self
                    .send(
                        recorder,
                        client,
                        Request::new(Operation::Delete, Method::DELETE, &path).target(target_id),
                    )
                    .await
                {
                    Ok(_) => Ok("deleted the account".into()),
                    Err(StepError::Target(e)) if e.status() == Some(404) => Ok("the account was gone already".into()),
                    Err(e) => Err(e),
                }
            }
            DeprovisionAction::Deactivate if app.features.deactivate_users => {
                if found.get(target_id).is_some_and(|a| a.active == Some(false)) {
                    return Ok("the account is inactive already".into());
                }
                let body = patch_request_body(&[PatchOperation::on_attribute(
                    PatchOp::Replace,
                    AttrPath::simple("active"),
                    Some(json!(false)),
                )]);
                match self
                    .send(
                        recorder,
                        client,
                        Request::new(Operation::Deactivate, Method::PATCH, &path)
                            .body(&body)
                            .target(target_id),
                    )
                    .await
                {
                    Ok(_) => Ok("deactivated the account".into()),
                    Err(StepError::Target(e)) if e.status() == Some(404) => Ok("the account was gone already".into()),
                    Err(e) => Err(e),
                }
            }
            action => Ok(format!(
                "left as it is: the app's setting for users who lose access is '{}' and its features allow no other",
                action.as_str()
            )),
        }
    }
}

/// The account a difference is about, with its userName.
fn drift_target(drift: &Drift, found: &HashMap<&str, &TargetAccount>) -> (Option<String>, Option<String>) {
    let target = match drift {
        Drift::Missing {
            target_id, username, ..
        } => return (target_id.clone(), Some(username.clone())),
        Drift::Unlinked { target_id, .. }
        | Drift::Drifted { target_id, .. }
        | Drift::WrongActive { target_id, .. }
        | Drift::Extra { target_id, .. } => target_id.clone(),
        Drift::GroupMissing { target_id, name, .. } | Drift::Membership { target_id, name, .. } => {
            return (Some(target_id.clone()), Some(name.clone()));
        }
    };
    let name = found.get(target.as_str()).and_then(|a| a.user_name.clone());
    (Some(target), name)
}
