//! `ConfigService`: configuration as code. Export reads the hub's attributes, apps, policies, the
//! groups those policies name and LDAP sources as a document; plan checks a document against the
//! hub and lists the changes (`domain::config_doc::plan_config`); apply makes exactly those
//! changes in one transaction (`ConfigStore::apply_config`). Secrets arrive beside the document,
//! read by the operator's CLI.

use super::auth::token_hash;
use super::directory::DirectoryService;
use super::ldap::password_context;
use crate::domain::admin::Actor;
use crate::domain::app::{App, AppSettings, Policy, validate_secret};
use crate::domain::attribute::AttributeDefinition;
use crate::domain::config_doc::{
    AppSpec, AttributeSpec, ChangeAction, ConfigChange, ConfigDocument, ConfigState, GroupSpec, Known, LdapSourceSpec,
    ObjectKind, PolicySpec, Secrets, desired_state, export, group_key, parse, plan_config, refusal,
};
use crate::domain::group::{Group, NewGroup};
use crate::domain::ldap::LdapSource;
use crate::domain::user::UserSource;
use crate::domain::values::GroupName;
use crate::domain::{Error, Result, now};
use crate::secrets::SecretKey;
use crate::sources::ldap::{check_ca_certificate, check_filter};
use crate::store::{
    AppRewrite, AppStore, AttributeStore, ChangeLogStore, ConfigStore, ConfigWrites, GroupStore, LdapStore, StoredApp,
    UserStore,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A document to plan or apply, with the secrets it names.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    /// The TOML document.
    pub document: String,
    /// The tokens and bind passwords the document names, read by the operator's CLI.
    #[serde(default)]
    pub secrets: Secrets,
    /// Delete the apps, policies, attributes and LDAP sources the document leaves out (never
    /// directory groups).
    #[serde(default)]
    pub prune: bool,
}

/// The changes a plan foresees or an apply made, in the order they are made.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigChanges {
    /// One entry per object created, changed or deleted; empty when nothing changes.
    pub changes: Vec<ConfigChange>,
}

/// The hub's configuration as a document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigExport {
    /// The TOML document.
    pub document: String,
}

/// The stores configuration as code reads and writes.
pub trait ConfigStores:
    ConfigStore + AppStore + AttributeStore + LdapStore + UserStore + GroupStore + ChangeLogStore + Clone
{
}

impl<S> ConfigStores for S where
    S: ConfigStore + AppStore + AttributeStore + LdapStore + UserStore + GroupStore + ChangeLogStore + Clone
{
}

/// Configuration as code over a store.
#[derive(Debug, Clone)]
pub struct ConfigService<S> {
    store: S,
    directory: DirectoryService<S>,
    key: SecretKey,
    allow_link_local: bool,
}

/// The hub's configuration as stored: the comparable state and the objects it was read from.
struct Current {
    state: ConfigState,
    apps: Vec<StoredApp>,
    sources: Vec<LdapSource>,
    policies: Vec<(PolicySpec, Policy)>,
}

/// A checked document: what it asks for, the hub's groups it names (by [`group_key`]) and the
/// changes it makes.
struct Checked {
    desired: ConfigState,
    groups: BTreeMap<String, Uuid>,
    changes: Vec<ConfigChange>,
}

impl<S: ConfigStores> ConfigService<S> {
    /// Wraps a store; `key` encrypts tokens and bind passwords; `directory` is shared with the
    /// other services so that its cached attribute definitions are cleared by an apply.
    pub fn new(store: S, key: SecretKey, directory: DirectoryService<S>) -> Self {
        Self {
            store,
            directory,
            key,
            allow_link_local: false,
        }
    }

    /// Accepts (`true`) or refuses (`false`, the default) app base URLs naming a link-local
    /// address, as `AppService::allow_link_local_targets`.
    pub fn allow_link_local_targets(mut self, allow: bool) -> Self {
        self.allow_link_local = allow;
        self
    }

