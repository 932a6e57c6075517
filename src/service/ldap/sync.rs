//! Carrying a run of an LDAP source out: read the server (everything first, so that a failure
//! changes nothing), load what the hub holds for the source, plan with `plan_sync`, and apply the
//! plan through the directory service (each change with its change event, so apps follow), with
//! one report record per change. A dry run records the plan and changes nothing.

use super::{LdapService, password_context};
use crate::domain::admin::Actor;
use crate::domain::group::NewGroup;
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::ldap::plan::{
    Current, GroupStep, Holder, LinkedGroup, LinkedUser, MembershipStep, SourceRead, SyncPlan, UserStep, plan_sync,
};
use crate::domain::ldap::run::{LdapRun, LdapRunCounts, LdapRunKind, LdapRunStatus, SyncMode};
use crate::domain::ldap::{LdapLink, LdapSource, LinkKind};
use crate::domain::scim::members::MemberOp;
use crate::domain::user::{User, UserSource};
use crate::domain::{Error, Result, now};
use crate::sources::ldap::Connection;
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, LdapStore, ReportStore, ScimStore, UserStore};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Changes applied at once: concurrent writers share the directory's group commit.
const CONCURRENT_CHANGES: usize = 128;

/// The outcome of one applied (or planned) change.
struct Done {
    report: Report,
    link: Option<LdapLink>,
    unlink: Option<(LinkKind, String)>,
    /// The entry's user or group id once it exists (creates and adoptions).
    owned: Option<(String, Uuid)>,
    failed: bool,
}

