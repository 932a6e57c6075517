//! Configuration as code: the TOML document `provisio config export` writes and `config plan` /
//! `config apply` read (custom attributes, apps with their mapping, features and deprovisioning,
//! the directory groups the policies need, policies, LDAP sources), the hub's configuration as comparable state ([`ConfigState`]), the
//! document's checks with line numbers (`validate.rs`) and the pure planner (`plan.rs`).
//!
//! Secrets never appear in the document: it names where they are (`token_file`, `token_env`,
//! `bind_password_file`, `bind_password_env`), the operator's CLI reads them and sends them beside
//! the document.

mod plan;
#[cfg(test)]
mod tests;
mod validate;

pub use plan::{ChangeAction, ConfigChange, ObjectKind, plan_config};
pub use validate::{Known, desired_state};

use super::app::{DeprovisionAction, Deprovisioning, Features, FeaturesPatch, FlowControl};
use super::attribute::AttributeType;
use super::error::{Error, Result};
use super::ldap::{LdapPreset, LdapSettings};
use super::mapping::Mapping;
use super::values::GroupName;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// The version of the document format this hub writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A configuration document as written: every list entry and the values a check may refuse
/// carry their place in the text, so a refusal names its line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// The format version (1).
    #[serde(default)]
    pub version: Option<Spanned<u32>>,
    /// Custom attribute definitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Spanned<AttributeDoc>>,
    /// LDAP and Active Directory sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_sources: Vec<Spanned<LdapSourceDoc>>,
    /// Apps (SCIM destinations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<Spanned<AppDoc>>,
    /// Directory groups the policies need: created when missing, never updated or deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Spanned<GroupDoc>>,
    /// Policies: which group gets accounts in which app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Spanned<PolicyDoc>>,
}

/// A custom attribute definition in the document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDoc {
    /// Identifier.
    pub name: Spanned<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Label; the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether every user must have a value (default `false`).
    #[serde(default)]
    pub required: bool,
    /// Free description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An app in the document. Fields left out take the preset's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDoc {
    /// Unique name (regardless of case).
    pub name: Spanned<String>,
    /// The preset its defaults come from (`generic` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Spanned<String>>,
    /// SCIM base URL.
    pub base_url: Spanned<String>,
    /// A file on the operator's machine holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// An environment variable on the operator's machine holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Refused: a literal token has no place in the document.
    #[serde(default, skip_serializing)]
    pub token: Option<Spanned<toml::Value>>,
    /// Whether the engine provisions the app (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Features to switch on or off; the others keep the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Spanned<FeaturesPatch>>,
    /// Deprovisioning per event; events left out keep the preset's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovision: Option<Spanned<DeprovisionDoc>>,
    /// Concurrency and rate ceilings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Spanned<FlowControl>>,
    /// The mapping rules in order; the preset's mapping when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Vec<Spanned<RuleDoc>>>,
}

/// Deprovisioning choices in the document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeprovisionDoc {
    /// The user left every group that gives access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unassign: Option<DeprovisionAction>,
    /// The user was deactivated in the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_deactivate: Option<DeprovisionAction>,
    /// The user was deleted from the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<DeprovisionAction>,
    /// Delete accounts deactivated this many days; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_deactivated_after_days: Option<u32>,
}

/// One mapping rule in the document, in the CLI's short syntax (`email`, `constant:true`, or a
/// JSON source) with an optional `lower`/`upper` transform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// The SCIM attribute path.
    pub target: Spanned<String>,
    /// Where the value comes from.
    pub source: Spanned<String>,
    /// `lower` or `upper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// A directory group the document declares, so that its policies can name it on a hub that does
/// not have it yet. Only the name: members and external ids stay directory data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDoc {
    /// The group's name (compared regardless of case, as the directory does).
    pub name: Spanned<String>,
}

/// A policy in the document: members of `group` get accounts in `app`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// A name for people; "APP for GROUP" when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The app, by name.
    pub app: Spanned<String>,
    /// The directory group, by name: one the hub has or the document declares in `[[groups]]`.
    pub group: Spanned<String>,
}

/// An LDAP source in the document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSourceDoc {
    /// Unique name.
    pub name: Spanned<String>,
    /// Settings to start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<LdapPreset>,
    /// A file on the operator's machine holding the bind password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<String>,
    /// An environment variable on the operator's machine holding the bind password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_env: Option<String>,
    /// Refused: a literal password has no place in the document.
    #[serde(default, skip_serializing)]
    pub bind_password: Option<Spanned<toml::Value>>,
    /// Settings (with a preset, those that differ from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Spanned<toml::Table>>,
}

/// Where the operator's CLI reads a secret from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A file (its content, without a trailing line break).
    File(String),
    /// An environment variable.
    Env(String),
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::File(path) => write!(f, "file {path}"),
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