    /// The hub's configuration as a TOML document (no secrets, ids or times).
    pub async fn export(&self) -> Result<String> {
        export(&self.current().await?.state)
    }

    /// What applying `request` would change.
    pub async fn plan(&self, request: &ConfigRequest) -> Result<Vec<ConfigChange>> {
        let current = self.current().await?;
        Ok(self.check(request, &current).await?.changes)
    }

    /// Applies `request` in one transaction and returns the changes made (those a plan lists).
    pub async fn apply(&self, request: &ConfigRequest, actor: &Actor) -> Result<Vec<ConfigChange>> {
        let current = self.current().await?;
        let checked = self.check(request, &current).await?;
        if checked.changes.is_empty() {
            return Ok(Vec::new());
        }
        let writes = self.writes(request, &current, &checked)?;
        let applied = self.store.apply_config(&writes, actor).await;
        self.directory.forget_attribute_definitions();
        applied?;
        Ok(checked.changes)
    }

    async fn current(&self) -> Result<Current> {
        let mut state = ConfigState {
            attributes: self
                .store
                .list_attributes()
                .await?
                .into_iter()
                .map(|def| AttributeSpec {
                    name: def.name,
                    display_name: def.display_name,
                    kind: def.kind,
                    required: def.required,
                    description: def.description,
                })
                .collect(),
            ..ConfigState::default()
        };
        let mut apps = Vec::new();
        for stored in self.store.list_stored_apps().await? {
            let token = self
                .key
                .decrypt(&stored.token_ciphertext, &stored.app.id.to_string())
                .ok()
                .map(|secret| token_hash(secret.expose_secret()));
            state.apps.push(app_spec(&stored.app, token));
            apps.push(stored);
        }
        let sources = self.store.list_ldap_sources().await?;
        for source in &sources {
            let ciphertext = self.store.ldap_source_password(source.id).await?;
            let password = self
                .key
                .decrypt(&ciphertext, &password_context(source.id))
                .ok()
                .map(|secret| token_hash(secret.expose_secret()));
            state.ldap_sources.push(LdapSourceSpec {
                name: source.name.clone(),
                settings: source.settings.clone(),
                password_digest: password,
            });
        }
        let mut policies = Vec::new();
        for policy in self.store.list_policies(None).await? {
            let app = apps.iter().find(|a| a.app.id == policy.app_id);
            let group = self.store.get_group(policy.group_id).await?;
            if let (Some(app), Some(group)) = (app, group) {
                let spec = PolicySpec {
                    name: policy.name.clone(),
                    app: app.app.name.clone(),
                    group: group.name,
                };
                if !state.groups.iter().any(|g| g.key() == group_key(&spec.group)) {
                    state.groups.push(GroupSpec {
                        name: spec.group.clone(),
                    });
                }
                state.policies.push(spec.clone());
                policies.push((spec, policy));
            }
        }
        state.sort();
        Ok(Current {
            state,
            apps,
            sources,
            policies,
        })
    }

    async fn check(&self, request: &ConfigRequest, current: &Current) -> Result<Checked> {
        let text = &request.document;
        let document = parse(text)?;
        let token_digests = digests(&request.secrets.app_tokens, "app_tokens")?;
        let password_digests = digests(&request.secrets.ldap_passwords, "ldap_passwords")?;
        let mut groups = BTreeMap::new();
        let mut group_names = Vec::new();
        let named = document.groups.iter().map(|g| g.get_ref().name.get_ref());
        for name in named.chain(document.policies.iter().map(|p| p.get_ref().group.get_ref())) {
            if groups.contains_key(&group_key(name)) {
                continue;
            }
            let stored = GroupName::parse(name).map_or_else(|_| name.clone(), String::from);
            if let Some(group) = self.store.get_group_by_name(&stored).await? {
                groups.insert(group_key(&group.name), group.id);
                group_names.push(group.name);
            }
        }
        let known = Known {
            current: &current.state,
            groups: &group_names,
            prune: request.prune,
            token_digests: &token_digests,
            password_digests: &password_digests,
            allow_link_local: self.allow_link_local,
        };
        let desired = desired_state(text, &document, &known)?;
        check_sources(text, &document, &desired)?;
        // The hub's groups the document names are what a declared group is compared with.
        let mut hub = current.state.clone();
        for name in group_names {
            if !hub.groups.iter().any(|g| g.key() == group_key(&name)) {
                hub.groups.push(GroupSpec { name });
            }
        }
        let changes = plan_config(&hub, &desired, request.prune);
        Ok(Checked {
            desired,
            groups,
            changes,
        })
    }

