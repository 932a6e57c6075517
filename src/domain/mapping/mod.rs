//! Per-app attribute mapping: how a directory user becomes a SCIM 2.0 User resource (RFC 7643),
//! the PATCH operations (RFC 7644) that move an app's copy from one rendering to the next
//! (`patch.rs`), and the built-in presets for common apps (`presets.rs`). Target paths are in
//! `target.rs`, sources in `source.rs`.

mod inverse;
mod patch;
mod presets;
mod source;
mod target;
#[cfg(test)]
mod tests;

pub(crate) use inverse::get_ignoring_case;
pub use inverse::{read_path, restrict_to};
pub use patch::patch_operations;
pub use presets::{Preset, preset, presets};
pub use source::{Lookup, Source};
pub use target::{FilterTerm, TargetPath};

use super::attribute::AttributeDefinition;
use super::error::{Error, Result};
use super::user::User;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use target::{PathShape, literals_match, parse_target, quoted};

/// The schema URN of the SCIM core User resource (the SCIM crate's `USER_SCHEMA`).
pub const CORE_USER_SCHEMA: &str = provisio_scim::schema::USER_SCHEMA;

/// Longest target path accepted, in characters.
pub const MAX_TARGET_LEN: usize = 512;

/// Deepest nesting of sources accepted in one rule.
pub const MAX_SOURCE_DEPTH: usize = 16;

/// Default profile attributes a mapping can read, by the names `attribute` sources use.
pub const DEFAULT_PROFILE_ATTRIBUTES: &[&str] = &[
    "id",
    "username",
    "given_name",
    "family_name",
    "display_name",
    "formatted_name",
    "email",
    "active",
    "external_id",
];

/// Core attributes the service provider owns; a mapping may not set them.
const READ_ONLY_TARGETS: &[&str] = &["id", "meta", "schemas", "groups"];

/// Top-level keys of a resource that PATCH never touches.
const UNPATCHED_KEYS: &[&str] = &["schemas", "id", "meta"];

/// The text of a user's profile attribute (`username`, `email`, a custom attribute, ...) as a
/// mapping reads it; `None` when absent or not a scalar.
pub fn profile_value_text(user: &User, name: &str) -> Option<String> {
    source::profile_value(user, name).as_ref().and_then(source::text_of)
}

/// One line of a mapping: the SCIM attribute path to set and where its value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MappingRule {
    /// SCIM attribute path, e.g. `name.givenName` or `emails[type eq "work"].value`.
    pub target: String,
    /// Where the value comes from.
    pub source: Source,
}

/// How an app's SCIM User resource is built from a directory user; serialized as a list of rules.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mapping {
    /// The rules, applied in order.
    pub rules: Vec<MappingRule>,
}

impl utoipa::PartialSchema for Mapping {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name(
                <MappingRule as utoipa::ToSchema>::name(),
            ))
            .description(Some("Mapping rules, applied in order."))
            .into()
    }
}

impl utoipa::ToSchema for Mapping {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((
            <MappingRule as utoipa::ToSchema>::name().into_owned(),
            <MappingRule as utoipa::PartialSchema>::schema(),
        ));
        <MappingRule as utoipa::ToSchema>::schemas(schemas);
    }
}

impl Mapping {
    /// Checks the mapping against the defined custom attributes: targets parse, are writable and
    /// unique, sources name known attributes, and `userName` is mapped.
    pub fn validate(&self, custom: &[AttributeDefinition]) -> Result<()> {
        self.check(|name| custom.iter().any(|definition| definition.name == name))
    }

