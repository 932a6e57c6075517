//! Custom profile attributes: definitions an administrator creates, and the rules their values obey.

use super::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Names a custom attribute may not take because the default profile already has them.
pub const RESERVED_NAMES: &[&str] = &[
    "id",
    "username",
    "given_name",
    "family_name",
    "display_name",
    "formatted_name",
    "email",
    "active",
    "external_id",
    "source",
    "created_at",
    "updated_at",
];

/// Longest text a string value may hold.
pub const MAX_STRING_VALUE: usize = 2048;
/// Most entries a multi-valued attribute may hold.
pub const MAX_LIST_ITEMS: usize = 100;

/// The type of a custom attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// Free text.
    String,
    /// `true` or `false`.
    Boolean,
    /// A whole number (64-bit).
    Integer,
    /// An RFC 3339 date and time, stored in UTC.
    Datetime,
    /// A list of strings.
    StringList,
}

impl AttributeType {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Integer => "integer",
            AttributeType::Datetime => "datetime",
            AttributeType::StringList => "string_list",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "string" => AttributeType::String,
            "boolean" => AttributeType::Boolean,
            "integer" => AttributeType::Integer,
            "datetime" => AttributeType::Datetime,
            "string_list" => AttributeType::StringList,
            other => {
                return Err(Error::invalid(
                    "type",
                    format!("unknown type '{other}' (expected string, boolean, integer, datetime or string_list)"),
                ));
            }
        })
    }
}

/// A custom profile attribute as the administrator defined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttributeDefinition {
    /// Identifier used in mappings and the API (`title`, `language`, `timezone`).
    pub name: String,
    /// Label for people.
    pub display_name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Whether every user must carry a value.
    pub required: bool,
    /// Free description.
    pub description: Option<String>,
    /// When it was defined.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Validates an attribute identifier: a letter, then letters, digits or `_`, at most 64 characters,
/// and not one of the default profile attributes.
pub fn validate_attribute_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(
            "name",
            format!(
                "'{name}' is not a valid attribute name: use a letter followed by letters, digits or '_' (at most 64)"
            ),
        ));
    }
    if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Error::invalid(
            "name",
            format!("'{name}' is a default profile attribute and cannot be redefined"),
        ));
    }
    Ok(())
}

impl AttributeDefinition {
    /// Checks `value` against this definition and returns its normalised form
    /// (datetimes in UTC RFC 3339). `null` is not a value: callers treat it as removal.
    pub fn normalize(&self, value: &Value) -> Result<Value> {
        let field = format!("attributes.{}", self.name);
        let wrong = |expected: &str| {
            Err(Error::invalid(
                field.clone(),
                format!("expected {expected}, got {}", json_kind(value)),
            ))
        };
        match self.kind {
            AttributeType::String => match value {
                Value::String(s) => {
                    check_string(&field, s)?;
                    Ok(value.clone())
                }
                _ => wrong("a string"),
            },
            AttributeType::Boolean => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => wrong("true or false"),
            },
            AttributeType::Integer => match value {
                Value::Number(n) if n.is_i64() => Ok(value.clone()),
                _ => wrong("a whole number"),
            },
            AttributeType::Datetime => match value {
                Value::String(s) => {
                    let parsed = OffsetDateTime::parse(s, &Rfc3339)
                        .map_err(|_| Error::invalid(field.clone(), format!("'{s}' is not an RFC 3339 date-time")))?;
                    let utc = parsed.to_offset(time::UtcOffset::UTC);
                    let text = utc
                        .format(&Rfc3339)
                        .map_err(|e| Error::invalid(field.clone(), e.to_string()))?;
                    Ok(Value::String(text))
                }
                _ => wrong("an RFC 3339 date-time string"),
            },
            AttributeType::StringList => match value {
                Value::Array(items) => {
                    if items.len() > MAX_LIST_ITEMS {
                        return Err(Error::invalid(field, format!("at most {MAX_LIST_ITEMS} values")));
                    }
                    for item in items {
                        match item {
                            Value::String(s) => check_string(&field, s)?,
                            _ => return wrong("a list of strings"),
                        }
                    }
                    Ok(value.clone())
                }
                _ => wrong("a list of strings"),
            },
        }
    }
}

fn check_string(field: &str, s: &str) -> Result<()> {
    if s.chars().count() > MAX_STRING_VALUE {
        return Err(Error::invalid(field, format!("at most {MAX_STRING_VALUE} characters")));
    }
    Ok(())
}

/// Names the JSON kind of a value, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: AttributeType) -> AttributeDefinition {
        AttributeDefinition {
            name: "x".into(),
            display_name: "X".into(),
            kind,
            required: false,
            description: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn values_match_their_type() {
        assert!(def(AttributeType::String).normalize(&json!("a")).is_ok());
        assert!(def(AttributeType::String).normalize(&json!(1)).is_err());
        assert!(def(AttributeType::Boolean).normalize(&json!("true")).is_err());
        assert!(def(AttributeType::Integer).normalize(&json!(1.5)).is_err());
        assert!(def(AttributeType::Integer).normalize(&json!(42)).is_ok());
        assert!(def(AttributeType::StringList).normalize(&json!(["a", 1])).is_err());
        assert_eq!(
            def(AttributeType::Datetime)
                .normalize(&json!("2026-01-02T03:04:05+02:00"))
                .unwrap(),
            json!("2026-01-02T01:04:05Z")
        );
        assert!(def(AttributeType::Datetime).normalize(&json!("yesterday")).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_attribute_name("title").is_ok());
        assert!(validate_attribute_name("cost_center2").is_ok());
        assert!(validate_attribute_name("2fa").is_err());
        assert!(validate_attribute_name("email").is_err());
        assert!(validate_attribute_name("a-b").is_err());
    }
}