fn secret_ref(file: &Option<String>, env: &Option<String>) -> Option<SecretRef> {
    match (file, env) {
        (Some(path), _) => Some(SecretRef::File(path.clone())),
        (None, Some(name)) => Some(SecretRef::Env(name.clone())),
        (None, None) => None,
    }
}

impl ConfigDocument {
    /// Where each app's token comes from, by app name.
    pub fn token_refs(&self) -> Vec<(String, SecretRef)> {
        self.apps
            .iter()
            .filter_map(|app| {
                let app = app.get_ref();
                secret_ref(&app.token_file, &app.token_env).map(|r| (app.name.get_ref().clone(), r))
            })
            .collect()
    }

    /// Where each LDAP source's bind password comes from, by source name.
    pub fn password_refs(&self) -> Vec<(String, SecretRef)> {
        self.ldap_sources
            .iter()
            .filter_map(|source| {
                let source = source.get_ref();
                secret_ref(&source.bind_password_file, &source.bind_password_env)
                    .map(|r| (source.name.get_ref().clone(), r))
            })
            .collect()
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// A refusal at the line where `span` starts.
pub(crate) fn refusal(text: &str, span: std::ops::Range<usize>, message: impl Into<String>) -> Error {
    Error::Document {
        line: line_at(text, span.start),
        message: message.into(),
    }
}

/// Reads a document: TOML syntax and the document's shape (unknown keys, wrong types) are
/// checked here, each refusal with its line.
pub fn parse(text: &str) -> Result<ConfigDocument> {
    let document: ConfigDocument = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_at(text, span.start));
        Error::Document {
            line,
            message: e.message().trim().to_owned(),
        }
    })?;
    if let Some(version) = &document.version
        && *version.get_ref() != FORMAT_VERSION
    {
        return Err(refusal(
            text,
            version.span(),
            format!(
                "version {} is not supported (this hub reads version {FORMAT_VERSION})",
                version.get_ref()
            ),
        ));
    }
    Ok(document)
}

/// A custom attribute definition as configuration (no timestamps).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeSpec {
    /// Identifier.
    pub name: String,
    /// Label.
    pub display_name: String,
    /// Value type.
    pub kind: AttributeType,
    /// Whether every user must have a value.
    pub required: bool,
    /// Free description.
    pub description: Option<String>,
}

/// An app as configuration: no id, state or connection status, the token as a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// Unique name.
    pub name: String,
    /// The preset it was created from.
    pub preset: String,
    /// SCIM base URL.
    pub base_url: String,
    /// Whether the engine provisions it.
    pub enabled: bool,
    /// Provisioning features.
    pub features: Features,
    /// Deprovisioning per event.
    pub deprovision: Deprovisioning,
    /// Concurrency and rate ceilings.
    pub flow: FlowControl,
    /// The mapping.
    pub mapping: Mapping,
    /// SHA-256 (hex) of the bearer token; in a desired state, `None` keeps the stored token.
    pub token_digest: Option<String>,
}

/// A policy as configuration: app and group by name.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// A name for people.
    pub name: String,
    /// The app's name.
    pub app: String,
    /// The group's name.
    pub group: String,
}

impl PolicySpec {
    /// What identifies a policy: its app regardless of case, and its group as the directory
    /// compares group names ([`group_key`], the same key as [`GroupSpec::key`]).
    pub fn key(&self) -> (String, String) {
        (self.app.to_lowercase(), group_key(&self.group))
    }

    /// How a plan names it.
    pub fn label(&self) -> String {
        format!("{} -> {}", self.app, self.group)
    }
}

/// A directory group as configuration: its name only.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The group's name.
    pub name: String,
}

impl GroupSpec {
    /// What identifies a group: its name as the directory compares it (see [`group_key`]).
    pub fn key(&self) -> String {
        group_key(&self.name)
    }
}

/// A group name as the directory compares it: normalised as a stored name is
/// ([`GroupName::parse`]), regardless of case; a name the directory would refuse is only
/// lower-cased (it matches no stored group).
pub fn group_key(name: &str) -> String {
    GroupName::parse(name).map_or_else(|_| name.to_lowercase(), |n| n.key())
}

/// An LDAP source as configuration, the bind password as a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapSourceSpec {
    /// Unique name.
    pub name: String,
    /// Settings.
    pub settings: LdapSettings,
    /// SHA-256 (hex) of the bind password; in a desired state, `None` keeps the stored one.
    pub password_digest: Option<String>,
}

/// The hub's configuration as the document covers it, each list in a stable order (attributes by
/// name, apps, groups and sources by name regardless of case, policies by app then group).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigState {
    /// Custom attribute definitions.
    pub attributes: Vec<AttributeSpec>,
    /// Apps.
    pub apps: Vec<AppSpec>,
    /// Directory groups: in the hub's state, those its policies name (what an export declares);
    /// in a desired state, those the document declares.
    pub groups: Vec<GroupSpec>,
    /// Policies.
    pub policies: Vec<PolicySpec>,
    /// LDAP sources.
    pub ldap_sources: Vec<LdapSourceSpec>,
}

