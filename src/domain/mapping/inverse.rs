//! The mapping read backwards: which profile attributes an account in a target stands for. Only
//! rules that copy one profile attribute unchanged (`attribute` sources) can be inverted; a
//! constant, a combination or a table says nothing certain about the profile, so it is left out.

use super::source::is_present;
use super::target::{TargetPath, literals_match, parse_target};
use super::{Mapping, Source};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

impl Mapping {
    /// The profile attributes (by the names `attribute` sources use) that `resource` holds through
    /// the invertible rules: for each rule copying a profile attribute, the value at its target
    /// path. Absent or empty values are left out; when two rules copy the same attribute, the
    /// first present value wins.
    pub fn read_back(&self, resource: &Value) -> BTreeMap<String, Value> {
        let mut profile = BTreeMap::new();
        for rule in &self.rules {
            let Source::Attribute(name) = &rule.source else {
                continue;
            };
            if profile.contains_key(name) {
                continue;
            }
            let Ok(path) = parse_target(&rule.target) else {
                continue;
            };
            if let Some(value) = read_path(resource, &path).filter(is_present) {
                profile.insert(name.clone(), value);
            }
        }
        profile
    }

    /// The profile attribute that the rule setting `target` (a whole attribute of the core
    /// schema, such as `userName` or `externalId`) copies unchanged, if there is such a rule.
    pub fn source_of(&self, target: &str) -> Option<&str> {
        self.rules.iter().find_map(|rule| match &rule.source {
            Source::Attribute(name) if rule.target.eq_ignore_ascii_case(target) => Some(name.as_str()),
            _ => None,
        })
    }
}

/// The value of `key` in `map`, regardless of the key's letter case (SCIM attribute names are
/// case-insensitive).
pub(crate) fn get_ignoring_case<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The value `path` addresses in `resource`: the attribute (in its extension when the path names
/// one), the first list entry whose filter terms all match, then the sub-attribute.
pub fn read_path(resource: &Value, path: &TargetPath) -> Option<Value> {
    let root = resource.as_object()?;
    let container = match path.schema() {
        Some(urn) => get_ignoring_case(root, urn)?.as_object()?,
        None => root,
    };
    let mut value = get_ignoring_case(container, path.attribute())?;
    if !path.filter().is_empty() {
        value = value.as_array()?.iter().find(|entry| {
            entry.as_object().is_some_and(|entry| {
                path.filter().iter().all(|term| {
                    get_ignoring_case(entry, &term.attribute).is_some_and(|actual| literals_match(actual, &term.value))
                })
            })
        })?;
    }
    match path.sub_attribute() {
        Some(sub) => get_ignoring_case(value.as_object()?, sub).cloned(),
        None => Some(value.clone()),
    }
}

/// What of `found` (an account as a target holds it) the mapping speaks about: the attributes
/// `desired` sets, and within them only the sub-attributes it sets (in a list of complex
/// values, those any of its entries sets). Comparing this with `desired` shows what the mapping
/// would change; whatever else the target holds is left out, so it is never removed.
pub fn restrict_to(found: &Value, desired: &Value) -> Value {
    match (found, desired) {
        (Value::Object(found), Value::Object(desired)) => {
            let mut out = Map::new();
            for (key, wanted) in desired {
                if let Some(value) = get_ignoring_case(found, key) {
                    out.insert(key.clone(), restrict_to(value, wanted));
                }
            }
            Value::Object(out)
        }
        (Value::Array(found), Value::Array(desired)) if desired.iter().all(Value::is_object) && !desired.is_empty() => {
            let mut keys: Vec<&String> = Vec::new();
            for entry in desired.iter().filter_map(Value::as_object) {
                for key in entry.keys() {
                    if !keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                        keys.push(key);
                    }
                }
            }
            let shape: Map<String, Value> = keys.into_iter().map(|k| (k.clone(), Value::Null)).collect();
            let shape = Value::Object(shape);
            Value::Array(
                found
                    .iter()
                    .map(|entry| {
                        if entry.is_object() {
                            restrict_to(entry, &shape)
                        } else {
                            entry.clone()
                        }
                    })
                    .collect(),
            )
        }
        (found, _) => found.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mapping::MappingRule;
    use serde_json::json;

    fn mapping(rules: &[(&str, Source)]) -> Mapping {
        Mapping {
            rules: rules
                .iter()
                .map(|(target, source)| MappingRule {
                    target: (*target).to_owned(),
                    source: source.clone(),
                })
                .collect(),
        }
    }

    fn attr(name: &str) -> Source {
        Source::Attribute(name.to_owned())
    }

    #[test]
    fn invertible_rules_are_read_back_and_the_rest_left_out() {
        let mapping = mapping(&[
            ("userName", attr("username")),
            ("name.givenName", attr("given_name")),
            ("emails[type eq \"work\"].value", attr("email")),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                attr("department"),
            ),
            ("title", Source::Constant(json!("Engineer"))),
            ("displayName", Source::Lower(Box::new(attr("display_name")))),
            ("active", attr("active")),
        ]);
        let account = json!({
            "id": "t1",
            "UserName": "Alice",
            "name": {"GIVENNAME": "Alice"},
            "emails": [{"value": "home@example.com", "type": "home"}, {"value": "alice@example.com", "type": "Work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "title": "Boss",
            "displayName": "alice",
            "active": false
        });
        let profile = mapping.read_back(&account);
        assert_eq!(profile.get("username"), Some(&json!("Alice")));
        assert_eq!(profile.get("given_name"), Some(&json!("Alice")));
        assert_eq!(profile.get("email"), Some(&json!("alice@example.com")));
        assert_eq!(profile.get("department"), Some(&json!("R&D")));
        assert_eq!(profile.get("active"), Some(&json!(false)));
        assert!(
            !profile.contains_key("display_name"),
            "a lower-cased copy is not invertible"
        );
        assert_eq!(profile.len(), 5);
        assert_eq!(mapping.source_of("USERNAME"), Some("username"));
        assert_eq!(mapping.source_of("title"), None);
    }

    #[test]
    fn restriction_keeps_only_what_the_mapping_sets() {
        let found = json!({
            "id": "1", "userName": "a", "title": "x",
            "name": {"givenName": "A", "formatted": "A B"},
            "emails": [{"value": "a@x.example", "type": "work", "display": "A"}, "odd"]
        });
        let desired = json!({
            "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x.example", "type": "work", "primary": true}]
        });
        assert_eq!(
            restrict_to(&found, &desired),
            json!({
                "userName": "a",
                "name": {"givenName": "A"},
                "emails": [{"value": "a@x.example", "type": "work"}, "odd"]
            })
        );
    }

    #[test]
    fn missing_and_empty_values_are_absent() {
        let mapping = mapping(&[
            ("userName", attr("username")),
            ("emails[type eq \"work\"].value", attr("email")),
        ]);
        let profile =
            mapping.read_back(&json!({"userName": "", "emails": [{"value": "x@example.com", "type": "home"}]}));
        assert!(profile.is_empty(), "{profile:?}");
        assert!(mapping.read_back(&json!("not an object")).is_empty());
    }
}
