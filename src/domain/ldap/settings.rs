//! A source's settings: where and how it is read, how entries become users and groups, the
//! disabled rule, the change marker of incremental syncs, the presets, and how an administrator's
//! input becomes settings (merged over a preset or the stored ones, then checked).

use super::{LdapEntry, MAX_PAGE_SIZE, PROFILE_FIELDS};
use crate::domain::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How group membership is written in the directory server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStyle {
    /// Groups list their members' DNs (`member`, `uniqueMember`): [`LdapSettings::member_attribute`]
    /// is read on groups.
    GroupMembers,
    /// Users list their groups' DNs (`memberOf`): [`LdapSettings::member_attribute`] is read on
    /// users.
    UserMemberOf,
}

/// Which entries count as disabled (their users are deactivated in the hub).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DisabledRule {
    /// No entry is disabled: only users gone from the source are deactivated.
    Never,
    /// Active Directory: bit 2 (`ACCOUNTDISABLE`) of `userAccountControl` is set.
    AdAccountControl,
    /// An attribute holds a value (compared ignoring case), e.g. `nsAccountLock` = `true`.
    AttributeEquals {
        /// The LDAP attribute.
        attribute: String,
        /// The value that means disabled.
        value: String,
    },
}

/// The attribute an incremental sync asks for entries changed since the last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeMarker {
    /// `modifyTimestamp` (OpenLDAP and most servers; one-second resolution).
    ModifyTimestamp,
    /// `uSNChanged` (Active Directory; per domain controller).
    UsnChanged,
}

impl ChangeMarker {
    /// The LDAP attribute.
    pub fn attribute(self) -> &'static str {
        match self {
            ChangeMarker::ModifyTimestamp => "modifyTimestamp",
            ChangeMarker::UsnChanged => "uSNChanged",
        }
    }

    /// The later of two marker values: numbers for `uSNChanged`, generalized times (which sort
    /// as text when written alike) for `modifyTimestamp`.
    pub fn later<'a>(self, a: &'a str, b: &'a str) -> &'a str {
        let a_first = match self {
            ChangeMarker::UsnChanged => match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
                (Ok(x), Ok(y)) => x >= y,
                (Ok(_), Err(_)) => true,
                (Err(_), _) => false,
            },
            ChangeMarker::ModifyTimestamp => a >= b,
        };
        if a_first { a } else { b }
    }

    /// The latest marker value the entries carry, and `since` when none is later.
    pub fn latest<'a>(
        self,
        entries: impl IntoIterator<Item = &'a LdapEntry>,
        since: Option<&'a str>,
    ) -> Option<String> {
        let mut latest = since;
        for entry in entries {
            if let Some(value) = entry.first(self.attribute()) {
                latest = Some(match latest {
                    Some(current) => self.later(current, value),
                    None => value,
                });
            }
        }
        latest.map(str::to_owned)
    }

    /// The filter that selects entries changed at or after `since`, within `filter`.
    pub fn changed_since(self, filter: &str, since: &str) -> String {
        let escaped: String = since
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '-' | '+'))
            .collect();
        format!("(&{filter}({}>={escaped}))", self.attribute())
    }
}

/// Where and how a source is read, and how its entries become directory users and groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// PEM certificate(s) of the CA that signed the server's certificate, when it is not a
    /// public one (used for `ldaps://` and StartTLS).
    #[serde(default)]
    pub ca_certificate: Option<String>,
    /// The DN the hub binds as (a read-only service account).
    pub bind_dn: String,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// Which entries below it are users.
    pub user_filter: String,
    /// Where groups are searched (subtree); no groups are read when absent.
    #[serde(default)]
    pub group_base: Option<String>,
    /// Which entries below it are groups.
    pub group_filter: String,
    /// The attribute that identifies an entry for good, whatever its DN: `entryUUID`
    /// (OpenLDAP), `objectGUID` (Active Directory).
    pub unique_id: String,
    /// The attribute that becomes the username: `uid`, `sAMAccountName`, `userPrincipalName`.
    pub username_attribute: String,
    /// The attribute that becomes a group's name (`cn`).
    pub group_name_attribute: String,
    /// Profile field (`given_name`, `family_name`, `display_name`, `formatted_name`, `email`) or
    /// custom attribute name -> the LDAP attribute it is read from.
    pub profile: BTreeMap<String, String>,
    /// How membership is written.
    pub membership: MembershipStyle,
    /// The membership attribute: `member`, `uniqueMember` (on groups) or `memberOf` (on users).
    pub member_attribute: String,
    /// Members of member groups count as members (Active Directory's nested groups), with
    /// membership written on groups.
    #[serde(default)]
    pub nested_groups: bool,
    /// Which entries are disabled.
    pub disabled: DisabledRule,
    /// Entries per page of the paged search.
    pub page_size: u32,
    /// The attribute an incremental sync filters on; incremental syncs are refused without it.
    #[serde(default)]
    pub change_marker: Option<ChangeMarker>,
    /// Users gone from the source (or outside its filter) are deactivated at once and deleted
    /// after this many days; never deleted when absent.
    #[serde(default)]
    pub delete_after_days: Option<u32>,
    /// Sync every this many minutes; only on demand when absent.
    #[serde(default)]
    pub sync_every_minutes: Option<u32>,
}

