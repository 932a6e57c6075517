//! Applying a sync's plan (or, in a dry run, recording it): the steps run through the directory
//! service as the source (`ldap:NAME`), 128 at a time so that they share the directory's group
//! commit; each leaves one report record, and the links of the entries it created, adopted or
//! moved. The steps themselves are in `steps.rs`.

use super::{LdapService, SourceStores};
use crate::domain::admin::Actor;
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::ldap::plan::{Current, GroupStep, SyncPlan, UserStep};
use crate::domain::ldap::run::LdapRunCounts;
use crate::domain::ldap::{LdapLink, LdapSource, LinkKind};
use crate::domain::{Result, now};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Changes applied at once: concurrent writers share the directory's group commit.
const CONCURRENT_CHANGES: usize = 128;

/// New users are stored this many to a write, sharing its statements (a first sync creates
/// thousands).
const CREATES_PER_WRITE: usize = 250;

/// Writes of new users in flight at once: one is written while the next is prepared.
const CONCURRENT_CREATE_WRITES: usize = 2;

/// The outcome of one applied (or planned) change.
pub(super) struct Done {
    pub(super) report: Report,
    pub(super) link: Option<LdapLink>,
    pub(super) unlink: Option<(LinkKind, String)>,
    /// The entry's user or group id once it exists (creates and adoptions).
    pub(super) owned: Option<(String, Uuid)>,
    pub(super) failed: bool,
}

impl Done {
    /// After a deletion that worked, the entry's link goes too.
    pub(super) fn unlinking(mut self, kind: LinkKind, ldap_id: &str) -> Self {
        if !self.failed {
            self.unlink = Some((kind, ldap_id.to_owned()));
        }
        self
    }
}

/// Applies (or, in a dry run, records) a plan.
#[derive(Clone)]
pub(super) struct Applier<S> {
    pub(super) service: LdapService<S>,
    pub(super) source: Arc<LdapSource>,
    pub(super) run_id: Uuid,
    pub(super) dry_run: bool,
    pub(super) actor: Actor,
}

impl<S> Applier<S>
where
    S: SourceStores,
{
    pub(super) async fn apply(
        &self,
        plan: SyncPlan,
        current: &Current,
        stale: Vec<(LinkKind, String)>,
    ) -> Result<LdapRunCounts> {
        let SyncPlan {
            users,
            groups,
            memberships,
        } = plan;
        let mut totals = Totals {
            unlinks: stale,
            ..Totals::default()
        };
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
            count_user(&mut totals.counts, step);
        }
        let phase = std::time::Instant::now();
        let (creates, users): (Vec<UserStep>, Vec<UserStep>) = users
            .into_iter()
            .partition(|step| matches!(step, UserStep::Create { .. }));
        let mut chunks = Vec::new();
        let mut creates = creates.into_iter().peekable();
        while creates.peek().is_some() {
            chunks.push(creates.by_ref().take(CREATES_PER_WRITE).collect::<Vec<_>>());
        }
        let mut done: Vec<Done> = self
            .run_all(chunks, CONCURRENT_CREATE_WRITES, |applier, chunk| async move {
                applier.create_users(chunk).await
            })
            .await
            .into_iter()
            .flatten()
            .collect();
        done.extend(
            self.run_all(users, CONCURRENT_CHANGES, |applier, step| async move {
                applier.user_step(step).await
            })
            .await
            .into_iter()
            .flatten(),
        );
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "LDAP sync: users applied");
        totals.take(done, &mut user_of);
        for step in &groups {
            count_group(&mut totals.counts, step);
        }
        let phase = std::time::Instant::now();
        let done = self
            .run_all(groups, CONCURRENT_CHANGES, |applier, step| async move {
                applier.group_step(step).await
            })
            .await;
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "LDAP sync: groups applied");
        totals.take(done, &mut group_of);
        let user_of = Arc::new(user_of);
        let group_of = Arc::new(group_of);
        for step in &memberships {
            totals.counts.members_added += step.add.len() as u64;
            totals.counts.members_removed += step.remove.len() as u64;
        }
        let phase = std::time::Instant::now();
        let done = self
            .run_all(memberships, CONCURRENT_CHANGES, move |applier, step| {
                let user_of = user_of.clone();
                let group_of = group_of.clone();
                async move { applier.membership_step(step, &user_of, &group_of).await }
            })
            .await;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "LDAP sync: memberships applied"
        );
        totals.take(done, &mut HashMap::new());
        let phase = std::time::Instant::now();
        if !self.dry_run {
            self.service
                .store
                .save_ldap_links(self.source.id, &totals.links, &totals.unlinks)
                .await?;
        }
        for chunk in totals.reports.chunks(1000) {
            self.service.store.insert_reports(chunk).await?;
        }
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "LDAP sync: links and reports stored"
        );
        Ok(totals.counts)
    }

    /// Runs `apply` on every step, at most `limit` at a time, in no particular order.
    async fn run_all<T, O, F, Fut>(&self, steps: Vec<T>, limit: usize, apply: F) -> Vec<O>
    where
        T: Send + 'static,
        O: Send + 'static,
        F: Fn(Self, T) -> Fut,
        Fut: Future<Output = O> + Send + 'static,
    {
        let mut running = JoinSet::new();
        let mut done = Vec::with_capacity(steps.len());
        for step in steps {
            if running.len() >= limit
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

    pub(super) fn report(
        &self,
        kind: SubjectKind,
        subject: String,
        name: Option<String>,
        operation: Operation,
    ) -> Report {
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

    pub(super) fn link(
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

    /// A step's outcome: its report (a failure says why), and its link when it succeeded.
    pub(super) fn finish(
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

/// What a run's steps left: counts, links to write and to remove, report records.
#[derive(Default)]
struct Totals {
    counts: LdapRunCounts,
    links: Vec<LdapLink>,
    unlinks: Vec<(LinkKind, String)>,
    reports: Vec<Report>,
}

impl Totals {
    /// Adds the steps' outcomes; the entries they made users or groups of go to `owned`.
    fn take(&mut self, done: Vec<Done>, owned: &mut HashMap<String, Uuid>) {
        for done in done {
            // Refusals are counted by the plan; a failure to apply is counted here.
            if done.failed && done.report.operation != Operation::Skip {
                self.counts.failed += 1;
            }
            self.links.extend(done.link);
            self.unlinks.extend(done.unlink);
            if let Some((ldap_id, id)) = done.owned {
                owned.insert(ldap_id, id);
            }
            self.reports.push(done.report);
        }
    }
}
