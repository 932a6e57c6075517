//! `plan_config`: what applying a desired configuration to the current one changes, object by
//! object, in the order the changes are applied (definitions before what uses them, deletions
//! last and in the reverse order). Declared directory groups are only ever created: one that
//! exists is no change, and prune never deletes a group (groups are directory data).

use super::{AppSpec, AttributeSpec, ConfigState, GroupSpec, LdapSourceSpec, PolicySpec};
use serde::{Deserialize, Serialize};

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// It is created.
    Create,
    /// Some of its fields change.
    Update,
    /// It is deleted (only with prune).
    Delete,
}

impl ChangeAction {
    /// The name used in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Delete => "delete",
        }
    }
}

/// The kind of object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A custom attribute definition.
    Attribute,
    /// An LDAP source.
    LdapSource,
    /// An app.
    App,
    /// A directory group a policy needs (only ever created).
    Group,
    /// A policy.
    Policy,
}

/// One change a plan lists and an apply makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigChange {
    /// Create, update or delete.
    pub action: ChangeAction,
    /// What kind of object.
    pub kind: ObjectKind,
    /// Its name (a policy: `APP -> GROUP`).
    pub name: String,
    /// For an update, the fields that change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl std::fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.action {
            ChangeAction::Create => '+',
            ChangeAction::Update => '~',
            ChangeAction::Delete => '-',
        };
        let kind = match self.kind {
            ObjectKind::Attribute => "attribute",
            ObjectKind::LdapSource => "ldap source",
            ObjectKind::App => "app",
            ObjectKind::Group => "group",
            ObjectKind::Policy => "policy",
        };
        write!(f, "{sign} {} {kind} {}", self.action, self.name)?;
        if !self.fields.is_empty() {
            write!(f, " ({})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// The changes that turn `current` into `desired`. Objects are matched by name regardless of
/// case (policies by app and group); what `desired` leaves out is deleted only with `prune`. A
/// secret digest of `None` in `desired` keeps the stored secret. A group of `desired` that
/// `current` lacks is created; groups are never updated or deleted, so `current.groups` must hold
/// every hub group that `desired` names.
pub fn plan_config(current: &ConfigState, desired: &ConfigState, prune: bool) -> Vec<ConfigChange> {
    let mut changes = Vec::new();
    diff(
        &mut changes,
        ObjectKind::Attribute,
        &current.attributes,
        &desired.attributes,
        |a| a.name.clone(),
        |a| a.name.clone(),
        attribute_fields,
    );
    diff(
        &mut changes,
        ObjectKind::LdapSource,
        &current.ldap_sources,
        &desired.ldap_sources,
        |s| s.name.to_lowercase(),
        |s| s.name.clone(),
        source_fields,
    );
    diff(
        &mut changes,
        ObjectKind::App,
        &current.apps,
        &desired.apps,
        |a| a.name.to_lowercase(),
        |a| a.name.clone(),
        app_fields,
    );
    diff(
        &mut changes,
        ObjectKind::Group,
        &current.groups,
        &desired.groups,
        GroupSpec::key,
        |g| g.name.clone(),
        |_, _| Vec::new(),
    );
    diff(
        &mut changes,
        ObjectKind::Policy,
        &current.policies,
        &desired.policies,
        PolicySpec::key,
        PolicySpec::label,
        policy_fields,
    );
    if prune {
        let mut deletions = Vec::new();
        gone(
            &mut deletions,
            ObjectKind::Policy,
            &current.policies,
            &desired.policies,
            PolicySpec::key,
            PolicySpec::label,
        );
        gone(
            &mut deletions,
            ObjectKind::App,
            &current.apps,
            &desired.apps,
            |a| a.name.to_lowercase(),
            |a| a.name.clone(),
        );
        gone(
            &mut deletions,
            ObjectKind::LdapSource,
            &current.ldap_sources,
            &desired.ldap_sources,
            |s| s.name.to_lowercase(),
            |s| s.name.clone(),
        );
        gone(
            &mut deletions,
            ObjectKind::Attribute,
            &current.attributes,
            &desired.attributes,
            |a| a.name.clone(),
            |a| a.name.clone(),
        );
        changes.extend(deletions);
    }
    changes
}

/// Creations and updates of one kind, in `desired`'s order.
fn diff<T, K: PartialEq>(
    changes: &mut Vec<ConfigChange>,
    kind: ObjectKind,
    current: &[T],
    desired: &[T],
    key: impl Fn(&T) -> K,
    label: impl Fn(&T) -> String,
    fields: impl Fn(&T, &T) -> Vec<&'static str>,
) {
    for wanted in desired {
        match current.iter().find(|c| key(c) == key(wanted)) {
            None => changes.push(ConfigChange {
                action: ChangeAction::Create,
                kind,
                name: label(wanted),
                fields: Vec::new(),
            }),
            Some(existing) => {
                let changed = fields(existing, wanted);
                if !changed.is_empty() {
                    changes.push(ConfigChange {
                        action: ChangeAction::Update,
                        kind,
                        name: label(wanted),
                        fields: changed.into_iter().map(str::to_owned).collect(),
                    });
                }
            }
        }
    }
}

/// Deletions of one kind: what `current` has and `desired` does not.
fn gone<T, K: PartialEq>(
    changes: &mut Vec<ConfigChange>,
    kind: ObjectKind,
    current: &[T],
    desired: &[T],
    key: impl Fn(&T) -> K,
    label: impl Fn(&T) -> String,
) {
    for existing in current {
        if !desired.iter().any(|d| key(d) == key(existing)) {
            changes.push(ConfigChange {
                action: ChangeAction::Delete,
                kind,
                name: label(existing),
                fields: Vec::new(),
            });
        }
    }
}

fn attribute_fields(a: &AttributeSpec, b: &AttributeSpec) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if a.display_name != b.display_name {
        fields.push("display_name");
    }
    if a.kind != b.kind {
        fields.push("type");
    }
    if a.required != b.required {
        fields.push("required");
    }
    if a.description != b.description {
        fields.push("description");
    }
    fields
}

fn source_fields(a: &LdapSourceSpec, b: &LdapSourceSpec) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if a.name != b.name {
        fields.push("name");
    }
    if a.settings != b.settings {
        fields.push("settings");
    }
    if b.password_digest.is_some() && a.password_digest != b.password_digest {
        fields.push("bind_password");
    }
    fields
}