/// What an administrator sends to create a source: a name, the bind password, and settings,
/// which complete the preset's when one is named.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLdapSource {
    /// Unique name.
    pub name: String,
    /// Settings to start from.
    #[serde(default)]
    pub preset: Option<LdapPreset>,
    /// The bind DN's password (stored encrypted, never shown).
    pub bind_password: String,
    /// Settings (see [`LdapSettings`]); with a preset, only those that differ from it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// A change to a source: the fields given replace the stored ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSourceUpdate {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New bind password.
    #[serde(default)]
    pub bind_password: Option<String>,
    /// Settings to change (see [`LdapSettings`]).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// `base` with the keys of `changes` replaced, read as settings; a wrong or missing key is a
/// validation error naming it.
pub fn merge_settings(
    base: serde_json::Value,
    changes: &serde_json::Map<String, serde_json::Value>,
) -> Result<LdapSettings> {
    let mut merged = match base {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    for (key, value) in changes {
        merged.insert(key.clone(), value.clone());
    }
    serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| Error::invalid("settings", e.to_string()))
}

/// Checks a source's name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn validate_source_name(name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// A preset: the settings an Active Directory or OpenLDAP server usually needs, which the
/// administrator completes with the URL, bind DN and bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LdapPreset {
    /// Microsoft Active Directory.
    ActiveDirectory,
    /// OpenLDAP (and other servers with inetOrgPerson and groupOfNames).
    Openldap,
}

impl LdapPreset {
    /// The preset's settings, with empty URL, bind DN and user base.
    pub fn settings(self) -> LdapSettings {
        let profile = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(field, attribute)| ((*field).to_owned(), (*attribute).to_owned()))
                .collect()
        };
        match self {
            LdapPreset::ActiveDirectory => LdapSettings {
                url: String::new(),
                starttls: false,
                ca_certificate: None,
                bind_dn: String::new(),
                user_base: String::new(),
                user_filter: "(&(objectCategory=person)(objectClass=user))".into(),
                group_base: None,
                group_filter: "(objectClass=group)".into(),
                unique_id: "objectGUID".into(),
                username_attribute: "sAMAccountName".into(),
                group_name_attribute: "cn".into(),
                profile: profile(&[
                    ("given_name", "givenName"),
                    ("family_name", "sn"),
                    ("display_name", "displayName"),
                    ("email", "mail"),
                ]),
                membership: MembershipStyle::GroupMembers,
                member_attribute: "member".into(),
                nested_groups: true,
                disabled: DisabledRule::AdAccountControl,
                page_size: 1000,
                change_marker: Some(ChangeMarker::UsnChanged),
                delete_after_days: None,
                sync_every_minutes: None,
            },
            LdapPreset::Openldap => LdapSettings {
                url: String::new(),
                starttls: false,
                ca_certificate: None,
                bind_dn: String::new(),
                user_base: String::new(),
                user_filter: "(objectClass=inetOrgPerson)".into(),
                group_base: None,
                group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))".into(),
                unique_id: "entryUUID".into(),
                username_attribute: "uid".into(),
                group_name_attribute: "cn".into(),
                profile: profile(&[
                    ("given_name", "givenName"),
                    ("family_name", "sn"),
                    ("display_name", "cn"),
                    ("email", "mail"),
                ]),
                membership: MembershipStyle::GroupMembers,
                member_attribute: "member".into(),
                nested_groups: false,
                disabled: DisabledRule::Never,
                page_size: 500,
                change_marker: Some(ChangeMarker::ModifyTimestamp),
                delete_after_days: None,
                sync_every_minutes: None,
            },
        }
    }
}

