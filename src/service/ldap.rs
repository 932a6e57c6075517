//! `LdapService`: LDAP and Active Directory sources (create, change, delete, with the bind
//! password encrypted at rest), queueing their syncs and connection tests, and carrying a run out
//! for the source runner (`sync.rs`). A request only queues: the server is read by the runner.

mod apply;
mod steps;
mod sync;

use super::directory::DirectoryService;
use crate::domain::job::Report;
use crate::domain::ldap::run::{LdapRun, LdapRunKind, SyncMode};
use crate::domain::ldap::{
    LdapSettings, LdapSource, LdapSourceUpdate, LinkKind, NewLdapSource, merge_settings, validate_source_name,
};
use crate::domain::user::UserUpdate;
use crate::domain::{Error, Result, now};
use crate::secrets::SecretKey;
use crate::sources::ldap::{check_ca_certificate, check_filter};
use crate::store::{
    AttributeStore, ChangeLogStore, GroupStore, LdapRunStore, LdapStore, ReportStore, ScimStore, UserStore,
};
use uuid::Uuid;

/// The stores an LDAP source's service works with: its own, the directory's, and the reports'.
pub trait SourceStores:
    LdapStore
    + LdapRunStore
    + AttributeStore
    + UserStore
    + GroupStore
    + ChangeLogStore
    + ScimStore
    + ReportStore
    + Clone
    + 'static
{
}

impl<S> SourceStores for S where
    S: LdapStore
        + LdapRunStore
        + AttributeStore
        + UserStore
        + GroupStore
        + ChangeLogStore
        + ScimStore
        + ReportStore
        + Clone
        + 'static
{
}

/// LDAP sources over any store with the directory, source and report traits.
#[derive(Debug, Clone)]
pub struct LdapService<S> {
    store: S,
    directory: DirectoryService<S>,
    key: SecretKey,
}

