//! LDAP and Active Directory sources: where a source's people and groups are read from, how
//! their LDAP attributes become the directory's profile (default and custom attributes), which
//! entries count as disabled, and the presets for Active Directory and OpenLDAP. The entries a
//! sync reads are [`LdapEntry`] values; what a sync does with them is decided by the pure
//! planner in [`plan`]. No network and no SQL here.

pub mod plan;
pub mod run;
mod settings;

pub use settings::{
    ChangeMarker, DisabledRule, LdapPreset, LdapSettings, LdapSourceUpdate, MembershipStyle, NewLdapSource,
    merge_settings, validate_source_name,
};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The profile fields a source may map (besides the username, which has its own setting, and
/// `active`, which the disabled rule decides). Any other key of [`LdapSettings::profile`] names a
/// custom attribute.
pub const PROFILE_FIELDS: [&str; 5] = ["given_name", "family_name", "display_name", "formatted_name", "email"];

/// Most entries per page of a paged search.
pub const MAX_PAGE_SIZE: u32 = 5_000;

/// A configured source: its settings, without the bind password (stored encrypted, never shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LdapSource {
    /// Stable identifier.
    pub id: Uuid,
    /// Unique name, shown in reports and the change log (`ldap:NAME`).
    pub name: String,
    /// Where and how to read.
    pub settings: LdapSettings,
    /// When the source was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When its settings last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

stored_enum!(
    /// What a link ties an entry to.
    LinkKind {
        /// A directory user.
        User => "user",
        /// A directory group.
        Group => "group",
    }
);

/// A hub user or group a source owns, tied to the unique id of its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapLink {
    /// User or group.
    pub kind: LinkKind,
    /// The entry's unique id.
    pub ldap_id: String,
    /// The user's or group's id.
    pub hub_id: Uuid,
    /// The entry's DN when last read.
    pub dn: String,
    /// Since when the entry is missing from the source.
    pub gone_since: Option<OffsetDateTime>,
}

/// One entry as the directory server returned it: its DN, its unique id (as text: a UUID for
/// `entryUUID` and `objectGUID`), and its attributes by lower-cased name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LdapEntry {
    /// The distinguished name.
    pub dn: String,
    /// The unique id's value.
    pub id: String,
    /// Attribute values by lower-cased attribute name.
    pub attributes: HashMap<String, Vec<String>>,
}

impl LdapEntry {
    /// The first value of `attribute` (any case), if any.
    pub fn first(&self, attribute: &str) -> Option<&str> {
        self.values(attribute).first().map(String::as_str)
    }

    /// Every value of `attribute` (any case).
    pub fn values(&self, attribute: &str) -> &[String] {
        self.attributes
            .get(&attribute.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `rule` says this entry is disabled.
    pub fn is_disabled(&self, rule: &DisabledRule) -> bool {
        match rule {
            DisabledRule::Never => false,
            DisabledRule::AdAccountControl => self
                .first("userAccountControl")
                .and_then(|flags| flags.trim().parse::<i64>().ok())
                .is_some_and(|flags| flags & 2 != 0),
            DisabledRule::AttributeEquals { attribute, value } => self
                .values(attribute)
                .iter()
                .any(|held| held.trim().eq_ignore_ascii_case(value.trim())),
        }
    }
}

/// A DN in the form used to compare DNs: lower-cased, with the spaces around `,` and `=`
/// removed. (Enough for the DNs a server writes back as it stored them; escaped commas stay.)
pub fn dn_key(dn: &str) -> String {
    let mut key = String::with_capacity(dn.len());
    let mut escaped = false;
    let mut pending_space = false;
    for c in dn.chars() {
        if escaped {
            key.extend(c.to_lowercase());
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                if pending_space {
                    key.push(' ');
                    pending_space = false;
                }
                key.push(c);
                escaped = true;
            }
            ',' | '=' | '+' => {
                pending_space = false;
                while key.ends_with(' ') {
                    key.pop();
                }
                key.push(c);
            }
            ' ' => {
                if !(key.is_empty() || key.ends_with([',', '=', '+'])) {
                    pending_space = true;
                }
            }
            _ => {
                if pending_space {
                    key.push(' ');
                    pending_space = false;
                }
                key.extend(c.to_lowercase());
            }
        }
    }
    key
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_rules_read_the_entry() {
        let entry = |name: &str, value: &str| LdapEntry {
            attributes: HashMap::from([(name.to_ascii_lowercase(), vec![value.to_owned()])]),
            ..LdapEntry::default()
        };
        assert!(entry("userAccountControl", "514").is_disabled(&DisabledRule::AdAccountControl));
        assert!(!entry("userAccountControl", "512").is_disabled(&DisabledRule::AdAccountControl));
        assert!(!entry("userAccountControl", "junk").is_disabled(&DisabledRule::AdAccountControl));
        let lock = DisabledRule::AttributeEquals {
            attribute: "nsAccountLock".into(),
            value: "TRUE".into(),
        };
        assert!(entry("nsaccountlock", "true").is_disabled(&lock));
        assert!(!entry("nsaccountlock", "false").is_disabled(&lock));
        assert!(!LdapEntry::default().is_disabled(&lock));
    }

    #[test]
    fn dn_keys_ignore_case_and_spaces_around_separators() {
        assert_eq!(
            dn_key("CN=Ann Lee, OU=People,DC=Example, DC=org"),
            "cn=ann lee,ou=people,dc=example,dc=org"
        );
        assert_eq!(dn_key("uid=a\\2Cb , ou=x"), "uid=a\\2cb,ou=x");
        assert_eq!(dn_key("cn = x"), "cn=x");
    }
}
