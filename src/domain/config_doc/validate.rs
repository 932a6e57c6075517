//! A parsed document checked against what the hub knows and turned into the desired
//! [`ConfigState`]: names, presets, URLs, mappings, declared groups, policies and secrets, each
//! refusal with the line of the value it is about.

use super::{
    AppDoc, AppSpec, AttributeSpec, ConfigDocument, ConfigState, GroupSpec, LdapSourceDoc, LdapSourceSpec, PolicySpec,
    group_key, refusal,
};
use crate::domain::address::check_base_url_address;
use crate::domain::app::{DeprovisionAction, Deprovisioning, validate_base_url, validate_name};
use crate::domain::attribute::validate_attribute_name;
use crate::domain::error::{Error, Result};
use crate::domain::ldap::{merge_settings, validate_source_name};
use crate::domain::mapping::{Mapping, MappingRule, Source, preset, presets};
use crate::domain::mapping_rows::Transform;
use crate::domain::values::{GroupName, profile_text};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use toml::Spanned;

/// What the checks need to know besides the document.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// The hub's configuration now.
    pub current: &'a ConfigState,
    /// The names of the hub's directory groups (at least those the document names).
    pub groups: &'a [String],
    /// Whether objects the document leaves out will be deleted.
    pub prune: bool,
    /// Digests of the tokens the operator sent, by app name.
    pub token_digests: &'a BTreeMap<String, String>,
    /// Digests of the bind passwords the operator sent, by source name.
    pub password_digests: &'a BTreeMap<String, String>,
    /// Whether app URLs may name link-local addresses.
    pub allow_link_local: bool,
}

/// The desired state a document describes, checked. `text` is the document the spans point into.
pub fn desired_state(text: &str, document: &ConfigDocument, known: &Known<'_>) -> Result<ConfigState> {
    let at = |span: Range<usize>, message: String| refusal(text, span, message);
    let mut state = ConfigState::default();
    let mut seen = HashSet::new();
    for entry in &document.attributes {
        let doc = entry.get_ref();
        let name = doc.name.get_ref();
        validate_attribute_name(name).map_err(|e| at(doc.name.span(), message(e)))?;
        if !seen.insert(name.to_lowercase()) {
            return Err(at(doc.name.span(), format!("the attribute '{name}' is defined twice")));
        }
        let display_name = profile_text("display_name", doc.display_name.clone())
            .map_err(|e| at(entry.span(), message(e)))?
            .unwrap_or_else(|| name.clone());
        let description =
            profile_text("description", doc.description.clone()).map_err(|e| at(entry.span(), message(e)))?;
        state.attributes.push(AttributeSpec {
            name: name.clone(),
            display_name,
            kind: doc.kind,
            required: doc.required,
            description,
        });
    }
    let mut custom: Vec<String> = state.attributes.iter().map(|a| a.name.clone()).collect();
    if !known.prune {
        for attribute in &known.current.attributes {
            if !custom.contains(&attribute.name) {
                custom.push(attribute.name.clone());
            }
        }
    }
    let mut seen = HashSet::new();
    for entry in &document.ldap_sources {
        let source = ldap_source(text, entry, &custom, known)?;
        if !seen.insert(source.name.to_lowercase()) {
            return Err(at(
                entry.get_ref().name.span(),
                format!("the LDAP source '{}' is defined twice", source.name),
            ));
        }
        state.ldap_sources.push(source);
    }
    let mut seen = HashSet::new();
    for entry in &document.apps {
        let app = app(text, entry, &custom, known)?;
        if !seen.insert(app.name.to_lowercase()) {
            return Err(at(
                entry.get_ref().name.span(),
                format!("the app '{}' is defined twice", app.name),
            ));
        }
        state.apps.push(app);
    }
    let hub_group = |name: &str| {
        let key = group_key(name);
        known.groups.iter().find(|g| group_key(g) == key).cloned()
    };
    for entry in &document.groups {
        let doc = entry.get_ref();
        let declared = GroupName::parse(doc.name.get_ref()).map_err(|e| at(doc.name.span(), message(e)))?;
        if state.groups.iter().any(|g| g.key() == declared.key()) {
            return Err(at(
                doc.name.span(),
                format!("the group '{}' is declared twice", declared.as_str()),
            ));
        }
        state.groups.push(GroupSpec {
            name: hub_group(declared.as_str()).unwrap_or_else(|| declared.as_str().to_owned()),
        });
    }
    let mut seen = HashSet::new();
    for entry in &document.policies {
        let doc = entry.get_ref();
        let app_name = doc.app.get_ref();
        let app = state
            .apps
            .iter()
            .chain(known.current.apps.iter().filter(|_| !known.prune))
            .find(|a| a.name.to_lowercase() == app_name.to_lowercase())
            .map(|a| a.name.clone())
            .ok_or_else(|| {
                at(
                    doc.app.span(),
                    format!(
                        "no app named '{app_name}' is in the document{}",
                        if known.prune { "" } else { " or the hub" }
                    ),
                )
            })?;
        let group_name = doc.group.get_ref();
        let group = hub_group(group_name)
            .or_else(|| {
                let key = group_key(group_name);
                state.groups.iter().find(|g| g.key() == key).map(|g| g.name.clone())
            })
            .ok_or_else(|| {
                at(
                    doc.group.span(),
                    format!(
                        "the hub has no group named '{group_name}' and the document does not declare it in [[groups]]"
                    ),
                )
            })?;
        let name = match &doc.name {
            Some(name) => validate_name("name", name).map_err(|e| at(entry.span(), message(e)))?,
            None => format!("{app} for {group}"),
        };
        let policy = PolicySpec { name, app, group };
        if !seen.insert(policy.key()) {
            return Err(at(
                entry.span(),
                format!(
                    "the group '{}' has two policies for the app '{}'",
                    policy.group, policy.app
                ),
            ));
        }
        state.policies.push(policy);
    }
    state.sort();
    Ok(state)
}