    fn writes(&self, request: &ConfigRequest, current: &Current, checked: &Checked) -> Result<ConfigWrites> {
        let at = now();
        let mut writes = ConfigWrites::default();
        let mut new_apps: BTreeMap<String, Uuid> = BTreeMap::new();
        let mut new_groups: BTreeMap<String, Uuid> = BTreeMap::new();
        let missing =
            |kind: &str, name: &str| Error::Internal(format!("the plan names the {kind} '{name}', which is gone"));
        for change in &checked.changes {
            let key = change.name.to_lowercase();
            match (change.kind, change.action) {
                (ObjectKind::Attribute, ChangeAction::Delete) => writes.delete_attributes.push(change.name.clone()),
                (ObjectKind::Attribute, action) => {
                    let spec = checked
                        .desired
                        .attributes
                        .iter()
                        .find(|a| a.name == change.name)
                        .ok_or_else(|| missing("attribute", &change.name))?;
                    let def = AttributeDefinition {
                        name: spec.name.clone(),
                        display_name: spec.display_name.clone(),
                        kind: spec.kind,
                        required: spec.required,
                        description: spec.description.clone(),
                        created_at: at,
                        updated_at: at,
                    };
                    if action == ChangeAction::Create {
                        writes.create_attributes.push(def);
                    } else {
                        writes.update_attributes.push(def);
                    }
                }
                (ObjectKind::LdapSource, ChangeAction::Delete) => {
                    let source = current.sources.iter().find(|s| s.name.to_lowercase() == key);
                    writes
                        .delete_sources
                        .push(source.ok_or_else(|| missing("LDAP source", &change.name))?.id);
                }
                (ObjectKind::LdapSource, action) => {
                    let spec = checked
                        .desired
                        .ldap_sources
                        .iter()
                        .find(|s| s.name.to_lowercase() == key)
                        .ok_or_else(|| missing("LDAP source", &change.name))?;
                    let password = secret_for(&request.secrets.ldap_passwords, &spec.name);
                    if action == ChangeAction::Create {
                        let id = Uuid::now_v7();
                        let password = password.ok_or_else(|| missing("bind password of", &spec.name))?;
                        let ciphertext = self.key.encrypt(password.expose_secret(), &password_context(id))?;
                        let source = LdapSource {
                            id,
                            name: spec.name.clone(),
                            settings: spec.settings.clone(),
                            created_at: at,
                            updated_at: at,
                        };
                        writes.create_sources.push((source, ciphertext));
                    } else {
                        let existing = current
                            .sources
                            .iter()
                            .find(|s| s.name.to_lowercase() == key)
                            .ok_or_else(|| missing("LDAP source", &change.name))?;
                        let ciphertext = match password {
                            Some(password) if change.fields.iter().any(|f| f == "bind_password") => Some(
                                self.key
                                    .encrypt(password.expose_secret(), &password_context(existing.id))?,
                            ),
                            _ => None,
                        };
                        let source = LdapSource {
                            name: spec.name.clone(),
                            settings: spec.settings.clone(),
                            updated_at: at,
                            ..existing.clone()
                        };
                        writes.update_sources.push((source, ciphertext));
                    }
                }
                (ObjectKind::App, ChangeAction::Delete) => {
                    let app = current.apps.iter().find(|a| a.app.name.to_lowercase() == key);
                    writes
                        .delete_apps
                        .push(app.ok_or_else(|| missing("app", &change.name))?.app.id);
                }
                (ObjectKind::App, action) => {
                    let spec = checked
                        .desired
                        .apps
                        .iter()
                        .find(|a| a.name.to_lowercase() == key)
                        .ok_or_else(|| missing("app", &change.name))?;
                    let token = secret_for(&request.secrets.app_tokens, &spec.name);
                    if action == ChangeAction::Create {
                        let token = token.ok_or_else(|| missing("token of", &spec.name))?;
                        let stored = self.new_app(spec, token, at)?;
                        new_apps.insert(key, stored.app.id);
                        writes.create_apps.push(stored);
                    } else {
                        let existing = current
                            .apps
                            .iter()
                            .find(|a| a.app.name.to_lowercase() == key)
                            .ok_or_else(|| missing("app", &change.name))?;
                        writes
                            .update_apps
                            .push(self.rewrite(existing, spec, token, &change.fields, at)?);
                    }
                }
                (ObjectKind::Group, ChangeAction::Create) => {
                    let spec = checked
                        .desired
                        .groups
                        .iter()
                        .find(|g| g.name == change.name)
                        .ok_or_else(|| missing("group", &change.name))?;
                    let input = NewGroup {
                        name: spec.name.clone(),
                        external_id: None,
                    };
                    let group = Group::create(input, UserSource::Local, at)?;
                    new_groups.insert(group_key(&group.name), group.id);
                    writes.create_groups.push(group);
                }
                (ObjectKind::Group, action) => {
                    return Err(Error::Internal(format!(
                        "a configuration never makes the change '{action}' to a group ({})",
                        change.name
                    )));
                }
                (ObjectKind::Policy, action) => {
                    let wanted = checked
                        .desired
                        .policies
                        .iter()
                        .chain(current.state.policies.iter())
                        .find(|p| p.label() == change.name)
                        .ok_or_else(|| missing("policy", &change.name))?;
                    let stored = current.policies.iter().find(|(spec, _)| spec.key() == wanted.key());
                    match action {
                        ChangeAction::Delete => writes
                            .delete_policies
                            .push(stored.ok_or_else(|| missing("policy", &change.name))?.1.id),
                        ChangeAction::Update => {
                            let (_, policy) = stored.ok_or_else(|| missing("policy", &change.name))?;
                            writes.rename_policies.push(Policy {
                                name: wanted.name.clone(),
                                ..policy.clone()
                            });
                        }
                        ChangeAction::Create => {
                            let app_key = wanted.app.to_lowercase();
                            let app_id = new_apps
                                .get(&app_key)
                                .copied()
                                .or_else(|| {
                                    current
                                        .apps
                                        .iter()
                                        .find(|a| a.app.name.to_lowercase() == app_key)
                                        .map(|a| a.app.id)
                                })
                                .ok_or_else(|| missing("app", &wanted.app))?;
                            let group_key = group_key(&wanted.group);
                            let group_id = checked
                                .groups
                                .get(&group_key)
                                .or_else(|| new_groups.get(&group_key))
                                .copied()
                                .ok_or_else(|| missing("group", &wanted.group))?;
                            writes.create_policies.push(Policy {
                                id: Uuid::now_v7(),
                                name: wanted.name.clone(),
                                app_id,
                                group_id,
                                created_at: at,
                            });
                        }
                    }
                }
            }
        }
        Ok(writes)
    }

