//! Import jobs: read every account the target holds, decide with `plan_import` what becomes of
//! each (the same decision a dry run shows), and carry it out: link accounts to directory users,
//! create users where the app allows, queue conflicts for an administrator, and optionally add
//! the users to the group that assigns them the app. Stored in parts of a thousand accounts.

use super::recorder::Recorder;
use super::target_run::{ITEMS_PER_WRITE, RunReport, listing_warning, run_report};
use super::{Engine, EngineStore, Step, StepError};
use crate::domain::admin::Actor;
use crate::domain::app::{AppAccount, AppGroup};
use crate::domain::attribute::AttributeDefinition;
use crate::domain::group::{Group, NewGroup};
use crate::domain::import::{
    DirectoryIndex, GroupImportOutcome, ImportItem, ImportOutcome, Links, TargetAccount, TargetGroup,
    plan_group_import, plan_import,
};
use crate::domain::job::{Operation, Outcome, Report};
use crate::domain::mapping::Mapping;
use crate::domain::scim::members::MemberOp;
use crate::domain::target_run::{ImportConflict, RunItem, RunStatus, TargetRun};
use crate::domain::user::{NewUser, User, UserSource};
use crate::domain::{Error, now};
use crate::outbound::plan::link_record;
use crate::outbound::scim::ScimClient;
use crate::store::GroupQuery;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

