//! Directory users: the default profile, custom attribute values and the rules a change must obey.

use super::attribute::AttributeDefinition;
use super::error::{Error, Result};
use super::values::{EmailAddress, Username, profile_text};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Largest serialized size of a user's `extensions` document.
pub const MAX_EXTENSIONS_BYTES: usize = 64 * 1024;

/// Where a user record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// Created by an administrator in Provisio.
    Local,
    /// Pushed in by an identity provider over SCIM.
    Scim,
    /// Read from an LDAP or Active Directory source.
    Ldap,
    /// Imported from an app's accounts.
    Import,
}

impl UserSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserSource::Local => "local",
            UserSource::Scim => "scim",
            UserSource::Ldap => "ldap",
            UserSource::Import => "import",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "local" => UserSource::Local,
            "scim" => UserSource::Scim,
            "ldap" => UserSource::Ldap,
            "import" => UserSource::Import,
            other => {
                return Err(Error::Storage(format!("unknown user source '{other}' in the store")));
            }
        })
    }
}

/// A person in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Stable identifier.
    pub id: Uuid,
    /// Login name, unique regardless of case.
    pub username: String,
    /// First name.
    pub given_name: Option<String>,
    /// Last name.
    pub family_name: Option<String>,
    /// Full name, as shown to people.
    pub display_name: Option<String>,
    /// Formatted name (SCIM `name.formatted`).
    pub formatted_name: Option<String>,
    /// Primary email address.
    pub email: Option<String>,
    /// Whether the user may have accounts; inactive users are deprovisioned.
    pub active: bool,
    /// Identifier the user has in the system that created it.
    pub external_id: Option<String>,
    /// Where the record came from.
    pub source: UserSource,
    /// Values of custom attributes, by attribute name.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Value>,
    /// Further profile data (SCIM core and enterprise attributes such as phone numbers,
    /// addresses, department or manager), kept as a JSON document.
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
    /// Increases by one with every change; used for optimistic concurrency and ETags.
    pub version: i64,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the user last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// What an administrator (or a source) supplies to create a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name (required).
    pub username: String,
    /// First name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Full name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Formatted name.
    #[serde(default)]
    pub formatted_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Defaults to `true`.
    #[serde(default)]
    pub active: Option<bool>,
    /// Identifier in the originating system.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Custom attribute values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Value>,
    /// Further profile data as a JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub extensions: Option<Map<String, Value>>,
}

impl NewUser {
    /// The update that makes an existing user hold exactly these fields: absent ones are cleared,
    /// custom attributes not given are removed (`definitions` lists them all), `active` defaults to
    /// `true`, and `extensions` is replaced (emptied when absent).
    pub fn into_replacement(self, definitions: &[AttributeDefinition]) -> UserUpdate {
        let mut attributes = self.attributes;
        for def in definitions {
            attributes.entry(def.name.clone()).or_insert(Value::Null);
        }
        UserUpdate {
            username: Some(self.username),
            given_name: Some(self.given_name),
            family_name: Some(self.family_name),
            display_name: Some(self.display_name),
            formatted_name: Some(self.formatted_name),
            email: Some(self.email),
            active: Some(self.active.unwrap_or(true)),
            external_id: Some(self.external_id),
            attributes,
            extensions: Some(self.extensions.unwrap_or_default()),
        }
    }
}

/// A partial change to a user: absent fields stay as they are, `null` clears a field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// New login name.
    #[serde(default)]
    pub username: Option<String>,
    /// New first name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    /// New last name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    /// New full name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// New formatted name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub formatted_name: Option<Option<String>>,
    /// New email, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Activate or deactivate.
    #[serde(default)]
    pub active: Option<bool>,
    /// New external id, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    /// Custom attribute values to set; `null` removes a value.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Value>,
    /// Replaces the extensions document when present.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub extensions: Option<Map<String, Value>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn validate_extensions(extensions: Map<String, Value>) -> Result<Map<String, Value>> {
    let size = serde_json::to_vec(&extensions).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_EXTENSIONS_BYTES {
        return Err(Error::invalid(
            "extensions",
            format!("must be at most {MAX_EXTENSIONS_BYTES} bytes of JSON"),
        ));
    }
    Ok(extensions)
}

fn normalize_attributes(
    values: BTreeMap<String, Value>,
    definitions: &[AttributeDefinition],
) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for (name, value) in values {
        let Some(def) = definitions.iter().find(|d| d.name == name) else {
            return Err(Error::invalid(
                format!("attributes.{name}"),
                format!("'{name}' is not a defined custom attribute"),
            ));
        };
        if value.is_null() {
            continue;
        }
        out.insert(name, def.normalize(&value)?);
    }
    Ok(out)
}

fn check_required(attributes: &BTreeMap<String, Value>, definitions: &[AttributeDefinition]) -> Result<()> {
    for def in definitions.iter().filter(|d| d.required) {
        if !attributes.contains_key(&def.name) {
            return Err(Error::invalid(
                format!("attributes.{}", def.name),
                format!("'{}' is a required attribute", def.name),
            ));
        }
    }
    Ok(())
}

fn parse_email(value: Option<String>) -> Result<Option<String>> {
    match profile_text("email", value)? {
        None => Ok(None),
        Some(v) => Ok(Some(EmailAddress::parse(&v)?.as_str().to_owned())),
    }
}