impl<S> LdapService<S>
where
    S: LdapStore + AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + ReportStore + Clone + 'static,
{
    /// Carries out a claimed run and returns it finished (done or failed, with its counts).
    pub async fn carry_out(&self, mut run: LdapRun) -> LdapRun {
        let result = match self.store.get_ldap_source(run.source_id).await {
            Ok(Some(source)) => self.carry_out_for(&source, &mut run).await,
            Ok(None) => Err(Error::not_found("LDAP source", run.source_id)),
            Err(e) => Err(e),
        };
        run.finished_at = Some(now());
        match result {
            Ok(()) => run.status = LdapRunStatus::Done,
            Err(e) => {
                run.status = LdapRunStatus::Failed;
                run.error = Some(e.to_string());
            }
        }
        run
    }

    async fn carry_out_for(&self, source: &LdapSource, run: &mut LdapRun) -> Result<()> {
        let ciphertext = self.store.ldap_source_password(source.id).await?;
        let password = self.key.decrypt(&ciphertext, &password_context(source.id))?;
        // An incremental sync reads the entries changed since the last sync's latest marker;
        // without one (no sync yet), it reads everything.
        let since = match (run.mode, source.settings.change_marker) {
            (SyncMode::Incremental, Some(marker)) => {
                self.store.ldap_watermark(source.id).await?.map(|since| (marker, since))
            }
            _ => None,
        };
        let mut connection = Connection::open(&source.settings, &password).await?;
        let read = match &since {
            Some((marker, since)) => connection.read_changes(&source.settings, *marker, since).await,
            None => connection.read_source(&source.settings).await,
        };
        connection.close().await;
        let read = read?;
        run.counts.users_read = read.users.len() as u64;
        run.counts.groups_read = read.groups.len() as u64;
        if run.kind == LdapRunKind::Test {
            return Ok(());
        }
        tracing::debug!(users = read.users.len(), groups = read.groups.len(), "LDAP sync: read");
        let (current, stale) = self.current(source, &read).await?;
        tracing::debug!("LDAP sync: current state loaded");
        let definitions = self.directory.attribute_definitions().await?;
        let plan = plan_sync(&source.settings, &definitions, &read, &current, now());
        let applier = Applier {
            service: self.clone(),
            source: Arc::new(source.clone()),
            run_id: run.id,
            dry_run: run.dry_run,
            actor: Actor::Ldap {
                source: source.name.clone(),
            },
        };
        let counts = applier.apply(plan, &current, stale).await?;
        if !run.dry_run
            && let Some(marker) = source.settings.change_marker
        {
            let previous = since.as_ref().map(|(_, since)| since.as_str());
            let latest = marker.latest(read.users.iter().chain(&read.groups), previous);
            if latest.as_deref() != previous {
                self.store.set_ldap_watermark(source.id, latest.as_deref()).await?;
            }
        }
        run.counts = LdapRunCounts {
            users_read: run.counts.users_read,
            groups_read: run.counts.groups_read,
            ..counts
        };
        Ok(())
    }

    /// What the hub holds for `source`, and the links whose user or group is gone from the hub
    /// (deleted by hand): those are dropped, and their entries are new again.
    async fn current(&self, source: &LdapSource, read: &SourceRead) -> Result<(Current, Vec<(LinkKind, String)>)> {
        let links = self.store.ldap_links(source.id).await?;
        let mut current = Current::default();
        let mut stale = Vec::new();
        let user_ids: Vec<Uuid> = links
            .iter()
            .filter(|l| l.kind == LinkKind::User)
            .map(|l| l.hub_id)
            .collect();
        let users: HashMap<Uuid, User> = self
            .store
            .users_by_ids(&user_ids)
            .await?
            .into_iter()
            .map(|user| (user.id, user))
            .collect();
        let group_ids: Vec<Uuid> = links
            .iter()
            .filter(|l| l.kind == LinkKind::Group)
            .map(|l| l.hub_id)
            .collect();
        let mut members: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for chunk in group_ids.chunks(500) {
            for (group, user) in self.store.member_ids(chunk).await? {
                members.entry(group).or_default().push(user);
            }
        }
        for link in links {
            match link.kind {
                LinkKind::User => match users.get(&link.hub_id) {
                    Some(user) => {
                        current.users.insert(
                            link.ldap_id,
                            LinkedUser {
                                user: user.clone(),
                                dn: link.dn,
                                gone_since: link.gone_since,
                            },
                        );
                    }
                    None => stale.push((LinkKind::User, link.ldap_id)),
                },
                LinkKind::Group => match self.store.get_group(link.hub_id).await? {
                    Some(group) => {
                        current.groups.insert(
                            link.ldap_id,
                            LinkedGroup {
                                id: group.id,
                                name: group.name,
                                dn: link.dn,
                                members: members.remove(&group.id).unwrap_or_default(),
                            },
                        );
                    }
                    None => stale.push((LinkKind::Group, link.ldap_id)),
                },
            }
        }
        // Hub users and groups with the names of entries the source does not own yet.
        let names: Vec<String> = read
            .users
            .iter()
            .filter(|entry| !current.users.contains_key(&entry.id))
            .filter_map(|entry| entry.first(&source.settings.username_attribute))
            .map(|name| name.trim().to_lowercase())
            .collect();
        let holders = self.store.users_by_usernames(&names).await?;
        let ids: Vec<Uuid> = holders.iter().map(|user| user.id).collect();
        let owned = self.store.ldap_owned(LinkKind::User, &ids).await?;
        for user in holders {
            let taken = owned.contains(&user.id);
            current.users_by_name.insert(user.username_key(), (user, taken));
        }
        let mut group_holders = Vec::new();
        for entry in read
            .groups
            .iter()
            .filter(|entry| !current.groups.contains_key(&entry.id))
        {
            if let Some(name) = entry.first(&source.settings.group_name_attribute)
                && let Some(group) = self.store.get_group_by_name(name.trim()).await?
            {
                group_holders.push(group);
            }
        }
        let ids: Vec<Uuid> = group_holders.iter().map(|group| group.id).collect();
        let owned = self.store.ldap_owned(LinkKind::Group, &ids).await?;
        for group in group_holders {
            current.groups_by_name.insert(
                group.name.to_lowercase(),
                Holder {
                    id: group.id,
                    owned_by_a_source: owned.contains(&group.id),
                },
            );
        }
        Ok((current, stale))
    }
}

/// Applies (or, in a dry run, records) a plan.
struct Applier<S> {
    service: LdapService<S>,
    source: Arc<LdapSource>,
    run_id: Uuid,
    dry_run: bool,
    actor: Actor,
}

impl<S> Clone for Applier<S>
where
    S: Clone,
{
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            source: self.source.clone(),
            run_id: self.run_id,
            dry_run: self.dry_run,
            actor: self.actor.clone(),
        }
    }
}