    /// [`Mapping::validate`], with `is_custom` telling which custom attribute names exist.
    pub(crate) fn check(&self, is_custom: impl Fn(&str) -> bool) -> Result<()> {
        let mut seen: Vec<TargetPath> = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let target_field = format!("mapping[{index}].target");
            let path = parse_target(&rule.target).map_err(|reason| Error::invalid(&target_field, reason))?;
            check_target(&path).map_err(|reason| Error::invalid(&target_field, reason))?;
            for (other_index, other) in seen.iter().enumerate() {
                if other.key() == path.key() {
                    return Err(Error::invalid(
                        &target_field,
                        format!(
                            "{} sets the same attribute as mapping[{other_index}] ({}); attribute names are case-insensitive",
                            quoted(path.as_str()),
                            quoted(other.as_str())
                        ),
                    ));
                }
                if other.attribute_key() == path.attribute_key() && other.shape() != path.shape() {
                    return Err(Error::invalid(
                        &target_field,
                        format!(
                            "{} conflicts with mapping[{other_index}] ({}): set '{}' whole, by sub-attribute or through a filter, not a mix",
                            quoted(path.as_str()),
                            quoted(other.as_str()),
                            path.attribute()
                        ),
                    ));
                }
            }
            check_source(&rule.source, &is_custom)
                .map_err(|reason| Error::invalid(format!("mapping[{index}].source"), reason))?;
            seen.push(path);
        }
        let maps_username = seen.iter().any(|path| {
            path.schema.is_none() && path.shape() == PathShape::Whole && path.attribute.eq_ignore_ascii_case("userName")
        });
        if !maps_username {
            return Err(Error::invalid(
                "mapping",
                "no rule sets 'userName'; SCIM requires every user to have one",
            ));
        }
        Ok(())
    }

    /// Builds the SCIM User resource for `user`. Rules whose source is absent set nothing; a list
    /// entry left with only its filter keys and `primary` is dropped; attribute names already set
    /// under another letter case are reused. `active` targets must yield true or false.
    pub fn render(&self, user: &User) -> Result<Value> {
        let mut resource = Map::new();
        let mut extensions: Vec<String> = Vec::new();
        let mut filtered: Vec<TargetPath> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let path = parse_target(&rule.target)
                .map_err(|reason| Error::invalid(format!("mapping[{index}].target"), reason))?;
            let Some(mut value) = rule.source.evaluate(user) else {
                continue;
            };
            if path.leaf().eq_ignore_ascii_case("active") {
                value = as_boolean(&value).ok_or_else(|| {
                    Error::invalid(
                        path.as_str(),
                        format!(
                            "mapping[{index}] produced {} ({}), but '{}' must be true or false",
                            super::attribute::json_kind(&value),
                            quoted(&value.to_string()),
                            path.as_str()
                        ),
                    )
                })?;
            }
            if let Some(urn) = &path.schema
                && !extensions.iter().any(|known| known.eq_ignore_ascii_case(urn))
            {
                extensions.push(urn.clone());
            }
            edit_container(&mut resource, path.schema(), |container| {
                set_attribute(container, &path, value)
            });
            if !path.filter.is_empty() {
                filtered.push(path);
            }
        }
        for path in &filtered {
            edit_container(&mut resource, path.schema(), |container| {
                drop_entries_without_content(container, path)
            });
        }
        if !resource.keys().any(|key| key.eq_ignore_ascii_case("userName")) {
            return Err(Error::invalid(
                "userName",
                format!("the mapping produced no userName for user '{}'", user.username),
            ));
        }
        extensions.retain(|urn| resource.contains_key(urn));
        let schemas = std::iter::once(CORE_USER_SCHEMA.to_owned())
            .chain(extensions)
            .map(Value::String)
            .collect();
        resource.insert("schemas".to_owned(), Value::Array(schemas));
        Ok(Value::Object(resource))
    }

    /// Names of the custom attributes the mapping reads, in order of first use.
    pub fn custom_attributes_used(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for rule in &self.rules {
            rule.source.walk(1, &mut |source, _| {
                if let Source::Attribute(name) = source
                    && !DEFAULT_PROFILE_ATTRIBUTES.contains(&name.as_str())
                    && !names.contains(name)
                {
                    names.push(name.clone());
                }
            });
        }
        names
    }
}

/// Rules a target must obey on its own; the reason is for an administrator.
fn check_target(path: &TargetPath) -> std::result::Result<(), String> {
    if path.schema.is_none()
        && READ_ONLY_TARGETS
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&path.attribute))
    {
        return Err(format!(
            "'{}' is read-only in SCIM and cannot be mapped",
            path.attribute
        ));
    }
    if !path.filter.is_empty() {
        let Some(sub) = &path.sub_attribute else {
            return Err(format!(
                "{} selects a list entry but names no sub-attribute to set (for example {}.value)",
                quoted(path.as_str()),
                path.as_str()
            ));
        };
        if path.filter.iter().any(|term| term.attribute.eq_ignore_ascii_case(sub)) {
            return Err(format!(
                "{} sets '{sub}', which its filter already fixes",
                quoted(path.as_str())
            ));
        }
    }
    Ok(())
}