impl User {
    /// Builds a new user from `input`, checking every rule against the attribute `definitions`.
    pub fn create(
        input: NewUser,
        definitions: &[AttributeDefinition],
        source: UserSource,
        now: OffsetDateTime,
    ) -> Result<User> {
        let username = Username::parse(&input.username)?;
        let attributes = normalize_attributes(input.attributes, definitions)?;
        check_required(&attributes, definitions)?;
        Ok(User {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            given_name: profile_text("given_name", input.given_name)?,
            family_name: profile_text("family_name", input.family_name)?,
            display_name: profile_text("display_name", input.display_name)?,
            formatted_name: profile_text("formatted_name", input.formatted_name)?,
            email: parse_email(input.email)?,
            active: input.active.unwrap_or(true),
            external_id: profile_text("external_id", input.external_id)?,
            source,
            attributes,
            extensions: validate_extensions(input.extensions.unwrap_or_default())?,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// The case-folded username used for uniqueness.
    pub fn username_key(&self) -> String {
        self.username.to_lowercase()
    }

    /// The case-folded email used for look-ups.
    pub fn email_key(&self) -> Option<String> {
        self.email.as_ref().map(|e| e.to_lowercase())
    }

    /// Applies `update`, returning the new state and the names of the fields that changed
    /// (empty when nothing did). The version is bumped only when something changed.
    pub fn apply(
        &self,
        update: UserUpdate,
        definitions: &[AttributeDefinition],
        now: OffsetDateTime,
    ) -> Result<(User, Vec<String>)> {
        let mut next = self.clone();
        let mut changed = Vec::new();
        if let Some(name) = update.username {
            next.username = Username::parse(&name)?.as_str().to_owned();
        }
        macro_rules! text {
            ($field:ident) => {
                if let Some(v) = update.$field {
                    next.$field = profile_text(stringify!($field), v)?;
                }
            };
        }
        text!(given_name);
        text!(family_name);
        text!(display_name);
        text!(formatted_name);
        text!(external_id);
        if let Some(v) = update.email {
            next.email = parse_email(v)?;
        }
        if let Some(active) = update.active {
            next.active = active;
        }
        for (name, value) in update.attributes {
            let Some(def) = definitions.iter().find(|d| d.name == name) else {
                return Err(Error::invalid(
                    format!("attributes.{name}"),
                    format!("'{name}' is not a defined custom attribute"),
                ));
            };
            if value.is_null() {
                next.attributes.remove(&name);
            } else {
                next.attributes.insert(name, def.normalize(&value)?);
            }
        }
        check_required(&next.attributes, definitions)?;
        if let Some(ext) = update.extensions {
            next.extensions = validate_extensions(ext)?;
        }

        macro_rules! diff {
            ($($field:ident),*) => {
                $( if next.$field != self.$field { changed.push(stringify!($field).to_owned()); } )*
            };
        }
        diff!(
            username,
            given_name,
            family_name,
            display_name,
            formatted_name,
            email,
            active,
            external_id,
            extensions
        );
        let keys: std::collections::BTreeSet<&String> = self.attributes.keys().chain(next.attributes.keys()).collect();
        for key in keys {
            if self.attributes.get(key) != next.attributes.get(key) {
                changed.push(format!("attributes.{key}"));
            }
        }
        if !changed.is_empty() {
            next.version = self.version + 1;
            next.updated_at = now;
        }
        Ok((next, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::attribute::AttributeType;
    use serde_json::json;

    fn defs() -> Vec<AttributeDefinition> {
        vec![AttributeDefinition {
            name: "title".into(),
            display_name: "Title".into(),
            kind: AttributeType::String,
            required: true,
            description: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }]
    }

    fn alice() -> User {
        let mut attributes = BTreeMap::new();
        attributes.insert("title".to_owned(), json!("Engineer"));
        User::create(
            NewUser {
                username: "alice".into(),
                email: Some("alice@example.com".into()),
                attributes,
                ..Default::default()
            },
            &defs(),
            UserSource::Local,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn create_requires_required_attributes() {
        let err = User::create(
            NewUser {
                username: "bob".into(),
                ..Default::default()
            },
            &defs(),
            UserSource::Local,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "attributes.title"));
    }

    #[test]
    fn apply_reports_changes_and_bumps_version() {
        let user = alice();
        let update: UserUpdate =
            serde_json::from_value(json!({"given_name": "Alice", "attributes": {"title": "Lead"}})).unwrap();
        let (next, changed) = user.apply(update, &defs(), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(changed, vec!["given_name", "attributes.title"]);
        assert_eq!(next.version, 2);
        let (same, none) = next
            .apply(UserUpdate::default(), &defs(), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(same.version, 2);
    }

    #[test]
    fn null_clears_but_absent_keeps() {
        let user = alice();
        let update: UserUpdate = serde_json::from_value(json!({"email": null})).unwrap();
        let (next, changed) = user.apply(update, &defs(), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(next.email, None);
        assert_eq!(changed, vec!["email"]);
        let removal: UserUpdate = serde_json::from_value(json!({"attributes": {"title": null}})).unwrap();
        assert!(user.apply(removal, &defs(), OffsetDateTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<NewUser>(json!({"username": "a", "emial": "x"})).is_err());
    }
}