impl<S> Applier<S>
where
    S: LdapStore + AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + ReportStore + Clone + 'static,
{
    async fn apply(&self, plan: SyncPlan, current: &Current, stale: Vec<(LinkKind, String)>) -> Result<LdapRunCounts> {
        let SyncPlan {
            users,
            groups,
            memberships,
        } = plan;
        let mut counts = LdapRunCounts::default();
        let mut links = Vec::new();
        let mut unlinks = stale;
        let mut reports = Vec::new();
        // Entry -> user id, for memberships: owned users, then those created or adopted now.
        let mut user_of: HashMap<String, Uuid> = current
            .users
            .iter()
            .map(|(id, linked)| (id.clone(), linked.user.id))
            .collect();
        let mut group_of: HashMap<String, Uuid> = current
            .groups
            .iter()
            .map(|(id, linked)| (id.clone(), linked.id))
            .collect();
        for step in &users {
            count_user(&mut counts, step);
        }
        let phase = std::time::Instant::now();
        let done = self
            .run_all(users, |applier, step| async move { applier.user_step(step).await })
            .await;
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "LDAP sync: users applied");
        for outcome in done {
            collect(
                outcome,
                &mut counts,
                &mut links,
                &mut unlinks,
                &mut reports,
                &mut user_of,
            );
        }
        for step in &groups {
            count_group(&mut counts, step);
        }
        let phase = std::time::Instant::now();
        let done = self
            .run_all(groups, |applier, step| async move { applier.group_step(step).await })
            .await;
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "LDAP sync: groups applied");
        for outcome in done {
            collect(
                outcome,
                &mut counts,
                &mut links,
                &mut unlinks,
                &mut reports,
                &mut group_of,
            );
        }
        let user_of = Arc::new(user_of);
        let group_of = Arc::new(group_of);
        for step in &memberships {
            counts.members_added += step.add.len() as u64;
            counts.members_removed += step.remove.len() as u64;
        }
        let phase = std::time::Instant::now();
        let done = self
            .run_all(memberships, move |applier, step| {
                let user_of = user_of.clone();
                let group_of = group_of.clone();
                async move { applier.membership_step(step, &user_of, &group_of).await }
            })
            .await;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "LDAP sync: memberships applied"
        );
        let mut none = HashMap::new();
        for outcome in done {
            collect(outcome, &mut counts, &mut links, &mut unlinks, &mut reports, &mut none);
        }
        let phase = std::time::Instant::now();
        if !self.dry_run {
            self.service
                .store
                .save_ldap_links(self.source.id, &links, &unlinks)
                .await?;
        }
        for chunk in reports.chunks(1000) {
            self.service.store.insert_reports(chunk).await?;
        }
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "LDAP sync: links and reports stored"
        );
        Ok(counts)
    }

    /// Runs `apply` on every step, [`CONCURRENT_CHANGES`] at a time, in no particular order.
    async fn run_all<T, F, Fut>(&self, steps: Vec<T>, apply: F) -> Vec<Done>
    where
        T: Send + 'static,
        F: Fn(Self, T) -> Fut,
        Fut: Future<Output = Done> + Send + 'static,
    {
        let mut running = JoinSet::new();
        let mut done = Vec::with_capacity(steps.len());
        for step in steps {
            if running.len() >= CONCURRENT_CHANGES
                && let Some(Ok(outcome)) = running.join_next().await
            {
                done.push(outcome);
            }
            running.spawn(apply(self.clone(), step));
        }
        while let Some(outcome) = running.join_next().await {
            if let Ok(outcome) = outcome {
                done.push(outcome);
            }
        }
        done
    }

    fn report(&self, kind: SubjectKind, subject: String, name: Option<String>, operation: Operation) -> Report {
        Report {
            id: Uuid::now_v7(),
            started_at: now(),
            duration_ms: 0,
            app_id: self.source.id,
            app_name: self.source.name.clone(),
            subject_kind: kind,
            subject_id: subject,
            username: name,
            email: None,
            target_id: None,
            operation,
            outcome: if self.dry_run {
                Outcome::DryRun
            } else {
                Outcome::Success
            },
            attempt: 1,
            http_method: None,
            http_path: None,
            http_status: None,
            diff: None,
            message: None,
            request_body: None,
            response_body: None,
            correlation_id: self.run_id.to_string(),
            cause: format!("ldap:{}", self.run_id),
        }
    }

    fn link(
        &self,
        kind: LinkKind,
        ldap_id: &str,
        hub_id: Uuid,
        dn: &str,
        gone_since: Option<OffsetDateTime>,
    ) -> LdapLink {
        LdapLink {
            kind,
            ldap_id: ldap_id.to_owned(),
            hub_id,
            dn: dn.to_owned(),
            gone_since,
        }
    }

    async fn user_step(self, step: UserStep) -> Done {
        let started = std::time::Instant::now();
        let directory = &self.service.directory;
        let mut done = match &step {
            UserStep::Create { ldap_id, dn, user } => {
                let mut report = self.report(
                    SubjectKind::User,
                    String::new(),
                    Some(user.username.clone()),
                    Operation::Create,
                );
                report.email = user.email.clone();
                report.message = Some(format!("created from {dn}"));
                let result = if self.dry_run {
                    Ok(None)
                } else {
                    directory
                        .create_user((**user).clone(), UserSource::Ldap, &self.actor)
                        .await
                        .map(|created| Some(created.id))
                };
                self.finish(report, result, |id| {
                    (
                        Some(self.link(LinkKind::User, ldap_id, id, dn, None)),
                        Some((ldap_id.clone(), id)),
                    )
                })
            }
            UserStep::Adopt {
                ldap_id,
                dn,
                user_id,
                update,
            } => {
                let mut report = self.report(SubjectKind::User, user_id.to_string(), None, Operation::Adopt);
                report.message = Some(format!("taken over by the source as {dn}"));
                let result = match (&update, self.dry_run) {
                    (_, true) => Ok(Some(*user_id)),
                    (Some(update), false) => directory
                        .update_user(&user_id.to_string(), (**update).clone(), &self.actor)
                        .await
                        .map(|user| Some(user.id)),
                    (None, false) => Ok(Some(*user_id)),
                };
                self.finish(report, result, |id| {
                    (
                        Some(self.link(LinkKind::User, ldap_id, id, dn, None)),
                        Some((ldap_id.clone(), id)),
                    )
                })
            }
            UserStep::Update {
                ldap_id,
                dn,
                user_id,
                username,
                update,
                changed,
                moved,
                returned,
            } => {
                let operation = if update.as_ref().and_then(|u| u.active) == Some(true) && *returned {
                    Operation::Reactivate
                } else {
                    Operation::Update
                };
                let mut report = self.report(
                    SubjectKind::User,
                    user_id.to_string(),
                    Some(username.clone()),
                    operation,
                );
                let mut what = Vec::new();
                if !changed.is_empty() {
                    what.push(format!("changed: {}", changed.join(", ")));
                }
                if *moved {
                    what.push(format!("moved to {dn}"));
                }
                if *returned {
                    what.push("back in the source".to_owned());
                }
                report.message = Some(what.join("; "));
                let result = match (update, self.dry_run) {
                    (Some(update), false) => directory
                        .update_user(&user_id.to_string(), (**update).clone(), &self.actor)
                        .await
                        .map(|user| Some(user.id)),
                    _ => Ok(Some(*user_id)),
                };
                self.finish(report, result, |id| {
                    (Some(self.link(LinkKind::User, ldap_id, id, dn, None)), None)
                })
            }
            UserStep::Deactivate {
                ldap_id,
                dn,
                gone_since,
                user_id,
                username,
                active,
            } => {
                let mut report = self.report(
                    SubjectKind::User,
                    user_id.to_string(),
                    Some(username.clone()),
                    Operation::Deactivate,
                );
                report.message = Some("gone from the source (or outside its filter)".into());
                let result = if *active && !self.dry_run {
                    directory
                        .set_active(&user_id.to_string(), false, &self.actor)
                        .await
                        .map(|user| Some(user.id))
                } else {
                    Ok(Some(*user_id))
                };
                let since = gone_since.unwrap_or_else(now);
                self.finish(report, result, |id| {
                    (Some(self.link(LinkKind::User, ldap_id, id, dn, Some(since))), None)
                })
            }
            UserStep::Delete {
                ldap_id,
                user_id,
                username,
            } => {
                let mut report = self.report(
                    SubjectKind::User,
                    user_id.to_string(),
                    Some(username.clone()),
                    Operation::Delete,
                );
                report.message = Some("gone from the source for longer than its grace period".into());
                let result = if self.dry_run {
                    Ok(None)
                } else {
                    directory
                        .delete_user(&user_id.to_string(), &self.actor)
                        .await
                        .map(|_| None)
                };
                let mut done = self.finish(report, result, |_| (None, None));
                if !done.failed {
                    done.unlink = Some((LinkKind::User, ldap_id.clone()));
                }
                done
            }
            UserStep::Refuse { ldap_id, dn, reason } => {
                let mut report = self.report(SubjectKind::User, String::new(), None, Operation::Skip);
                report.outcome = Outcome::Failure;
                report.message = Some(format!("{dn} ({ldap_id}) was not synced: {reason}"));
                Done {
                    report,
                    link: None,
                    unlink: None,
                    owned: None,
                    failed: true,
                }
            }
        };
        done.report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        done
    }

    async fn group_step(self, step: GroupStep) -> Done {
        let directory = &self.service.directory;
        match &step {
            GroupStep::Create { ldap_id, dn, name } => {
                let mut report = self.report(
                    SubjectKind::Group,
                    String::new(),
                    Some(name.clone()),
                    Operation::GroupCreate,
                );
                report.message = Some(format!("created from {dn}"));
                let result = if self.dry_run {
                    Ok(None)
                } else {
                    directory
                        .create_group(
                            NewGroup {
                                name: name.clone(),
                                external_id: None,
                            },
                            UserSource::Ldap,
                            &self.actor,
                        )
                        .await
                        .map(|group| Some(group.id))
                };
                self.finish(report, result, |id| {
                    (
                        Some(self.link(LinkKind::Group, ldap_id, id, dn, None)),
                        Some((ldap_id.clone(), id)),
                    )
                })
            }
            GroupStep::Adopt { ldap_id, dn, group_id } => {
                let mut report = self.report(SubjectKind::Group, group_id.to_string(), None, Operation::Adopt);
                report.message = Some(format!("taken over by the source as {dn}"));
                self.finish(report, Ok(Some(*group_id)), |id| {
                    (
                        Some(self.link(LinkKind::Group, ldap_id, id, dn, None)),
                        Some((ldap_id.clone(), id)),
                    )
                })
            }
            GroupStep::Update {
                ldap_id,
                dn,
                group_id,
                rename,
            } => {
                let mut report = self.report(
                    SubjectKind::Group,
                    group_id.to_string(),
                    rename.clone(),
                    Operation::GroupUpdate,
                );
                report.message = Some(match rename {
                    Some(name) => format!("renamed to {name} ({dn})"),
                    None => format!("moved to {dn}"),
                });
                let result = match (rename, self.dry_run) {
                    (Some(name), false) => directory
                        .rename_group(&group_id.to_string(), name, &self.actor)
                        .await
                        .map(|group| Some(group.id)),
                    _ => Ok(Some(*group_id)),
                };
                self.finish(report, result, |id| {
                    (Some(self.link(LinkKind::Group, ldap_id, id, dn, None)), None)
                })
            }
            GroupStep::Delete {
                ldap_id,
                group_id,
                name,
            } => {
                let mut report = self.report(
                    SubjectKind::Group,
                    group_id.to_string(),
                    Some(name.clone()),
                    Operation::GroupDelete,
                );
                report.message = Some("gone from the source".into());
                let result = if self.dry_run {
                    Ok(None)
                } else {
                    directory
                        .delete_group(&group_id.to_string(), &self.actor)
                        .await
                        .map(|_| None)
                };
                let mut done = self.finish(report, result, |_| (None, None));
                if !done.failed {
                    done.unlink = Some((LinkKind::Group, ldap_id.clone()));
                }
                done
            }
            GroupStep::Refuse { ldap_id, dn, reason } => {
                let mut report = self.report(SubjectKind::Group, String::new(), None, Operation::Skip);
                report.outcome = Outcome::Failure;
                report.message = Some(format!("{dn} ({ldap_id}) was not synced: {reason}"));
                Done {
                    report,
                    link: None,
                    unlink: None,
                    owned: None,
                    failed: true,
                }
            }
        }
    }

    async fn membership_step(
        self,
        step: MembershipStep,
        user_of: &HashMap<String, Uuid>,
        group_of: &HashMap<String, Uuid>,
    ) -> Done {
        let ids =
            |entries: &[String]| -> Vec<Uuid> { entries.iter().filter_map(|e| user_of.get(e).copied()).collect() };
        let (add, remove) = (ids(&step.add), ids(&step.remove));
        let operation = if add.is_empty() {
            Operation::MembershipRemove
        } else {
            Operation::MembershipAdd
        };
        let group = group_of.get(&step.group).copied();
        let mut report = self.report(
            SubjectKind::Group,
            group.map(|g| g.to_string()).unwrap_or_default(),
            None,
            operation,
        );
        report.message = Some(format!(
            "{} member(s) added, {} removed",
            step.add.len(),
            step.remove.len()
        ));
        let result = match (group, self.dry_run) {
            (_, true) => Ok(None),
            (None, false) => Err(Error::not_found("group of entry", &step.group)),
            (Some(group), false) => {
                let mut ops = Vec::new();
                if !add.is_empty() {
                    ops.push(MemberOp::Add(add));
                }
                if !remove.is_empty() {
                    ops.push(MemberOp::Remove(remove));
                }
                self.service
                    .directory
                    .change_members(group, None, &ops, &self.actor)
                    .await
                    .map(|group| {
                        report.username = Some(group.name);
                        None
                    })
            }
        };
        self.finish(report, result, |_| (None, None))
    }

    /// A step's outcome: its report (a failure says why), and its link when it succeeded.
    fn finish(
        &self,
        mut report: Report,
        result: Result<Option<Uuid>>,
        links: impl FnOnce(Uuid) -> (Option<LdapLink>, Option<(String, Uuid)>),
    ) -> Done {
        match result {
            Ok(id) => {
                let (link, owned) = match id {
                    Some(id) if !self.dry_run => {
                        if report.subject_id.is_empty() {
                            report.subject_id = id.to_string();
                        }
                        links(id)
                    }
                    _ => (None, None),
                };
                Done {
                    report,
                    link,
                    unlink: None,
                    owned,
                    failed: false,
                }
            }
            Err(e) => {
                report.outcome = Outcome::Failure;
                report.message = Some(match report.message.take() {
                    Some(what) => format!("{what}: refused: {e}"),
                    None => format!("refused: {e}"),
                });
                Done {
                    report,
                    link: None,
                    unlink: None,
                    owned: None,
                    failed: true,
                }
            }
        }
    }
}

