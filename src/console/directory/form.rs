//! The user form shared by the add and edit pages: the default profile fields and one field per
//! custom attribute definition, as typed (kept on error), and how they become a service input.
//! Values are only turned into JSON of the attribute's type here; the domain checks them.

use super::{text, value_text};
use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::user::{NewUser, User, UserUpdate};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The prefix of custom attribute fields in the form (`attr.title`).
const ATTR_PREFIX: &str = "attr.";

/// One custom attribute field of the form.
#[derive(Debug, Clone)]
pub struct AttributeField {
    /// The attribute's name; the input is `attr.NAME`, its id `attr-NAME`.
    pub name: String,
    /// Its label.
    pub label: String,
    /// Its type's name.
    pub kind: &'static str,
    /// Whether it is required.
    pub required: bool,
    /// Its description.
    pub description: String,
    /// The value as typed or stored (lists: one entry per line).
    pub value: String,
    /// The key of its validation message (`attributes.NAME`, as the domain names it).
    pub error_key: String,
}

impl AttributeField {
    /// Whether the field is a yes/no choice.
    pub fn is_boolean(&self) -> bool {
        self.kind == AttributeType::Boolean.as_str()
    }

    /// Whether the field is a list (a text area, one entry per line).
    pub fn is_list(&self) -> bool {
        self.kind == AttributeType::StringList.as_str()
    }

    /// A hint about the expected format.
    pub fn hint(&self) -> &'static str {
        match self.kind {
            "integer" => "a whole number",
            "datetime" => "RFC 3339, e.g. 2026-01-31T09:00:00Z",
            "string_list" => "one entry per line",
            "boolean" => "yes or no",
            _ => "text",
        }
    }
}

/// One default profile field of the form.
#[derive(Debug, Clone)]
pub struct ProfileField {
    /// The input's name and id (and the key of its validation message).
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// The value as typed or stored.
    pub value: String,
    /// The input's type.
    pub input: &'static str,
    /// Its `autocomplete` hint.
    pub autocomplete: &'static str,
}

/// The user form's values.
#[derive(Debug, Clone, Default)]
pub struct UserForm {
    /// Login name.
    pub username: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Full name.
    pub display_name: String,
    /// Email address.
    pub email: String,
    /// Whether the user is active.
    pub active: bool,
    /// The custom attribute fields, one per definition.
    pub attributes: Vec<AttributeField>,
}

fn field(def: &AttributeDefinition, value: String) -> AttributeField {
    AttributeField {
        name: def.name.clone(),
        label: def.display_name.clone(),
        kind: def.kind.as_str(),
        required: def.required,
        description: def.description.clone().unwrap_or_default(),
        value,
        error_key: format!("attributes.{}", def.name),
    }
}

fn optional(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A typed value as JSON of the attribute's type; text that does not parse stays text, so the
/// domain's check names the problem. `None` for an empty field.
fn typed(kind: AttributeType, raw: &str) -> Option<Value> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match kind {
        AttributeType::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        AttributeType::Boolean => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        AttributeType::StringList => Value::Array(
            raw.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        ),
        AttributeType::String | AttributeType::Datetime => Value::String(raw.to_owned()),
    })
}

impl UserForm {
    /// The default profile's text fields, in form order.
    pub fn profile_fields(&self) -> Vec<ProfileField> {
        let field = |name, label, value: &String, input, autocomplete| ProfileField {
            name,
            label,
            value: value.clone(),
            input,
            autocomplete,
        };
        vec![
            field("username", "Username", &self.username, "text", "off"),
            field("given_name", "Given name", &self.given_name, "text", "off"),
            field("family_name", "Family name", &self.family_name, "text", "off"),
            field("display_name", "Display name", &self.display_name, "text", "off"),
            field("email", "Email", &self.email, "email", "off"),
        ]
    }

    /// An empty form for a new user (active).
    pub fn blank(definitions: &[AttributeDefinition]) -> Self {
        Self {
            active: true,
            attributes: definitions.iter().map(|d| field(d, String::new())).collect(),
            ..Default::default()
        }
    }