    fn new_app(&self, spec: &AppSpec, token: &SecretString, at: time::OffsetDateTime) -> Result<StoredApp> {
        let settings = AppSettings {
            name: spec.name.clone(),
            base_url: spec.base_url.clone(),
            features: spec.features,
            deprovision: spec.deprovision,
            enabled: spec.enabled,
            mapping: spec.mapping.clone(),
            preset: spec.preset.clone(),
            flow: spec.flow,
        };
        let app = App::connect(settings, at);
        let token_ciphertext = self.key.encrypt(token.expose_secret(), &app.id.to_string())?;
        Ok(StoredApp { app, token_ciphertext })
    }

    fn rewrite(
        &self,
        existing: &StoredApp,
        spec: &AppSpec,
        token: Option<&SecretString>,
        fields: &[String],
        at: time::OffsetDateTime,
    ) -> Result<AppRewrite> {
        let mut stored = existing.clone();
        let app = &mut stored.app;
        app.name = spec.name.clone();
        app.preset = Some(spec.preset.clone());
        app.base_url = spec.base_url.clone();
        app.enabled = spec.enabled;
        app.features = spec.features;
        app.deprovision = spec.deprovision;
        app.flow = spec.flow;
        app.mapping = spec.mapping.clone();
        if let Some(token) = token
            && fields.iter().any(|f| f == "token")
        {
            stored.token_ciphertext = self.key.encrypt(token.expose_secret(), &app.id.to_string())?;
        }
        if fields.iter().any(|f| f == "token" || f == "base_url") {
            app.connection_changed();
        }
        app.version += 1;
        app.updated_at = at;
        Ok(AppRewrite {
            previous_version: existing.app.version,
            app: stored,
            changed: fields.to_vec(),
        })
    }
}

