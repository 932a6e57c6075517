//! A configuration document applied in one write transaction: the attribute, LDAP source, app,
//! group and policy writes of `provisio config apply`, through the same statements as the single
//! writes (the `*_in` functions, and `write_new_group` for a group as the directory creates it),
//! so that each write keeps its checks and change-log event, and a refusal of any of them leaves
//! everything as it was.

use super::StoredApp;
use super::app_writes::{
    delete_app_in, delete_policy_in, insert_app_in, insert_policy_in, rename_policy_in, update_app_in,
};
use super::attributes::{create_attribute_in, delete_attribute_in, update_attribute_in};
use super::group_writes::write_new_group;
use super::ldap::{delete_ldap_source_in, insert_ldap_source_in, update_ldap_source_in};
use super::sql::SqlStore;
use crate::domain::Result;
use crate::domain::admin::Actor;
use crate::domain::app::Policy;
use crate::domain::attribute::AttributeDefinition;
use crate::domain::group::Group;
use crate::domain::ldap::LdapSource;
use std::future::Future;
use uuid::Uuid;

/// An app's new settings: the app as it will be stored, the version it replaces, and the names of
/// the fields that change (as the change log records them).
#[derive(Debug, Clone)]
pub struct AppRewrite {
    /// The app with its new settings and version.
    pub app: StoredApp,
    /// The version it replaces.
    pub previous_version: i64,
    /// The fields that change.
    pub changed: Vec<String>,
}

/// Every write of one configuration apply. They are made in this order: attribute creations and
/// updates, LDAP source creations and updates, app creations and updates, group creations, policy
/// creations and renames, then the deletions (policies, apps, LDAP sources, attributes; never
/// groups).
#[derive(Debug, Clone, Default)]
pub struct ConfigWrites {
    /// New attribute definitions.
    pub create_attributes: Vec<AttributeDefinition>,
    /// Changed attribute definitions.
    pub update_attributes: Vec<AttributeDefinition>,
    /// New LDAP sources with their encrypted bind passwords.
    pub create_sources: Vec<(LdapSource, String)>,
    /// Changed LDAP sources, with a new encrypted bind password when it changes.
    pub update_sources: Vec<(LdapSource, Option<String>)>,
    /// New apps.
    pub create_apps: Vec<StoredApp>,
    /// Changed apps.
    pub update_apps: Vec<AppRewrite>,
    /// New directory groups the policies need (no members).
    pub create_groups: Vec<Group>,
    /// New policies.
    pub create_policies: Vec<Policy>,
    /// Policies whose name changes.
    pub rename_policies: Vec<Policy>,
    /// Policies to delete.
    pub delete_policies: Vec<Uuid>,
    /// Apps to delete (with their policies and account records).
    pub delete_apps: Vec<Uuid>,
    /// LDAP sources to delete.
    pub delete_sources: Vec<Uuid>,
    /// Attribute definitions to delete (refused while users hold values).
    pub delete_attributes: Vec<String>,
}

/// Writing a whole configuration at once.
pub trait ConfigStore: Send + Sync {
    /// Makes every write of `writes` in one transaction, or none of them.
    fn apply_config(&self, writes: &ConfigWrites, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
}

impl ConfigStore for SqlStore {
    async fn apply_config(&self, writes: &ConfigWrites, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for def in &writes.create_attributes {
            create_attribute_in(&mut tx, def, actor).await?;
        }
        for def in &writes.update_attributes {
            update_attribute_in(&mut tx, def, actor).await?;
        }
        for (source, ciphertext) in &writes.create_sources {
            insert_ldap_source_in(&mut tx, source, ciphertext).await?;
        }
        for (source, ciphertext) in &writes.update_sources {
            update_ldap_source_in(&mut tx, source, ciphertext.as_deref()).await?;
        }
        for app in &writes.create_apps {
            insert_app_in(&mut tx, app, actor).await?;
        }
        for rewrite in &writes.update_apps {
            update_app_in(&mut tx, &rewrite.app, rewrite.previous_version, &rewrite.changed, actor).await?;
        }
        for group in &writes.create_groups {
            write_new_group(&mut tx, group, actor).await?;
        }
        for policy in &writes.create_policies {
            insert_policy_in(&mut tx, policy, actor).await?;
        }
        for policy in &writes.rename_policies {
            rename_policy_in(&mut tx, policy, actor).await?;
        }
        for id in &writes.delete_policies {
            delete_policy_in(&mut tx, *id, actor).await?;
        }
        for id in &writes.delete_apps {
            delete_app_in(&mut tx, *id, actor).await?;
        }
        for id in &writes.delete_sources {
            delete_ldap_source_in(&mut tx, *id).await?;
        }
        for name in &writes.delete_attributes {
            delete_attribute_in(&mut tx, name, actor).await?;
        }
        tx.commit().await
    }
}