impl LdapSettings {
    /// Checks the settings that need no server: URL scheme, StartTLS only on `ldap://`, the
    /// required DNs and attribute names, the page size, and that every profile key is a profile
    /// field or one of the custom attributes `custom` names. Filters are checked by the LDAP
    /// client's parser, which the service calls.
    pub fn validate(&self, custom: &[String]) -> Result<()> {
        let scheme = self
            .url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("ldap") => {}
            Some("ldaps") if self.starttls => {
                return Err(Error::invalid(
                    "starttls",
                    "StartTLS is for ldap:// URLs; ldaps:// is TLS from the start",
                ));
            }
            Some("ldaps") => {}
            _ => return Err(Error::invalid("url", "must start with ldap:// or ldaps://")),
        }
        if self
            .url
            .split_once("://")
            .is_none_or(|(_, rest)| rest.trim_matches('/').is_empty())
        {
            return Err(Error::invalid("url", "names no host"));
        }
        for (field, value) in [
            ("bind_dn", &self.bind_dn),
            ("user_base", &self.user_base),
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
            ("unique_id", &self.unique_id),
            ("username_attribute", &self.username_attribute),
            ("group_name_attribute", &self.group_name_attribute),
            ("member_attribute", &self.member_attribute),
        ] {
            if value.trim().is_empty() {
                return Err(Error::invalid(field, "is required"));
            }
        }
        if self.group_base.as_deref().is_some_and(|base| base.trim().is_empty()) {
            return Err(Error::invalid("group_base", "is empty: leave it out to read no groups"));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if let DisabledRule::AttributeEquals { attribute, .. } = &self.disabled
            && attribute.trim().is_empty()
        {
            return Err(Error::invalid("disabled.attribute", "is required"));
        }
        for (field, attribute) in &self.profile {
            if !PROFILE_FIELDS.contains(&field.as_str()) && !custom.contains(field) {
                return Err(Error::invalid(
                    format!("profile.{field}"),
                    format!(
                        "is neither a profile field ({}) nor a custom attribute",
                        PROFILE_FIELDS.join(", ")
                    ),
                ));
            }
            if attribute.trim().is_empty() {
                return Err(Error::invalid(format!("profile.{field}"), "names no LDAP attribute"));
            }
        }
        if self.sync_every_minutes == Some(0) {
            return Err(Error::invalid("sync_every_minutes", "must be at least 1"));
        }
        Ok(())
    }

    /// The user fields a source owns, named as `User::apply` names changed fields: the username,
    /// `active`, and each mapped profile field (custom attributes as `attributes.NAME`).
    pub fn owned_user_fields(&self) -> Vec<String> {
        let mut owned = vec!["username".to_owned(), "active".to_owned()];
        owned.extend(self.profile.keys().map(|field| {
            if PROFILE_FIELDS.contains(&field.as_str()) {
                field.clone()
            } else {
                format!("attributes.{field}")
            }
        }));
        owned
    }

    /// The attributes to ask for on user entries.
    pub fn user_attributes(&self) -> Vec<String> {
        let mut wanted = vec![self.unique_id.clone(), self.username_attribute.clone()];
        wanted.extend(self.profile.values().cloned());
        if self.membership == MembershipStyle::UserMemberOf {
            wanted.push(self.member_attribute.clone());
        }
        match &self.disabled {
            DisabledRule::Never => {}
            DisabledRule::AdAccountControl => wanted.push("userAccountControl".into()),
            DisabledRule::AttributeEquals { attribute, .. } => wanted.push(attribute.clone()),
        }
        if let Some(marker) = self.change_marker {
            wanted.push(marker.attribute().into());
        }
        dedup_ignoring_case(wanted)
    }