/// An app's settings as configuration.
fn app_spec(app: &App, token_digest: Option<String>) -> AppSpec {
    AppSpec {
        name: app.name.clone(),
        preset: app.preset.clone().unwrap_or_else(|| "generic".to_owned()),
        base_url: app.base_url.clone(),
        enabled: app.enabled,
        features: app.features,
        deprovision: app.deprovision,
        flow: app.flow,
        mapping: app.mapping.clone(),
        token_digest,
    }
}

/// The digest of each secret, by name; an empty or unprintable secret is refused.
fn digests(secrets: &BTreeMap<String, SecretString>, field: &str) -> Result<BTreeMap<String, String>> {
    secrets
        .iter()
        .map(|(name, secret)| {
            let text = secret.expose_secret();
            validate_secret(&format!("secrets.{field}.{name}"), text)?;
            Ok((name.clone(), token_hash(text)))
        })
        .collect()
}

/// The secret sent for the object named `name` (names compared trimmed, regardless of case).
fn secret_for<'a>(secrets: &'a BTreeMap<String, SecretString>, name: &str) -> Option<&'a SecretString> {
    secrets
        .iter()
        .find(|(key, _)| key.trim().to_lowercase() == name.to_lowercase())
        .map(|(_, secret)| secret)
}

/// The checks of LDAP settings that need the LDAP client's parsers: filters and CA certificates,
/// refused at the line of the source's settings.
fn check_sources(text: &str, document: &ConfigDocument, desired: &ConfigState) -> Result<()> {
    for entry in &document.ldap_sources {
        let doc = entry.get_ref();
        let Some(spec) = desired
            .ldap_sources
            .iter()
            .find(|s| s.name.to_lowercase() == doc.name.get_ref().to_lowercase())
        else {
            continue;
        };
        let span = doc.settings.as_ref().map_or(entry.span(), |s| s.span());
        let settings = &spec.settings;
        let checked = check_filter("user_filter", &settings.user_filter)
            .and_then(|()| check_filter("group_filter", &settings.group_filter))
            .and_then(|()| settings.ca_certificate.as_deref().map_or(Ok(()), check_ca_certificate));
        if let Err(error) = checked {
            let message = match error {
                Error::Validation { field, message } => format!("settings.{field}: {message}"),
                other => other.to_string(),
            };
            return Err(refusal(text, span, message));
        }
    }
    Ok(())
}