fn check_source(source: &Source, is_custom: &impl Fn(&str) -> bool) -> std::result::Result<(), String> {
    let mut problem: Option<String> = None;
    source.walk(1, &mut |node, depth| {
        if problem.is_some() {
            return;
        }
        if depth > MAX_SOURCE_DEPTH {
            problem = Some(format!("sources may be nested at most {MAX_SOURCE_DEPTH} deep"));
        } else if let Source::Attribute(name) = node
            && !DEFAULT_PROFILE_ATTRIBUTES.contains(&name.as_str())
            && !is_custom(name)
        {
            problem = Some(format!(
                "{} is neither a default profile attribute nor a defined custom attribute",
                quoted(name)
            ));
        }
    });
    problem.map_or(Ok(()), Err)
}

fn as_boolean(value: &Value) -> Option<Value> {
    match value {
        Value::Bool(_) => Some(value.clone()),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        _ => None,
    }
}

/// Removes the entry whose key equals `key` ignoring case; returns the key to store it under
/// (the existing spelling, else `key`) and the old value.
fn take_entry(map: &mut Map<String, Value>, key: &str) -> (String, Option<Value>) {
    let existing = map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
    match existing {
        Some(existing) => {
            let value = map.remove(&existing);
            (existing, value)
        }
        None => (key.to_owned(), None),
    }
}

fn into_object(value: Option<Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let (key, _) = take_entry(map, key);
    map.insert(key, value);
}

/// Sets `value` at `path` (ignoring its schema) inside `container`.
fn set_attribute(container: &mut Map<String, Value>, path: &TargetPath, value: Value) {
    match (path.filter.is_empty(), &path.sub_attribute) {
        (true, None) => put(container, &path.attribute, value),
        (true, Some(sub)) => {
            let (key, existing) = take_entry(container, &path.attribute);
            let mut complex = into_object(existing);
            put(&mut complex, sub, value);
            container.insert(key, Value::Object(complex));
        }
        (false, sub) => {
            let (key, existing) = take_entry(container, &path.attribute);
            let mut entries = match existing {
                Some(Value::Array(entries)) => entries,
                _ => Vec::new(),
            };
            let position = entries.iter().position(|entry| matches_filter(entry, &path.filter));
            let mut entry = match position {
                Some(position) => into_object(Some(entries.remove(position))),
                None => path
                    .filter
                    .iter()
                    .map(|term| (term.attribute.clone(), term.value.clone()))
                    .collect(),
            };
            if let Some(sub) = sub {
                put(&mut entry, sub, value);
            }
            let entry = Value::Object(entry);
            match position {
                Some(position) => entries.insert(position, entry),
                None => entries.push(entry),
            }
            container.insert(key, Value::Array(entries));
        }
    }
}

/// Runs `edit` on the core resource, or on the object under the extension URN `schema`
/// (created when missing, dropped when left empty).
fn edit_container(resource: &mut Map<String, Value>, schema: Option<&str>, edit: impl FnOnce(&mut Map<String, Value>)) {
    match schema {
        None => edit(resource),
        Some(urn) => {
            let (key, existing) = take_entry(resource, urn);
            let mut extension = into_object(existing);
            edit(&mut extension);
            if !extension.is_empty() {
                resource.insert(key, Value::Object(extension));
            }
        }
    }
}

/// Removes the entry `path`'s filter selects when it holds nothing but the filter's keys and
/// `primary` (e.g. a work email without an address), and the list when that leaves it empty.
fn drop_entries_without_content(container: &mut Map<String, Value>, path: &TargetPath) {
    let (key, existing) = take_entry(container, &path.attribute);
    let Some(existing) = existing else {
        return;
    };
    let Value::Array(mut entries) = existing else {
        container.insert(key, existing);
        return;
    };
    entries.retain(|entry| {
        let Value::Object(fields) = entry else {
            return true;
        };
        let content_free = fields.keys().all(|field| {
            field.eq_ignore_ascii_case("primary")
                || path
                    .filter
                    .iter()
                    .any(|term| term.attribute.eq_ignore_ascii_case(field))
        });
        !(content_free && matches_filter(entry, &path.filter))
    });
    if !entries.is_empty() {
        container.insert(key, Value::Array(entries));
    }
}

fn matches_filter(entry: &Value, filter: &[FilterTerm]) -> bool {
    let Value::Object(entry) = entry else {
        return false;
    };
    filter.iter().all(|term| {
        entry
            .iter()
            .any(|(key, actual)| key.eq_ignore_ascii_case(&term.attribute) && literals_match(actual, &term.value))
    })
}