fn app_fields(a: &AppSpec, b: &AppSpec) -> Vec<&'static str> {
    let mut fields = Vec::new();
    for (field, changed) in [
        ("name", a.name != b.name),
        ("preset", a.preset != b.preset),
        ("base_url", a.base_url != b.base_url),
        ("token", b.token_digest.is_some() && a.token_digest != b.token_digest),
        ("enabled", a.enabled != b.enabled),
        ("features", a.features != b.features),
        ("deprovision", a.deprovision != b.deprovision),
        ("flow", a.flow != b.flow),
        ("mapping", a.mapping != b.mapping),
    ] {
        if changed {
            fields.push(field);
        }
    }
    fields
}

fn policy_fields(a: &PolicySpec, b: &PolicySpec) -> Vec<&'static str> {
    if a.name != b.name { vec!["name"] } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::app::{Deprovisioning, Features, FlowControl};
    use crate::domain::attribute::AttributeType;
    use crate::domain::mapping::preset;

    fn attribute(name: &str) -> AttributeSpec {
        AttributeSpec {
            name: name.into(),
            display_name: name.into(),
            kind: AttributeType::String,
            required: false,
            description: None,
        }
    }

    fn app(name: &str, token: Option<&str>) -> AppSpec {
        AppSpec {
            name: name.into(),
            preset: "generic".into(),
            base_url: "https://example.com/scim/v2".into(),
            enabled: true,
            features: Features::default(),
            deprovision: Deprovisioning::default(),
            flow: FlowControl::default(),
            mapping: preset("generic").unwrap().unwrap().mapping,
            token_digest: token.map(str::to_owned),
        }
    }

    fn policy(app: &str, group: &str) -> PolicySpec {
        PolicySpec {
            name: format!("{app} for {group}"),
            app: app.into(),
            group: group.into(),
        }
    }

    fn group(name: &str) -> GroupSpec {
        GroupSpec { name: name.into() }
    }

    fn state() -> ConfigState {
        ConfigState {
            attributes: vec![attribute("title")],
            apps: vec![app("Monday", Some("aa"))],
            groups: vec![group("Sales")],
            policies: vec![policy("Monday", "Sales")],
            ldap_sources: Vec::new(),
        }
    }

    #[test]
    fn the_same_state_plans_nothing() {
        assert!(plan_config(&state(), &state(), true).is_empty());
        let mut keep_token = state();
        keep_token.apps[0].token_digest = None;
        assert!(
            plan_config(&state(), &keep_token, true).is_empty(),
            "no token sent keeps it"
        );
    }

    #[test]
    fn an_empty_hub_gets_everything_created_in_dependency_order() {
        let plan = plan_config(&ConfigState::default(), &state(), false);
        let kinds: Vec<(ChangeAction, ObjectKind)> = plan.iter().map(|c| (c.action, c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeAction::Create, ObjectKind::Attribute),
                (ChangeAction::Create, ObjectKind::App),
                (ChangeAction::Create, ObjectKind::Group),
                (ChangeAction::Create, ObjectKind::Policy),
            ]
        );
        assert_eq!(plan[2].to_string(), "+ create group Sales");
        assert_eq!(plan[3].name, "Monday -> Sales");
        assert_eq!(plan[3].to_string(), "+ create policy Monday -> Sales");
    }

    #[test]
    fn updates_name_the_fields_that_change() {
        let mut desired = state();
        desired.apps[0].token_digest = Some("bb".into());
        desired.apps[0].features.push_groups = true;
        desired.apps[0].name = "MONDAY".into();
        desired.policies[0].app = "MONDAY".into();
        desired.attributes[0].required = true;
        let plan = plan_config(&state(), &desired, false);
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert_eq!(plan[0].fields, vec!["required"]);
        assert_eq!(plan[1].fields, vec!["name", "token", "features"]);
        assert_eq!(plan[1].to_string(), "~ update app MONDAY (name, token, features)");
    }

    #[test]
    fn what_the_document_leaves_out_goes_only_with_prune() {
        let desired = ConfigState::default();
        assert!(plan_config(&state(), &desired, false).is_empty());
        let plan = plan_config(&state(), &desired, true);
        let kinds: Vec<(ChangeAction, ObjectKind)> = plan.iter().map(|c| (c.action, c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeAction::Delete, ObjectKind::Policy),
                (ChangeAction::Delete, ObjectKind::App),
                (ChangeAction::Delete, ObjectKind::Attribute),
            ],
            "what uses a definition goes first"
        );
    }

    #[test]
    fn declared_groups_are_only_ever_created() {
        let mut desired = state();
        desired.groups = vec![group("SALES")];
        assert!(
            plan_config(&state(), &desired, true).is_empty(),
            "a group that exists is no change, whatever its case"
        );
        desired.groups = vec![group("Cafe\u{0301}")];
        let mut current = state();
        current.groups.push(group("caf\u{e9}"));
        assert!(
            plan_config(&current, &desired, false).is_empty(),
            "names compare as the directory compares them"
        );
        desired.groups.push(group("Support"));
        let plan = plan_config(&current, &desired, true);
        assert_eq!(
            plan.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["+ create group Support"],
            "prune deletes no group: {plan:?}"
        );
        let plan = plan_config(&state(), &ConfigState::default(), true);
        assert!(plan.iter().all(|c| c.kind != ObjectKind::Group), "{plan:?}");
    }

    #[test]
    fn policies_are_matched_by_app_and_group_regardless_of_case() {
        let mut desired = state();
        desired.policies[0] = PolicySpec {
            name: "Monday for Sales".into(),
            app: "monday".into(),
            group: "SALES".into(),
        };
        assert!(plan_config(&state(), &desired, true).is_empty());
        desired.policies[0].name = "Sales team".into();
        let plan = plan_config(&state(), &desired, true);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            (plan[0].action, plan[0].fields.clone()),
            (ChangeAction::Update, vec!["name".to_owned()])
        );
    }

    #[test]
    fn a_policys_group_is_matched_as_the_directory_compares_group_names() {
        // The hub stores group names in Unicode NFC; a document may spell the same name
        // decomposed (e + combining acute accent).
        let mut current = state();
        current.policies[0].group = "Caf\u{e9}".into();
        let mut desired = state();
        desired.policies[0].group = "CAFE\u{301}".into();
        let plan = plan_config(&current, &desired, true);
        assert!(plan.is_empty(), "one policy, not a new one and a removed one: {plan:?}");
    }
}