/// The message of a refusal, without the error kind's own prefix.
fn message(error: Error) -> String {
    match error {
        Error::Validation { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

fn ldap_source(
    text: &str,
    entry: &Spanned<LdapSourceDoc>,
    custom: &[String],
    known: &Known<'_>,
) -> Result<LdapSourceSpec> {
    let at = |span: Range<usize>, message: String| refusal(text, span, message);
    let doc = entry.get_ref();
    let name = doc.name.get_ref().clone();
    validate_source_name(&name).map_err(|e| at(doc.name.span(), message(e)))?;
    if let Some(literal) = &doc.bind_password {
        return Err(at(
            literal.span(),
            "a bind password is never written in the document: name a bind_password_file or bind_password_env".into(),
        ));
    }
    if doc.bind_password_file.is_some() && doc.bind_password_env.is_some() {
        return Err(at(
            entry.span(),
            format!("the LDAP source '{name}' names both bind_password_file and bind_password_env: keep one"),
        ));
    }
    let exists = known
        .current
        .ldap_sources
        .iter()
        .any(|s| s.name.to_lowercase() == name.to_lowercase());
    let named = doc.bind_password_file.is_some() || doc.bind_password_env.is_some();
    if !exists && !named {
        return Err(at(
            doc.name.span(),
            format!(
                "the new LDAP source '{name}' needs its bind password: name a bind_password_file or bind_password_env"
            ),
        ));
    }
    let password_digest = known.password_digests.get(&name).cloned();
    if named && password_digest.is_none() {
        return Err(at(
            doc.name.span(),
            format!("the bind password of the LDAP source '{name}' was not sent with the document"),
        ));
    }
    let base = match doc.preset {
        Some(preset) => serde_json::to_value(preset.settings()).map_err(|e| Error::Internal(e.to_string()))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let settings_span = doc.settings.as_ref().map_or(entry.span(), |s| s.span());
    let changes = match doc.settings.as_ref().map(|s| serde_json::to_value(s.get_ref())) {
        None => serde_json::Map::new(),
        Some(Ok(serde_json::Value::Object(map))) => map,
        Some(_) => return Err(at(settings_span, "settings must be a table".into())),
    };
    let settings = merge_settings(base, &changes).map_err(|e| at(settings_span.clone(), message(e)))?;
    settings
        .validate(custom)
        .map_err(|e| at(settings_span, format!("settings.{}", message(e))))?;
    Ok(LdapSourceSpec {
        name,
        settings,
        password_digest,
    })
}

fn app(text: &str, entry: &Spanned<AppDoc>, custom: &[String], known: &Known<'_>) -> Result<AppSpec> {
    let at = |span: Range<usize>, message: String| refusal(text, span, message);
    let doc = entry.get_ref();
    let name = validate_name("name", doc.name.get_ref()).map_err(|e| at(doc.name.span(), message(e)))?;
    if let Some(literal) = &doc.token {
        return Err(at(
            literal.span(),
            "a token is never written in the document: name a token_file or token_env".into(),
        ));
    }
    if doc.token_file.is_some() && doc.token_env.is_some() {
        return Err(at(
            entry.span(),
            format!("the app '{name}' names both token_file and token_env: keep one"),
        ));
    }
    let base_url = validate_base_url(doc.base_url.get_ref()).map_err(|e| at(doc.base_url.span(), message(e)))?;
    check_base_url_address(&base_url, known.allow_link_local).map_err(|e| at(doc.base_url.span(), message(e)))?;
    let preset_name = doc.preset.as_ref().map_or("generic", |p| p.get_ref().as_str());
    let preset_span = doc.preset.as_ref().map_or(entry.span(), |p| p.span());
    let preset = preset(preset_name)?.ok_or_else(|| {
        let names: Vec<String> = presets().unwrap_or_default().into_iter().map(|p| p.name).collect();
        at(
            preset_span.clone(),
            format!("unknown preset '{preset_name}' (the presets are {})", names.join(", ")),
        )
    })?;
    let exists = known
        .current
        .apps
        .iter()
        .any(|a| a.name.to_lowercase() == name.to_lowercase());
    let named = doc.token_file.is_some() || doc.token_env.is_some();
    if !exists && !named {
        return Err(at(
            doc.name.span(),
            format!("the new app '{name}' needs its bearer token: name a token_file or token_env"),
        ));
    }
    let token_digest = known.token_digests.get(doc.name.get_ref()).cloned();
    if named && token_digest.is_none() {
        return Err(at(
            doc.name.span(),
            format!("the token of the app '{name}' was not sent with the document"),
        ));
    }
    let features = preset
        .features
        .merged(&doc.features.as_ref().map(|f| *f.get_ref()).unwrap_or_default());
    let deprovision = {
        let base = Deprovisioning::uniform(DeprovisionAction::parse("deprovision", &preset.deprovision)?);
        match &doc.deprovision {
            None => base,
            Some(spanned) => {
                let d = spanned.get_ref();
                let merged = Deprovisioning {
                    on_unassign: d.on_unassign.unwrap_or(base.on_unassign),
                    on_deactivate: d.on_deactivate.unwrap_or(base.on_deactivate),
                    on_delete: d.on_delete.unwrap_or(base.on_delete),
                    delete_deactivated_after_days: d.delete_deactivated_after_days,
                };
                merged.validate().map_err(|e| at(spanned.span(), message(e)))?;
                merged
            }
        }
    };
    let flow = match &doc.flow {
        None => Default::default(),
        Some(spanned) => {
            spanned
                .get_ref()
                .validate()
                .map_err(|e| at(spanned.span(), message(e)))?;
            *spanned.get_ref()
        }
    };
    let mapping = match &doc.mapping {
        None => preset.mapping.clone(),
        Some(rows) => {
            let mut rules = Vec::with_capacity(rows.len());
            for row in rows {
                let rule = row.get_ref();
                let mut source =
                    Source::from_short(rule.source.get_ref()).map_err(|e| at(rule.source.span(), message(e)))?;
                if let Some(transform) = &rule.transform {
                    source = Transform::parse(transform)
                        .map_err(|e| at(row.span(), message(e)))?
                        .apply(source);
                }
                rules.push(MappingRule {
                    target: rule.target.get_ref().clone(),
                    source,
                });
            }
            Mapping { rules }
        }
    };
    mapping.check(|name| custom.iter().any(|c| c == name)).map_err(|e| {
        let line_span = match &e {
            Error::Validation { field, .. } => rule_index(field)
                .and_then(|i| doc.mapping.as_ref().and_then(|rows| rows.get(i)))
                .map_or(entry.span(), |row| {
                    let rule = row.get_ref();
                    if field.ends_with(".source") {
                        rule.source.span()
                    } else {
                        rule.target.span()
                    }
                }),
            _ => entry.span(),
        };
        at(line_span, format!("app '{name}': {}", message(e)))
    })?;
    Ok(AppSpec {
        name,
        preset: preset.name,
        base_url,
        enabled: doc.enabled.unwrap_or(true),
        features,
        deprovision,
        flow,
        mapping,
        token_digest,
    })
}

/// `3` of `mapping[3].source`.
fn rule_index(field: &str) -> Option<usize> {
    field.strip_prefix("mapping[")?.split(']').next()?.parse().ok()
}