fn count_user(counts: &mut LdapRunCounts, step: &UserStep) {
    match step {
        UserStep::Create { .. } => counts.users_created += 1,
        UserStep::Adopt { .. } => counts.users_adopted += 1,
        UserStep::Update { .. } => counts.users_updated += 1,
        UserStep::Deactivate { .. } => counts.users_deactivated += 1,
        UserStep::Delete { .. } => counts.users_deleted += 1,
        UserStep::Refuse { .. } => counts.refused += 1,
    }
}

fn count_group(counts: &mut LdapRunCounts, step: &GroupStep) {
    match step {
        GroupStep::Create { .. } | GroupStep::Adopt { .. } => counts.groups_created += 1,
        GroupStep::Update { .. } => counts.groups_updated += 1,
        GroupStep::Delete { .. } => counts.groups_deleted += 1,
        GroupStep::Refuse { .. } => counts.refused += 1,
    }
}

/// Adds a step's outcome to the run's totals.
fn collect(
    done: Done,
    counts: &mut LdapRunCounts,
    links: &mut Vec<LdapLink>,
    unlinks: &mut Vec<(LinkKind, String)>,
    reports: &mut Vec<Report>,
    owned: &mut HashMap<String, Uuid>,
) {
    // Refusals are counted by the plan; a failure to apply is counted here.
    if done.failed && done.report.operation != Operation::Skip {
        counts.failed += 1;
    }
    links.extend(done.link);
    unlinks.extend(done.unlink);
    if let Some((ldap_id, id)) = done.owned {
        owned.insert(ldap_id, id);
    }
    reports.push(done.report);
}