fn text(profile: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    profile.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The directory user an import creates for `account`: its profile read back through the
/// mapping, its `userName` as username. Refused as `User::create` refuses any bad input.
fn new_user(mapping: &Mapping, account: &TargetAccount, definitions: &[AttributeDefinition]) -> Result<User, Error> {
    let profile = mapping.read_back(&account.resource());
    let attributes = definitions
        .iter()
        .filter_map(|definition| {
            profile
                .get(&definition.name)
                .map(|value| (definition.name.clone(), value.clone()))
        })
        .collect();
    let input = NewUser {
        username: account.user_name.clone().unwrap_or_default(),
        given_name: text(&profile, "given_name"),
        family_name: text(&profile, "family_name"),
        display_name: text(&profile, "display_name"),
        formatted_name: text(&profile, "formatted_name"),
        email: text(&profile, "email").or_else(|| account.emails.first().cloned()),
        active: account.active,
        external_id: text(&profile, "external_id"),
        attributes,
        extensions: None,
    };
    User::create(input, definitions, UserSource::Import, now())
}

/// The plan's `created` outcomes that cannot become users (a bad email, a missing required
/// attribute) turn into `unmatched` with the reason, in a dry run and a real run alike; the
/// others get the user they create.
fn check_creatable(
    items: &mut [ImportItem],
    mapping: &Mapping,
    definitions: &[AttributeDefinition],
) -> HashMap<usize, User> {
    let mut users = HashMap::new();
    for (position, item) in items.iter_mut().enumerate() {
        if matches!(item.outcome, ImportOutcome::Created { .. }) {
            match new_user(mapping, &item.account, definitions) {
                Ok(user) => {
                    users.insert(position, user);
                }
                Err(e) => {
                    item.outcome = ImportOutcome::Unmatched {
                        reason: format!("no directory user matches, and none can be created from the account: {e}"),
                    };
                }
            }
        }
    }
    users
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Carries out (or, in a dry run, only plans) the import `run`.
    pub(super) async fn import(&self, recorder: &Recorder<'_>, client: &ScimClient, run: &TargetRun) -> Step<()> {
        let app = recorder.app();
        if !app.features.import_users {
            return Err(StepError::Hub(Error::invalid(
                "features",
                "the app's import feature is off; switch it on to import its accounts",
            )));
        }
        let listing = self
            .read_listing(recorder, client, "/Users", |r| TargetAccount::from_resource(r.clone()))
            .await?;
        let warning = listing_warning(&listing);
        let read = listing.resources.len();
        let accounts = listing.resources;
        let users = self.all_users().await?;
        let definitions = self.store.list_attributes().await?;
        let settings = &app.sync.import;
        let index = DirectoryIndex::new(&users, settings, &app.mapping);
        let links = Links::new(
            self.store
                .account_links(app.id)
                .await?
                .into_iter()
                .map(|(user, target, _)| (user, target)),
        );
        let ignored = self.store.ignored_targets(app.id).await?;
        let mut items = plan_import(accounts, &index, &links, &ignored, settings);
        let mut creatable = check_creatable(&mut items, &app.mapping, &definitions);
        self.record_run(run, RunStatus::Running, read, &BTreeMap::new(), warning.as_deref())
            .await?;
        drop(index);
        let by_id: HashMap<Uuid, &User> = users.iter().map(|user| (user.id, user)).collect();
        let actor = Actor::Import { app: app.name.clone() };
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        let mut seq = 0i64;
        for (part, chunk) in items.chunks(ITEMS_PER_WRITE).enumerate() {
            // The part's new users are stored concurrently, so the directory's group commit
            // writes many of them per transaction.
            let mut inserts = tokio::task::JoinSet::new();
            if !run.dry_run {
                for offset in 0..chunk.len() {
                    if let Some(user) = creatable.remove(&(part * ITEMS_PER_WRITE + offset)) {
                        let (store, actor) = (self.store.clone(), actor.clone());
                        inserts.spawn(async move {
                            let stored = store.insert_user(&user, &actor).await;
                            (offset, stored.map(|()| user))
                        });
                    }
                }
            }
            let mut created: HashMap<usize, Result<User, Error>> = HashMap::new();
            while let Some(joined) = inserts.join_next().await {
                let (offset, stored) =
                    joined.map_err(|e| Error::Internal(format!("a user insert of the import stopped: {e}")))?;
                created.insert(offset, stored);
            }
            let mut run_items = Vec::with_capacity(chunk.len());
            let mut new_links: Vec<AppAccount> = Vec::new();
            let mut conflicts = Vec::new();
            let mut reports: Vec<Report> = Vec::new();
            for (offset, item) in chunk.iter().enumerate() {
                seq += 1;
                let account = &item.account;
                let mut outcome = item.outcome.clone();
                let mut user_id = None;
                let mut applied = false;
                match &item.outcome {
                    ImportOutcome::Linked { user_id: id } | ImportOutcome::AlreadyLinked { user_id: id } => {
                        user_id = Some(*id);
                        if let (ImportOutcome::Linked { .. }, false, Some(user)) =
                            (&item.outcome, run.dry_run, by_id.get(id))
                        {
                            new_links.push(link_record(app, user, account, now()));
                            applied = true;
                        }
                    }
                    ImportOutcome::Created { .. } if !run.dry_run => match created.remove(&offset) {
                        Some(Ok(user)) => {
                            user_id = Some(user.id);
                            new_links.push(link_record(app, &user, account, now()));
                            applied = true;
                        }
                        Some(Err(e)) if e.store_fault().is_some() => return Err(e.into()),
                        Some(Err(e)) => {
                            outcome = ImportOutcome::Conflict {
                                candidates: Vec::new(),
                                reason: format!("the directory user could not be created: {e}"),
                            };
                        }
                        None => {}
                    },
                    _ => {}
                }
                if let (ImportOutcome::Conflict { candidates, reason }, false) = (&outcome, run.dry_run) {
                    conflicts.push(ImportConflict {
                        id: Uuid::now_v7(),
                        app_id: app.id,
                        target_id: account.id.clone(),
                        target_username: account.user_name.clone(),
                        account: account.resource(),
                        candidates: candidates.clone(),
                        reason: reason.clone(),
                        status: crate::domain::target_run::ConflictStatus::Open,
                        resolved_user: None,
                        resolved_by: None,
                        created_at: now(),
                        updated_at: now(),
                    });
                    applied = true;
                }
                *counts.entry(outcome.name().to_owned()).or_default() += 1;
                if !run.dry_run
                    && let Some(report) = import_report(recorder, &outcome, user_id, account)
                {
                    reports.push(report);
                }
                run_items.push(RunItem {
                    seq,
                    outcome: outcome.name().to_owned(),
                    target_id: Some(account.id.clone()),
                    target_username: account.user_name.clone(),
                    user_id,
                    detail: serde_json::to_value(&outcome).unwrap_or(Value::Null),
                    applied,
                });
            }
            let stored = self
                .store
                .record_run_progress(run.id, &run_items, &new_links, &conflicts, &reports)
                .await?;
            // Only a link to an existing user can be refused (a new user has no account yet).
            let not_stored = stored.iter().filter(|stored| !**stored).count() as i64;
            if not_stored > 0 {
                *counts.entry("linked".into()).or_default() -= not_stored;
                *counts.entry("not_linked".into()).or_default() += not_stored;
            }
            self.record_run(run, RunStatus::Running, read, &counts, warning.as_deref())
                .await?;
            if let Some(group) = settings.assign_group.filter(|_| !run.dry_run) {
                let members: Vec<Uuid> = new_links
                    .iter()
                    .zip(stored)
                    .filter(|(_, stored)| *stored)
                    .map(|(link, _)| link.user_id)
                    .collect();
                if !members.is_empty() {
                    // One membership write for the part: only the new members' rows and events.
                    self.store
                        .change_members(group, None, &[MemberOp::Add(members)], now(), &actor)
                        .await?;
                }
            }
        }
        if app.features.push_groups {
            self.import_groups(recorder, client, run, &actor, &mut seq, &mut counts)
                .await?;
        }
        self.record_run(run, RunStatus::Done, read, &counts, warning.as_deref())
            .await
    }

    /// Imports the target's groups (when the app pushes groups): links them to directory groups
    /// by name or creates them, with the members whose accounts are linked by then.
    async fn import_groups(
        &self,
        recorder: &Recorder<'_>,
        client: &ScimClient,
        run: &TargetRun,
        actor: &Actor,
        seq: &mut i64,
        counts: &mut BTreeMap<String, i64>,
    ) -> Step<()> {
        let app = recorder.app();
        let listing = self
            .read_listing(recorder, client, "/Groups", TargetGroup::from_resource)
            .await?;
        let mut directory = HashMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list_groups(&GroupQuery {
                    cursor,
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            directory.extend(page.items.into_iter().map(|g| (g.name.to_lowercase(), g.id)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let linked: HashMap<String, Uuid> = self
            .store
            .list_app_groups(app.id)
            .await?
            .into_iter()
            .map(|g| (g.target_id, g.group_id))
            .collect();
        let mut managed = HashSet::new();
        for policy in self.store.list_policies(Some(app.id)).await? {
            managed.insert(policy.group_id);
        }
        let plan = plan_group_import(
            listing.resources,
            &directory,
            &linked,
            &managed,
            app.sync.import.create_groups,
        );
        let users_of: HashMap<String, Uuid> = self
            .store
            .account_links(app.id)
            .await?
            .into_iter()
            .map(|(user, target, _)| (target, user))
            .collect();
        let (mut items, mut records, mut reports) = (Vec::new(), Vec::new(), Vec::new());
        for (group, outcome) in plan {
            *seq += 1;
            *counts.entry(outcome.name().to_owned()).or_default() += 1;
            let mut members = group.members.clone();
            members.sort();
            let record = |group_id: Uuid| AppGroup {
                app_id: app.id,
                group_id,
                target_id: group.id.clone(),
                pushed_name: group.display_name.clone(),
                pushed_members: members.clone(),
            };
            let mut applied = false;
            let mut detail = serde_json::to_value(&outcome).unwrap_or(Value::Null);
            if !run.dry_run {
                match &outcome {
                    GroupImportOutcome::GroupLinked { group_id } => {
                        records.push(record(*group_id));
                        applied = true;
                    }
                    GroupImportOutcome::GroupCreated { name } => {
                        let created = Group::create(
                            NewGroup {
                                name: name.clone(),
                                external_id: None,
                            },
                            UserSource::Import,
                            now(),
                        )?;
                        let member_ids: Vec<Uuid> =
                            group.members.iter().filter_map(|m| users_of.get(m).copied()).collect();
                        self.store.save_group(&created, None, Some(&member_ids), actor).await?;
                        detail["group_id"] = Value::String(created.id.to_string());
                        detail["members"] = serde_json::json!(member_ids.len());
                        detail["note"] = Value::String(
                            "created in the directory; the hub manages it in the app once a policy names it".into(),
                        );
                        applied = true;
                    }
                    GroupImportOutcome::GroupAlreadyLinked { .. } | GroupImportOutcome::GroupUnmatched { .. } => {}
                }
                if applied {
                    reports.push(run_report(
                        recorder.job(),
                        app,
                        RunReport {
                            operation: Operation::Link,
                            outcome: Outcome::Success,
                            user_id: None,
                            username: Some(&group.display_name),
                            target_id: Some(&group.id),
                            message: format!("group {}: {}", group.display_name, outcome.name().replace('_', " ")),
                            diff: None,
                        },
                    ));
                }
            }
            items.push(RunItem {
                seq: *seq,
                outcome: outcome.name().to_owned(),
                target_id: Some(group.id.clone()),
                target_username: Some(group.display_name.clone()),
                user_id: None,
                detail,
                applied,
            });
        }
        self.store
            .record_run_progress(run.id, &items, &[], &[], &reports)
            .await?;
        if !records.is_empty() {
            self.store.record_fixes(&[], &[], &records, &[], &[]).await?;
        }
        Ok(())
    }
}

/// The report row of one import outcome (none for an account that was linked already).
fn import_report(
    recorder: &Recorder<'_>,
    outcome: &ImportOutcome,
    user_id: Option<Uuid>,
    account: &TargetAccount,
) -> Option<Report> {
    let (operation, result, message) = match outcome {
        ImportOutcome::Linked { .. } => (
            Operation::Link,
            Outcome::Success,
            "linked the account found by import".to_owned(),
        ),
        ImportOutcome::Created { username } => (
            Operation::Import,
            Outcome::Success,
            format!("created directory user '{username}' from the account and linked it"),
        ),
        ImportOutcome::Conflict { reason, .. } => (
            Operation::Conflict,
            Outcome::Skipped,
            format!("not linked: {reason}; waiting in the conflict queue"),
        ),
        ImportOutcome::Unmatched { reason } => (Operation::Skip, Outcome::Skipped, format!("not imported: {reason}")),
        ImportOutcome::AlreadyLinked { .. } | ImportOutcome::Ignored => return None,
    };
    Some(run_report(
        recorder.job(),
        recorder.app(),
        RunReport {
            operation,
            outcome: result,
            user_id,
            username: account.user_name.as_deref(),
            target_id: Some(&account.id),
            message,
            diff: None,
        },
    ))
}
