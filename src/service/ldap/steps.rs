//! The steps of a sync's plan, one at a time: each user, group and membership change through the
//! directory service, and what it leaves (report record, link, the entry's new user or group).

use super::SourceStores;
use super::apply::{Applier, Done};
use crate::domain::group::NewGroup;
use crate::domain::job::{Operation, Outcome, Report, SubjectKind};
use crate::domain::ldap::LinkKind;
use crate::domain::ldap::plan::{GroupStep, MembershipStep, UserStep};
use crate::domain::scim::members::MemberOp;
use crate::domain::user::{NewUser, UserSource};
use crate::domain::{Error, now};
use std::collections::HashMap;
use uuid::Uuid;

impl<S> Applier<S>
where
    S: SourceStores,
{
    /// Creates the users of `steps` in one shared write; a step that is not a create is left out.
    pub(super) async fn create_users(self, steps: Vec<UserStep>) -> Vec<Done> {
        let started = std::time::Instant::now();
        let mut entries = Vec::with_capacity(steps.len());
        let mut inputs = Vec::with_capacity(steps.len());
        for step in steps {
            if let UserStep::Create { ldap_id, dn, user } = step {
                let report = self.create_report(&dn, &user);
                entries.push((ldap_id, dn, report));
                inputs.push(*user);
            }
        }
        let results: Vec<Result<Option<Uuid>, Error>> = if self.dry_run {
            inputs.iter().map(|_| Ok(None)).collect()
        } else {
            self.service
                .directory
                .create_users(inputs, UserSource::Ldap, &self.actor)
                .await
                .into_iter()
                .map(|created| created.map(|user| Some(user.id)))
                .collect()
        };
        let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        entries
            .into_iter()
            .zip(results)
            .map(|((ldap_id, dn, report), result)| {
                let mut done = self.created(&ldap_id, &dn, report, result);
                done.report.duration_ms = took;
                done
            })
            .collect()
    }

    /// The report record of a user created from the entry at `dn`.
    fn create_report(&self, dn: &str, user: &NewUser) -> Report {
        let mut report = self.report(
            SubjectKind::User,
            String::new(),
            Some(user.username.clone()),
            Operation::Create,
        );
        report.email = user.email.clone();
        report.message = Some(format!("created from {dn}"));
        report
    }

    /// A create's outcome: the new user is linked to its entry and owned by the source.
    fn created(&self, ldap_id: &str, dn: &str, report: Report, result: Result<Option<Uuid>, Error>) -> Done {
        self.finish(report, result, |id| {
            (
                Some(self.link(LinkKind::User, ldap_id, id, dn, None)),
                Some((ldap_id.to_owned(), id)),
            )
        })
    }

    /// Carries out one user step. A create goes through [`Applier::create_users`] as a batch of
    /// one (the sync sends its creates there in batches), so a step leaves a list of outcomes.
    pub(super) async fn user_step(self, step: UserStep) -> Vec<Done> {
        let started = std::time::Instant::now();
        let directory = &self.service.directory;
        let mut done = match &step {
            UserStep::Create { .. } => return self.create_users(vec![step.clone()]).await,
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
                self.finish(report, result, |_| (None, None))
                    .unlinking(LinkKind::User, ldap_id)
            }
            UserStep::Refuse { ldap_id, dn, reason } => self.refused(SubjectKind::User, ldap_id, dn, reason),
        };
        done.report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        vec![done]
    }

    pub(super) async fn group_step(self, step: GroupStep) -> Done {
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
                self.finish(report, result, |_| (None, None))
                    .unlinking(LinkKind::Group, ldap_id)
            }
            GroupStep::Refuse { ldap_id, dn, reason } => self.refused(SubjectKind::Group, ldap_id, dn, reason),
        }
    }

    pub(super) async fn membership_step(
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

    /// An entry the plan refused: a failure record saying why, nothing changed.
    fn refused(&self, kind: SubjectKind, ldap_id: &str, dn: &str, reason: &str) -> Done {
        let mut report = self.report(kind, String::new(), None, Operation::Skip);
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