impl<S> LdapService<S>
where
    S: SourceStores,
{
    /// Wraps a store; `key` encrypts bind passwords; `directory` applies the syncs' changes (its
    /// turns and caches shared with the other services).
    pub fn new(store: S, key: SecretKey, directory: DirectoryService<S>) -> Self {
        Self { store, directory, key }
    }

    /// Creates a source. The settings are checked (URL, required DNs and attributes, filters,
    /// CA certificate, profile keys against the custom attributes) before anything is stored.
    pub async fn create_source(&self, input: NewLdapSource) -> Result<LdapSource> {
        validate_source_name(&input.name)?;
        if input.bind_password.is_empty() {
            return Err(Error::invalid("bind_password", "is required"));
        }
        let base = match input.preset {
            Some(preset) => serde_json::to_value(preset.settings()).map_err(|e| Error::Internal(e.to_string()))?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let settings = merge_settings(base, &input.settings)?;
        self.check(&settings).await?;
        let at = now();
        let source = LdapSource {
            id: Uuid::now_v7(),
            name: input.name,
            settings,
            created_at: at,
            updated_at: at,
        };
        let ciphertext = self.key.encrypt(&input.bind_password, &password_context(source.id))?;
        self.store.insert_ldap_source(&source, &ciphertext).await?;
        Ok(source)
    }

    /// Changes a source's name, password or settings (only those given).
    pub async fn update_source(&self, reference: &str, update: LdapSourceUpdate) -> Result<LdapSource> {
        let mut source = self.get_source(reference).await?;
        if let Some(name) = update.name {
            validate_source_name(&name)?;
            source.name = name;
        }
        if !update.settings.is_empty() {
            let base = serde_json::to_value(&source.settings).map_err(|e| Error::Internal(e.to_string()))?;
            source.settings = merge_settings(base, &update.settings)?;
        }
        self.check(&source.settings).await?;
        let ciphertext = match update.bind_password {
            Some(password) if password.is_empty() => return Err(Error::invalid("bind_password", "is empty")),
            Some(password) => Some(self.key.encrypt(&password, &password_context(source.id))?),
            None => None,
        };
        source.updated_at = now();
        self.store.update_ldap_source(&source, ciphertext.as_deref()).await?;
        Ok(source)
    }

    async fn check(&self, settings: &LdapSettings) -> Result<()> {
        let custom: Vec<String> = self
            .directory
            .attribute_definitions()
            .await?
            .iter()
            .map(|def| def.name.clone())
            .collect();
        settings.validate(&custom)?;
        check_filter("user_filter", &settings.user_filter)?;
        check_filter("group_filter", &settings.group_filter)?;
        if let Some(pem) = &settings.ca_certificate {
            check_ca_certificate(pem)?;
        }
        Ok(())
    }

    /// A source by id or name.
    pub async fn get_source(&self, reference: &str) -> Result<LdapSource> {
        if let Ok(id) = Uuid::parse_str(reference)
            && let Some(source) = self.store.get_ldap_source(id).await?
        {
            return Ok(source);
        }
        self.store
            .get_ldap_source_by_name(reference)
            .await?
            .ok_or_else(|| Error::not_found("LDAP source", reference))
    }

    /// Every source.
    pub async fn list_sources(&self) -> Result<Vec<LdapSource>> {
        self.store.list_ldap_sources().await
    }

    /// Deletes a source; its users and groups stay in the directory, owned by nobody.
    pub async fn delete_source(&self, reference: &str) -> Result<LdapSource> {
        let source = self.get_source(reference).await?;
        self.store.delete_ldap_source(source.id).await?;
        Ok(source)
    }

    /// Queues a sync (a waiting one of the same kind is returned instead). An incremental sync
    /// needs the source's change marker.
    pub async fn queue_sync(&self, reference: &str, mode: SyncMode, dry_run: bool) -> Result<LdapRun> {
        let source = self.get_source(reference).await?;
        if mode == SyncMode::Incremental && source.settings.change_marker.is_none() {
            return Err(Error::invalid(
                "mode",
                "an incremental sync needs the source's change_marker (modify_timestamp or usn_changed)",
            ));
        }
        let run = LdapRun::queued(source.id, LdapRunKind::Sync, mode, dry_run, "manual", now());
        self.store.queue_ldap_run(&run).await
    }

    /// Queues a connection test: connect, bind, and count what the settings find.
    pub async fn queue_test(&self, reference: &str) -> Result<LdapRun> {
        let source = self.get_source(reference).await?;
        let run = LdapRun::queued(source.id, LdapRunKind::Test, SyncMode::Full, true, "manual", now());
        self.store.queue_ldap_run(&run).await
    }

    /// One run.
    pub async fn get_run(&self, id: &str) -> Result<LdapRun> {
        let parsed = Uuid::parse_str(id).map_err(|_| Error::not_found("LDAP run", id))?;
        self.store
            .get_ldap_run(parsed)
            .await?
            .ok_or_else(|| Error::not_found("LDAP run", id))
    }

    /// A source's newest runs.
    pub async fn list_runs(&self, reference: &str, limit: u32) -> Result<Vec<LdapRun>> {
        let source = self.get_source(reference).await?;
        self.store.list_ldap_runs(source.id, limit).await
    }

    /// The report records of a run (for a dry run: what it would do).
    pub async fn run_reports(&self, id: &str) -> Result<Vec<Report>> {
        let run = self.get_run(id).await?;
        self.store.reports_for_correlation(&run.id.to_string()).await
    }

    /// Refuses a change, by anyone but the source, to what an LDAP source owns of a user: the
    /// username, `active` and the mapped fields. Only fields the change really changes count, so
    /// a form that sends a user's values back unchanged passes. A change that is invalid anyway
    /// passes here and is refused by the directory with its own reason.
    pub async fn guard_user_update(&self, reference: &str, update: &UserUpdate) -> Result<()> {
        let user = self.directory.get_user(reference).await?;
        let Some(source) = self.store.ldap_owner(LinkKind::User, user.id).await? else {
            return Ok(());
        };
        let definitions = self.directory.attribute_definitions().await?;
        let Ok((_, changed)) = user.apply(update.clone(), &definitions, now()) else {
            return Ok(());
        };
        let owned = source.settings.owned_user_fields();
        match changed.iter().find(|field| owned.contains(field)) {
            Some(field) => Err(Error::conflict(
                field.clone(),
                format!(
                    "{field} of {} is read from the LDAP source '{}': change it in the directory server",
                    user.username, source.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Refuses activating or deactivating a user an LDAP source owns: its entry decides.
    pub async fn guard_user_active(&self, reference: &str, active: bool) -> Result<()> {
        let update = UserUpdate {
            active: Some(active),
            ..UserUpdate::default()
        };
        self.guard_user_update(reference, &update).await
    }

    /// Refuses renaming a group an LDAP source owns: its entry names it.
    pub async fn guard_group_rename(&self, reference: &str) -> Result<()> {
        let group = self.directory.get_group(reference).await?;
        match self.store.ldap_owner(LinkKind::Group, group.id).await? {
            Some(source) => Err(Error::conflict(
                "name",
                format!(
                    "the name of group {} is read from the LDAP source '{}': rename it in the directory server",
                    group.name, source.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// The store, for the source runner.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// The associated data a source's bind password is encrypted with.
pub(crate) fn password_context(source: Uuid) -> String {
    format!("ldap-source:{source}")
}