    /// The attributes to ask for on group entries.
    pub fn group_attributes(&self) -> Vec<String> {
        let mut wanted = vec![self.unique_id.clone(), self.group_name_attribute.clone()];
        if self.membership == MembershipStyle::GroupMembers {
            wanted.push(self.member_attribute.clone());
        }
        if let Some(marker) = self.change_marker {
            wanted.push(marker.attribute().into());
        }
        dedup_ignoring_case(wanted)
    }
}

fn dedup_ignoring_case(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|name| seen.insert(name.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn openldap() -> LdapSettings {
        LdapSettings {
            url: "ldap://127.0.0.1:389".into(),
            bind_dn: "cn=reader,dc=example,dc=org".into(),
            user_base: "ou=people,dc=example,dc=org".into(),
            ..LdapPreset::Openldap.settings()
        }
    }

    #[test]
    fn presets_completed_with_url_dn_and_base_are_valid() {
        assert!(openldap().validate(&[]).is_ok());
        let ad = LdapSettings {
            url: "ldaps://dc1.corp.example".into(),
            bind_dn: "CN=svc,CN=Users,DC=corp,DC=example".into(),
            user_base: "DC=corp,DC=example".into(),
            ..LdapPreset::ActiveDirectory.settings()
        };
        assert!(ad.validate(&[]).is_ok());
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_their_field() {
        let field = |settings: LdapSettings| match settings.validate(&["title".into()]) {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(
            field(LdapSettings {
                url: "http://x".into(),
                ..openldap()
            }),
            "url"
        );
        assert_eq!(
            field(LdapSettings {
                url: "ldap://".into(),
                ..openldap()
            }),
            "url"
        );
        assert_eq!(
            field(LdapSettings {
                url: "ldaps://x".into(),
                starttls: true,
                ..openldap()
            }),
            "starttls"
        );
        assert_eq!(
            field(LdapSettings {
                unique_id: " ".into(),
                ..openldap()
            }),
            "unique_id"
        );
        assert_eq!(
            field(LdapSettings {
                page_size: 0,
                ..openldap()
            }),
            "page_size"
        );
        let mut profile = openldap().profile;
        profile.insert("shoe_size".into(), "shoeSize".into());
        assert_eq!(field(LdapSettings { profile, ..openldap() }), "profile.shoe_size");
        let mut profile = openldap().profile;
        profile.insert("title".into(), "title".into());
        assert!(
            LdapSettings { profile, ..openldap() }
                .validate(&["title".into()])
                .is_ok()
        );
    }

    #[test]
    fn change_markers_compare_as_their_kind() {
        assert_eq!(ChangeMarker::UsnChanged.later("999", "1000"), "1000");
        assert_eq!(
            ChangeMarker::ModifyTimestamp.later("20261201120000Z", "20261130235959Z"),
            "20261201120000Z"
        );
        let entry = |marker: &str| LdapEntry {
            attributes: HashMap::from([("modifytimestamp".to_owned(), vec![marker.to_owned()])]),
            ..LdapEntry::default()
        };
        let entries = [entry("20261201120000Z"), entry("20261201120005Z")];
        assert_eq!(
            ChangeMarker::ModifyTimestamp
                .latest(&entries, Some("20261201110000Z"))
                .as_deref(),
            Some("20261201120005Z")
        );
        assert_eq!(
            ChangeMarker::ModifyTimestamp.changed_since("(objectClass=x)", "20261201120005Z"),
            "(&(objectClass=x)(modifyTimestamp>=20261201120005Z))"
        );
        assert_eq!(
            ChangeMarker::UsnChanged.changed_since("(a=b)", "12)(x=*"),
            "(&(a=b)(uSNChanged>=12x))"
        );
    }

    #[test]
    fn attributes_asked_for_follow_the_settings() {
        let mut settings = openldap();
        settings.membership = MembershipStyle::UserMemberOf;
        settings.member_attribute = "memberOf".into();
        let asked = settings.user_attributes();
        assert!(asked.contains(&"entryUUID".to_owned()));
        assert!(asked.contains(&"memberOf".to_owned()));
        assert!(asked.contains(&"modifyTimestamp".to_owned()));
        assert_eq!(asked.iter().filter(|a| a.eq_ignore_ascii_case("cn")).count(), 1);
        assert!(!settings.group_attributes().contains(&"member".to_owned()));
    }
}