    /// The form filled with a stored user.
    pub fn of_user(user: &User, definitions: &[AttributeDefinition]) -> Self {
        Self {
            username: user.username.clone(),
            given_name: text(&user.given_name),
            family_name: text(&user.family_name),
            display_name: text(&user.display_name),
            email: text(&user.email),
            active: user.active,
            attributes: definitions
                .iter()
                .map(|d| {
                    field(
                        d,
                        user.attributes
                            .get(&d.name)
                            .map(|v| value_text(v, "\n"))
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    /// The form as posted (`pairs` in the order sent; an unchecked `active` box sends nothing).
    pub fn from_pairs(pairs: Vec<(String, String)>, definitions: &[AttributeDefinition]) -> Self {
        let mut fields: HashMap<String, String> = HashMap::new();
        for (key, value) in pairs {
            fields.insert(key, value);
        }
        let mut take = |key: &str| fields.remove(key).unwrap_or_default();
        Self {
            username: take("username").trim().to_owned(),
            given_name: take("given_name"),
            family_name: take("family_name"),
            display_name: take("display_name"),
            email: take("email"),
            active: !take("active").is_empty(),
            attributes: definitions
                .iter()
                .map(|d| field(d, take(&format!("{ATTR_PREFIX}{}", d.name))))
                .collect(),
        }
    }

    fn attribute_values(&self, definitions: &[AttributeDefinition], clear_empty: bool) -> BTreeMap<String, Value> {
        let mut values = BTreeMap::new();
        for def in definitions {
            let raw = self
                .attributes
                .iter()
                .find(|f| f.name == def.name)
                .map(|f| f.value.as_str())
                .unwrap_or("");
            match typed(def.kind, raw) {
                Some(value) => {
                    values.insert(def.name.clone(), value);
                }
                None if clear_empty => {
                    values.insert(def.name.clone(), Value::Null);
                }
                None => {}
            }
        }
        values
    }

    /// The new user this form describes.
    pub fn to_new_user(&self, definitions: &[AttributeDefinition]) -> NewUser {
        NewUser {
            username: self.username.clone(),
            given_name: optional(&self.given_name),
            family_name: optional(&self.family_name),
            display_name: optional(&self.display_name),
            email: optional(&self.email),
            active: Some(self.active),
            attributes: self.attribute_values(definitions, false),
            ..Default::default()
        }
    }

    /// The change that makes a user hold this form's values (empty fields clear).
    pub fn to_update(&self, definitions: &[AttributeDefinition]) -> UserUpdate {
        UserUpdate {
            username: Some(self.username.clone()),
            given_name: Some(optional(&self.given_name)),
            family_name: Some(optional(&self.family_name)),
            display_name: Some(optional(&self.display_name)),
            email: Some(optional(&self.email)),
            active: Some(self.active),
            attributes: self.attribute_values(definitions, true),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn def(name: &str, kind: AttributeType) -> AttributeDefinition {
        AttributeDefinition {
            name: name.into(),
            display_name: name.into(),
            kind,
            required: false,
            description: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn typed_values_follow_the_definition() {
        let defs = [
            def("level", AttributeType::Integer),
            def("langs", AttributeType::StringList),
            def("vip", AttributeType::Boolean),
            def("title", AttributeType::String),
        ];
        let pairs = vec![
            ("username".to_owned(), " ann ".to_owned()),
            ("attr.level".to_owned(), "7".to_owned()),
            ("attr.langs".to_owned(), "en\n\n fr \n".to_owned()),
            ("attr.vip".to_owned(), "true".to_owned()),
            ("attr.title".to_owned(), "".to_owned()),
        ];
        let form = UserForm::from_pairs(pairs, &defs);
        assert!(!form.active);
        let new = form.to_new_user(&defs);
        assert_eq!(new.username, "ann");
        assert_eq!(new.attributes["level"], Value::from(7));
        assert_eq!(new.attributes["langs"], serde_json::json!(["en", "fr"]));
        assert_eq!(new.attributes["vip"], Value::Bool(true));
        assert!(!new.attributes.contains_key("title"));
        let update = form.to_update(&defs);
        assert_eq!(update.attributes["title"], Value::Null);
        assert_eq!(typed(AttributeType::Integer, "x"), Some(Value::String("x".into())));
    }
}
