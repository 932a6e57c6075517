//! Sources of a mapping rule: where a mapped value comes from (a profile attribute, a constant,
//! a combination, a look-up table) and how it is evaluated for one user.

use crate::domain::user::User;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a mapped value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A default profile attribute (`username`, `email`, ...) or a custom attribute, by name.
    Attribute(String),
    /// A fixed value.
    Constant(Value),
    /// The parts' text joined together; absent parts are skipped.
    #[schema(no_recursion)]
    Concat(Vec<Source>),
    /// The value in lower case (non-strings pass through).
    #[schema(no_recursion)]
    Lower(Box<Source>),
    /// The value in upper case (non-strings pass through).
    #[schema(no_recursion)]
    Upper(Box<Source>),
    /// The first part that is present.
    #[schema(no_recursion)]
    Default(Vec<Source>),
    /// The value translated through a table.
    // Recursion is broken on the variants above, not on the whole enum, so that the `Lookup`
    // schema is collected into the OpenAPI document (a `$ref` to it would otherwise dangle).
    Lookup(Lookup),
}

/// A translation of a source's text through a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(no_recursion)]
pub struct Lookup {
    /// What to translate.
    pub input: Box<Source>,
    /// Translations, by the input's exact text.
    #[schema(value_type = Object)]
    pub table: BTreeMap<String, Value>,
    /// The value when no entry matches; absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub default: Option<Value>,
}

impl Source {
    /// The value for `user`; `None` when absent (JSON null and empty strings count as absent).
    pub fn evaluate(&self, user: &User) -> Option<Value> {
        let value = match self {
            Source::Attribute(name) => profile_value(user, name),
            Source::Constant(value) => Some(value.clone()),
            Source::Concat(parts) => {
                let text: String = parts
                    .iter()
                    .filter_map(|part| part.evaluate(user).as_ref().and_then(text_of))
                    .collect();
                Some(Value::String(text))
            }
            Source::Lower(inner) => inner.evaluate(user).map(|v| map_text(v, str::to_lowercase)),
            Source::Upper(inner) => inner.evaluate(user).map(|v| map_text(v, str::to_uppercase)),
            Source::Default(parts) => parts.iter().find_map(|part| part.evaluate(user)),
            Source::Lookup(lookup) => lookup
                .input
                .evaluate(user)
                .as_ref()
                .and_then(text_of)
                .and_then(|key| lookup.table.get(&key).cloned())
                .or_else(|| lookup.default.clone()),
        };
        value.filter(is_present)
    }

    /// Visits this source and every source nested in it, with its nesting depth (1 for this one).
    pub(super) fn walk<'a>(&'a self, depth: usize, visit: &mut impl FnMut(&'a Source, usize)) {
        visit(self, depth);
        match self {
            Source::Attribute(_) | Source::Constant(_) => {}
            Source::Concat(parts) | Source::Default(parts) => {
                for part in parts {
                    part.walk(depth + 1, visit);
                }
            }
            Source::Lower(inner) | Source::Upper(inner) => inner.walk(depth + 1, visit),
            Source::Lookup(lookup) => lookup.input.walk(depth + 1, visit),
        }
    }
}

pub(super) fn profile_value(user: &User, name: &str) -> Option<Value> {
    let text = |value: &Option<String>| value.clone().map(Value::String);
    match name {
        "id" => Some(Value::String(user.id.to_string())),
        "username" => Some(Value::String(user.username.clone())),
        "given_name" => text(&user.given_name),
        "family_name" => text(&user.family_name),
        "display_name" => text(&user.display_name),
        "formatted_name" => text(&user.formatted_name),
        "email" => text(&user.email),
        "active" => Some(Value::Bool(user.active)),
        "external_id" => text(&user.external_id),
        custom => user.attributes.get(custom).cloned(),
    }
}

pub(super) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The text of a scalar value; lists and objects have none.
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

pub(super) fn map_text(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(convert(&s)),
        other => other,
    }
}
