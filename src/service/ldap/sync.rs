//! Carrying a run of an LDAP source out: read the server (everything first, so that a failure
//! changes nothing), load what the hub holds for the source, plan with `plan_sync`, and hand the
//! plan to the applier (`apply.rs`).

use super::apply::Applier;
use super::{LdapService, SourceStores, password_context};
use crate::domain::admin::Actor;
use crate::domain::ldap::plan::{Current, Holder, LinkedGroup, LinkedUser, SourceRead, plan_sync};
use crate::domain::ldap::run::{LdapRun, LdapRunCounts, LdapRunKind, LdapRunStatus, SyncMode};
use crate::domain::ldap::{LdapSource, LinkKind};
use crate::domain::user::User;
use crate::domain::{Error, Result, now};
use crate::sources::ldap::Connection;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Ids per batch read of users or memberships.
const LOOKUP_CHUNK: usize = 500;

impl<S> LdapService<S>
where
    S: SourceStores,
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
        // The directory's own batch read, a bounded number of ids at a time.
        let mut users: HashMap<Uuid, User> = HashMap::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(LOOKUP_CHUNK) {
            users.extend(
                self.store
                    .get_users(chunk)
                    .await?
                    .into_iter()
                    .map(|user| (user.id, user)),
            );
        }
        let group_ids: Vec<Uuid> = links
            .iter()
            .filter(|l| l.kind == LinkKind::Group)
            .map(|l| l.hub_id)
            .collect();
        let mut members: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for chunk in group_ids.chunks(LOOKUP_CHUNK) {
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