impl ConfigState {
    /// Puts every list in its stable order.
    pub fn sort(&mut self) {
        self.attributes.sort_by(|a, b| a.name.cmp(&b.name));
        self.apps.sort_by_key(|a| (a.name.to_lowercase(), a.name.clone()));
        self.groups.sort_by_key(|g| (g.key(), g.name.clone()));
        self.policies.sort_by_key(|p| (p.key(), p.name.clone()));
        self.ldap_sources
            .sort_by_key(|s| (s.name.to_lowercase(), s.name.clone()));
    }
}

/// The environment variable an export names for an app's token (the operator may change it,
/// or use `token_file`).
pub fn token_env_name(app: &str) -> String {
    format!("PROVISIO_APP_TOKEN_{}", env_suffix(app))
}

/// The environment variable an export names for an LDAP source's bind password.
pub fn password_env_name(source: &str) -> String {
    format!("PROVISIO_LDAP_PASSWORD_{}", env_suffix(source))
}

fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `state` as a document: every field spelled out, lists in the state's order, secrets as
/// the environment variables [`token_env_name`] and [`password_env_name`] name.
pub fn export(state: &ConfigState) -> Result<String> {
    let ldap_sources = state
        .ldap_sources
        .iter()
        .map(|source| {
            let settings = toml::Table::try_from(&source.settings)
                .map_err(|e| Error::Internal(format!("LDAP settings as TOML: {e}")))?;
            Ok(spanned(LdapSourceDoc {
                name: spanned(source.name.clone()),
                preset: None,
                bind_password_file: None,
                bind_password_env: Some(password_env_name(&source.name)),
                bind_password: None,
                settings: Some(spanned(settings)),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let document = ConfigDocument {
        version: Some(spanned(FORMAT_VERSION)),
        attributes: state
            .attributes
            .iter()
            .map(|a| {
                spanned(AttributeDoc {
                    name: spanned(a.name.clone()),
                    kind: a.kind,
                    display_name: Some(a.display_name.clone()),
                    required: a.required,
                    description: a.description.clone(),
                })
            })
            .collect(),
        ldap_sources,
        apps: state.apps.iter().map(|app| spanned(app_doc(app))).collect(),
        groups: state
            .groups
            .iter()
            .map(|g| {
                spanned(GroupDoc {
                    name: spanned(g.name.clone()),
                })
            })
            .collect(),
        policies: state
            .policies
            .iter()
            .map(|p| {
                spanned(PolicyDoc {
                    name: Some(p.name.clone()),
                    app: spanned(p.app.clone()),
                    group: spanned(p.group.clone()),
                })
            })
            .collect(),
    };
    let body = toml::to_string(&document).map_err(|e| Error::Internal(format!("configuration as TOML: {e}")))?;
    Ok(format!(
        "# Provisio configuration (provisio config export). Secrets are read on the operator's machine\n\
         # from the files or environment variables named here, never written in this document.\n\n{body}"
    ))
}

/// `value` without a place in a text (an exported document has none yet).
fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn app_doc(app: &AppSpec) -> AppDoc {
    let f = &app.features;
    let d = &app.deprovision;
    AppDoc {
        name: spanned(app.name.clone()),
        preset: Some(spanned(app.preset.clone())),
        base_url: spanned(app.base_url.clone()),
        token_file: None,
        token_env: Some(token_env_name(&app.name)),
        token: None,
        enabled: Some(app.enabled),
        features: Some(spanned(FeaturesPatch {
            create_users: Some(f.create_users),
            update_users: Some(f.update_users),
            deactivate_users: Some(f.deactivate_users),
            delete_users: Some(f.delete_users),
            push_groups: Some(f.push_groups),
            import_users: Some(f.import_users),
        })),
        deprovision: Some(spanned(DeprovisionDoc {
            on_unassign: Some(d.on_unassign),
            on_deactivate: Some(d.on_deactivate),
            on_delete: Some(d.on_delete),
            delete_deactivated_after_days: d.delete_deactivated_after_days,
        })),
        flow: Some(spanned(app.flow)),
        mapping: Some(
            app.mapping
                .rows()
                .into_iter()
                .map(|row| {
                    spanned(RuleDoc {
                        target: spanned(row.target),
                        source: spanned(row.source),
                        transform: row.transform,
                    })
                })
                .collect(),
        ),
    }
}

/// The secrets the operator's CLI read for a plan or apply, by app and source name (shown as
/// `[REDACTED]` by `Debug`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Bearer tokens, by app name.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub app_tokens: BTreeMap<String, SecretString>,
    /// Bind passwords, by LDAP source name.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub ldap_passwords: BTreeMap<String, SecretString>,
}

impl std::fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
