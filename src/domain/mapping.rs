//! Per-app attribute mapping: how a directory user becomes a SCIM 2.0 User resource (RFC 7643),
//! the PATCH operations (RFC 7644) that move an app's copy from one rendering to the next,
//! and the built-in presets for common apps.

use super::attribute::AttributeDefinition;
use super::error::{Error, Result};
use super::scim::ast::{CompareOp, Filter, PatchPath};
use super::scim::path::parse_patch_path;
use super::user::User;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The schema URN of the SCIM core User resource.
pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

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

/// Longest excerpt of a path quoted in an error message.
const MAX_QUOTED_LEN: usize = 80;

/// One `subAttr eq literal` condition of a value filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterTerm {
    /// The sub-attribute compared, as written.
    pub attribute: String,
    /// The literal it must equal (string, boolean or number).
    pub value: Value,
}

/// A parsed SCIM attribute path such as `name.givenName`, `emails[type eq "work"].value` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`: the SCIM PATCH path
/// grammar (`scim::path`, the one parser, fuzzed), restricted to what a mapping can set (value
/// filters of `eq` terms joined by `and`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetPath {
    text: String,
    schema: Option<String>,
    attribute: String,
    filter: Vec<FilterTerm>,
    sub_attribute: Option<String>,
}

/// How a path addresses its attribute; one attribute must always be addressed the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathShape {
    Whole,
    SubAttribute,
    Filtered,
}

impl TargetPath {
    /// Parses `text`; a malformed or unsupported path is a validation error on `target`.
    pub fn parse(text: &str) -> Result<Self> {
        parse_target(text).map_err(|reason| Error::invalid("target", reason))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The extension schema URN, as written; `None` for the core User schema.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The attribute name, as written.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// The value filter's conditions; empty when the path has no filter.
    pub fn filter(&self) -> &[FilterTerm] {
        &self.filter
    }

    /// The sub-attribute after the `.`, as written.
    pub fn sub_attribute(&self) -> Option<&str> {
        self.sub_attribute.as_deref()
    }

    /// The name of what the path finally sets: the sub-attribute, else the attribute.
    fn leaf(&self) -> &str {
        self.sub_attribute.as_deref().unwrap_or(&self.attribute)
    }

    fn shape(&self) -> PathShape {
        if !self.filter.is_empty() {
            PathShape::Filtered
        } else if self.sub_attribute.is_some() {
            PathShape::SubAttribute
        } else {
            PathShape::Whole
        }
    }

    /// Case-insensitive key of the attribute the path sets (schema and attribute name).
    fn attribute_key(&self) -> String {
        match &self.schema {
            Some(schema) => format!(
                "{}:{}",
                schema.to_ascii_lowercase(),
                self.attribute.to_ascii_lowercase()
            ),
            None => self.attribute.to_ascii_lowercase(),
        }
    }

    /// Case-insensitive key of the whole path; equal keys set the same value.
    /// What the path sets, for comparing paths: names regardless of case, filter terms in any order.
    pub(crate) fn key(&self) -> String {
        let mut key = self.attribute_key();
        if !self.filter.is_empty() {
            let mut terms: Vec<String> = self
                .filter
                .iter()
                .map(|term| format!("{}={}", term.attribute.to_ascii_lowercase(), literal_key(&term.value)))
                .collect();
            terms.sort();
            key.push('[');
            key.push_str(&terms.join("&"));
            key.push(']');
        }
        if let Some(sub) = &self.sub_attribute {
            key.push('.');
            key.push_str(&sub.to_ascii_lowercase());
        }
        key
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Filter literals compare case-insensitively when they are strings (SCIM's default `caseExact: false`).
fn literal_key(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.to_lowercase()).to_string(),
        other => other.to_string(),
    }
}

fn literals_match(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => actual == expected,
    }
}

/// Quotes at most [`MAX_QUOTED_LEN`] characters of `text` for an error message.
fn quoted(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_LEN {
        format!("'{text}'")
    } else {
        let head: String = text.chars().take(MAX_QUOTED_LEN).collect();
        format!("'{head}…'")
    }
}

fn parse_target(text: &str) -> std::result::Result<TargetPath, String> {
    if text.is_empty() {
        return Err("the target path must not be empty".to_owned());
    }
    if text.chars().count() > MAX_TARGET_LEN {
        return Err(format!("{} is longer than {MAX_TARGET_LEN} characters", quoted(text)));
    }
    parse_target_parts(text).map_err(|reason| format!("{} is not a valid SCIM attribute path: {reason}", quoted(text)))
}

fn parse_target_parts(text: &str) -> std::result::Result<TargetPath, String> {
    // Surrounding spaces are not part of a stored path.
    if text.trim() != text {
        return Err("unexpected spaces around the path".to_owned());
    }
    let path = parse_patch_path(text).map_err(|e| e.to_string())?;
    let PatchPath {
        attr,
        filter,
        sub_after_filter,
    } = path;
    let schema = match attr.urn {
        Some(urn) => {
            check_urn(&urn)?;
            (!urn.eq_ignore_ascii_case(CORE_USER_SCHEMA)).then_some(urn)
        }
        None => None,
    };
    let (filter, sub_attribute) = match filter {
        Some(filter) => (filter_terms(filter)?, sub_after_filter),
        None => (Vec::new(), attr.sub),
    };
    Ok(TargetPath {
        text: text.to_owned(),
        schema,
        attribute: attr.attr,
        filter,
        sub_attribute,
    })
}

/// A schema URN as the mapping accepts it: at least three non-empty segments.
fn check_urn(urn: &str) -> std::result::Result<(), String> {
    let well_formed = urn.split(':').count() >= 3 && urn.split(':').all(|segment| !segment.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(format!("{} is not a valid schema URN", quoted(urn)))
    }
}

/// The value filter of a target path as equality terms: `subAttr eq literal`, joined by `and`,
/// each sub-attribute once, no `null`.
fn filter_terms(filter: Filter) -> std::result::Result<Vec<FilterTerm>, String> {
    const UNSUPPORTED: &str =
        "unsupported filter: only filters of the form 'subAttr eq value', joined by 'and', are supported";
    fn collect(filter: Filter, terms: &mut Vec<FilterTerm>) -> std::result::Result<(), String> {
        match filter {
            Filter::And(left, right) => {
                collect(*left, terms)?;
                collect(*right, terms)
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if !value.is_null() && path.urn.is_none() && path.sub.is_none() => {
                if terms.iter().any(|t| t.attribute.eq_ignore_ascii_case(&path.attr)) {
                    return Err(format!("the filter names {} twice", quoted(&path.attr)));
                }
                terms.push(FilterTerm {
                    attribute: path.attr,
                    value,
                });
                Ok(())
            }
            _ => Err(UNSUPPORTED.to_owned()),
        }
    }
    let mut terms = Vec::new();
    collect(filter, &mut terms)?;
    Ok(terms)
}

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
    fn walk<'a>(&'a self, depth: usize, visit: &mut impl FnMut(&'a Source, usize)) {
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

fn profile_value(user: &User, name: &str) -> Option<Value> {
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

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The text of a scalar value; lists and objects have none.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn map_text(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(convert(&s)),
        other => other,
    }
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
    fn check(&self, is_custom: impl Fn(&str) -> bool) -> Result<()> {
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

/// The RFC 7644 PATCH operations (`add`, `replace`, `remove`) that turn the rendered resource
/// `previous` into `desired`. Complex attributes change per sub-attribute, extension attributes
/// per attribute, multi-valued attributes whole; `schemas`, `id` and `meta` are ignored.
/// Operations come in order of the attribute names, ignoring case.
pub fn patch_operations(previous: &Value, desired: &Value) -> Vec<Value> {
    let empty = Map::new();
    let previous = previous.as_object().unwrap_or(&empty);
    let desired = desired.as_object().unwrap_or(&empty);
    let mut operations = Vec::new();
    for (name, before, after) in pair_entries(previous, desired) {
        if UNPATCHED_KEYS.iter().any(|key| key.eq_ignore_ascii_case(&name)) {
            continue;
        }
        let is_extension = name.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"));
        match (before, after) {
            (before, after) if is_extension && is_object_or_absent(before) && is_object_or_absent(after) => {
                let before = before.and_then(Value::as_object).unwrap_or(&empty);
                let after = after.and_then(Value::as_object).unwrap_or(&empty);
                for (attribute, old, new) in pair_entries(before, after) {
                    diff_value(format!("{name}:{attribute}"), old, new, &mut operations);
                }
            }
            (Some(Value::Object(before)), Some(Value::Object(after))) if !is_extension => {
                for (sub, old, new) in pair_entries(before, after) {
                    diff_value(format!("{name}.{sub}"), old, new, &mut operations);
                }
            }
            (before, after) => diff_value(name, before, after, &mut operations),
        }
    }
    operations
}

fn is_object_or_absent(value: Option<&Value>) -> bool {
    value.is_none_or(Value::is_object)
}

/// The union of both maps' keys, matched ignoring case and sorted that way, with each side's
/// value (nulls count as absent). The name is `desired`'s spelling when it has one.
fn pair_entries<'a>(
    previous: &'a Map<String, Value>,
    desired: &'a Map<String, Value>,
) -> Vec<(String, Option<&'a Value>, Option<&'a Value>)> {
    type Pair<'v> = (String, Option<&'v Value>, Option<&'v Value>);
    let mut pairs: BTreeMap<String, Pair<'a>> = BTreeMap::new();
    for (key, value) in previous.iter().filter(|(_, v)| !v.is_null()) {
        pairs
            .entry(key.to_lowercase())
            .or_insert_with(|| (key.clone(), None, None))
            .1 = Some(value);
    }
    for (key, value) in desired.iter().filter(|(_, v)| !v.is_null()) {
        let pair = pairs
            .entry(key.to_lowercase())
            .or_insert_with(|| (key.clone(), None, None));
        pair.0 = key.clone();
        pair.2 = Some(value);
    }
    pairs.into_values().collect()
}

fn diff_value(path: String, before: Option<&Value>, after: Option<&Value>, operations: &mut Vec<Value>) {
    match (before, after) {
        (Some(_), None) => operations.push(json!({"op": "remove", "path": path})),
        (None, Some(value)) => operations.push(json!({"op": "add", "path": path, "value": value})),
        (Some(old), Some(new)) if old != new => {
            operations.push(json!({"op": "replace", "path": path, "value": new}));
        }
        _ => {}
    }
}

/// A built-in mapping for a known app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preset {
    /// Identifier (`monday`, `generic`).
    pub name: String,
    /// Label for people.
    pub title: String,
    /// What the preset is for and what it needs.
    pub description: String,
    /// What happens to an app account when its user loses access (`deactivate`).
    pub deprovision: String,
    /// The provisioning features an app created from the preset starts with.
    #[serde(default)]
    pub features: crate::domain::features::Features,
    /// The attribute mapping.
    pub mapping: Mapping,
}

impl Preset {
    /// Names of the custom attributes the preset's mapping reads; they must be defined before use.
    pub fn custom_attributes_used(&self) -> Vec<String> {
        self.mapping.custom_attributes_used()
    }
}

/// The preset files compiled into the binary.
const PRESET_FILES: &[(&str, &str)] = &[
    ("generic-scim.json", include_str!("../../presets/generic-scim.json")),
    ("monday.json", include_str!("../../presets/monday.json")),
];

/// All built-in presets; a broken preset file is a configuration error.
pub fn presets() -> Result<Vec<Preset>> {
    PRESET_FILES
        .iter()
        .map(|(file, text)| {
            let preset: Preset = serde_json::from_str(text)
                .map_err(|e| Error::Config(format!("built-in preset {file} is not valid: {e}")))?;
            preset
                .mapping
                .check(|_| true)
                .map_err(|e| Error::Config(format!("built-in preset {file} has an invalid mapping: {e}")))?;
            Ok(preset)
        })
        .collect()
}

/// The built-in preset called `name`, if there is one.
pub fn preset(name: &str) -> Result<Option<Preset>> {
    Ok(presets()?.into_iter().find(|preset| preset.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::attribute::AttributeType;
    use crate::domain::user::UserSource;
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn definition(name: &str) -> AttributeDefinition {
        AttributeDefinition {
            name: name.into(),
            display_name: name.into(),
            kind: AttributeType::String,
            required: false,
            description: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn definitions(names: &[&str]) -> Vec<AttributeDefinition> {
        names.iter().map(|name| definition(name)).collect()
    }

    fn user() -> User {
        User {
            id: Uuid::from_u128(0x0196_0000_0000_7000_8000_0000_0000_0001),
            username: "Alice.Smith".into(),
            given_name: Some("Alice".into()),
            family_name: Some("Smith".into()),
            display_name: Some("Alice Smith".into()),
            formatted_name: Some("Ms. Alice Smith".into()),
            email: Some("Alice.Smith@Example.com".into()),
            active: true,
            external_id: None,
            source: UserSource::Local,
            attributes: [
                ("title".to_owned(), json!("Engineer")),
                ("language".to_owned(), json!("en")),
                ("timezone".to_owned(), json!("Europe/Berlin")),
            ]
            .into_iter()
            .collect(),
            extensions: Map::new(),
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn mapping(rules: Value) -> Mapping {
        serde_json::from_value(rules).unwrap()
    }

    fn rule(target: &str, source: Value) -> Value {
        json!({"target": target, "source": source})
    }

    fn validation_error(result: Result<()>) -> (String, String) {
        match result {
            Err(Error::Validation { field, message }) => (field, message),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn parses_plain_sub_attribute_and_filter_paths() {
        let path = TargetPath::parse("userName").unwrap();
        assert_eq!(
            (path.schema(), path.attribute(), path.sub_attribute()),
            (None, "userName", None)
        );

        let path = TargetPath::parse("name.givenName").unwrap();
        assert_eq!((path.attribute(), path.sub_attribute()), ("name", Some("givenName")));

        let path = TargetPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(path.attribute(), "emails");
        assert_eq!(
            path.filter(),
            &[FilterTerm {
                attribute: "type".into(),
                value: json!("work")
            }]
        );
        assert_eq!(path.sub_attribute(), Some("value"));
        assert_eq!(path.as_str(), r#"emails[type eq "work"].value"#);

        let path =
            TargetPath::parse(r#"addresses[type EQ "work" AnD primary eq true and rank eq -1.5e2].locality"#).unwrap();
        let literals: Vec<&Value> = path.filter().iter().map(|t| &t.value).collect();
        assert_eq!(literals, vec![&json!("work"), &json!(true), &json!(-150.0)]);

        let path = TargetPath::parse(r#"emails[type eq "a\"]b"].value"#).unwrap();
        assert_eq!(path.filter()[0].value, json!("a\"]b"));
    }

    #[test]
    fn parses_schema_urns_without_splitting_on_dots() {
        let path = TargetPath::parse(&format!("{ENTERPRISE}:department")).unwrap();
        assert_eq!((path.schema(), path.attribute()), (Some(ENTERPRISE), "department"));

        let path = TargetPath::parse(&format!("{ENTERPRISE}:manager.value")).unwrap();
        assert_eq!(
            (path.schema(), path.attribute(), path.sub_attribute()),
            (Some(ENTERPRISE), "manager", Some("value"))
        );

        let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let path = TargetPath::parse(&format!("{custom}:costCenter")).unwrap();
        assert_eq!((path.schema(), path.attribute()), (Some(custom), "costCenter"));

        let path = TargetPath::parse("URN:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
        assert_eq!((path.schema(), path.attribute()), (None, "name"));

        let path = TargetPath::parse(&format!(r#"{custom}:phones[type eq "a:b"].value"#)).unwrap();
        assert_eq!((path.schema(), path.attribute()), (Some(custom), "phones"));
    }

    #[test]
    fn refuses_malformed_paths() {
        let cases = [
            ("", "empty"),
            ("1abc", "attribute name"),
            ("name.", "sub-attribute"),
            ("name.given.more", "not a valid sub-attribute name"),
            (r#"emails[type eq "work".value"#, "']'"),
            (r#"emails[type eq "work"#, "not closed"),
            ("emails[type", "operator"),
            (r#"emails[type ne "work"].value"#, "unsupported filter"),
            (
                r#"emails[type eq "work" or primary eq true].value"#,
                "unsupported filter",
            ),
            ("emails[type pr].value", "unsupported filter"),
            ("emails[type eq null].value", "unsupported filter"),
            (r#"emails[type eq "a" and type eq "b"].value"#, "twice"),
            ("urn:x", "schema URN"),
            ("urn:a::b:c", "schema URN"),
            ("urn:a:b:", "no attribute name"),
            ("na me", "expected '['"),
        ];
        for (text, expected) in cases {
            let error = TargetPath::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let long = "a".repeat(MAX_TARGET_LEN + 1);
        assert!(
            TargetPath::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than 512")
        );
        assert!(TargetPath::parse(&"a".repeat(MAX_TARGET_LEN)).is_ok());
    }

    #[test]
    fn renders_the_monday_preset() {
        let monday = preset("monday").unwrap().unwrap();
        monday
            .mapping
            .validate(&definitions(&["title", "language", "timezone"]))
            .unwrap();
        assert_eq!(
            monday.mapping.render(&user()).unwrap(),
            json!({
                "schemas": [CORE_USER_SCHEMA],
                "userName": "alice.smith",
                "displayName": "Alice Smith",
                "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Ms. Alice Smith"},
                "emails": [{"type": "work", "value": "alice.smith@example.com", "primary": true}],
                "title": "Engineer",
                "preferredLanguage": "en",
                "active": true,
                "timezone": "Europe/Berlin"
            })
        );
    }

    #[test]
    fn presets_load_and_list_their_custom_attributes() {
        let all = presets().unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["generic", "monday"]);
        let monday = preset("monday").unwrap().unwrap();
        assert_eq!(monday.title, "Monday.com");
        assert_eq!(monday.deprovision, "deactivate");
        assert_eq!(monday.custom_attributes_used(), vec!["title", "language", "timezone"]);
        let generic = preset("generic").unwrap().unwrap();
        assert!(generic.custom_attributes_used().is_empty());
        generic.mapping.validate(&[]).unwrap();
        assert!(preset("nope").unwrap().is_none());
        let rendered = generic.mapping.render(&user()).unwrap();
        assert_eq!(rendered["externalId"], json!(user().id.to_string()));
        assert_eq!(rendered["userName"], json!("Alice.Smith"));
    }

    #[test]
    fn absent_values_set_nothing() {
        let mut sparse = user();
        sparse.given_name = None;
        sparse.family_name = Some(String::new());
        sparse.formatted_name = None;
        sparse.email = None;
        sparse.attributes.clear();
        sparse.attributes.insert("title".into(), Value::Null);
        let monday = preset("monday").unwrap().unwrap();
        assert_eq!(
            monday.mapping.render(&sparse).unwrap(),
            json!({
                "schemas": [CORE_USER_SCHEMA],
                "userName": "alice.smith",
                "displayName": "Alice Smith",
                "active": true
            })
        );
    }

    #[test]
    fn extensions_are_listed_in_schemas_only_when_set() {
        let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let rules = mapping(json!([
            rule("userName", json!({"attribute": "username"})),
            rule(&format!("{custom}:costCenter"), json!({"attribute": "cost_center"})),
            rule(&format!("{ENTERPRISE}:department"), json!({"constant": "R&D"})),
            rule(&format!("{ENTERPRISE}:manager.value"), json!({"constant": "m-1"})),
            rule(&format!("{ENTERPRISE}:manager.displayName"), json!({"constant": "Bob"})),
        ]));
        rules.validate(&definitions(&["cost_center"])).unwrap();
        assert_eq!(
            rules.render(&user()).unwrap(),
            json!({
                "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
                "userName": "Alice.Smith",
                ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1", "displayName": "Bob"}}
            })
        );
    }

    #[test]
    fn sources_combine() {
        let mut person = user();
        person.attributes.insert("level".into(), json!(3));
        let evaluate = |source: Value| serde_json::from_value::<Source>(source).unwrap().evaluate(&person);

        assert_eq!(
            evaluate(
                json!({"concat": [{"attribute": "given_name"}, {"constant": " "}, {"attribute": "nope"}, {"attribute": "level"}, {"constant": false}]})
            ),
            Some(json!("Alice 3false"))
        );
        assert_eq!(
            evaluate(json!({"concat": [{"attribute": "external_id"}, {"attribute": "nope"}]})),
            None
        );
        assert_eq!(
            evaluate(json!({"lower": {"attribute": "email"}})),
            Some(json!("alice.smith@example.com"))
        );
        assert_eq!(
            evaluate(json!({"upper": {"attribute": "given_name"}})),
            Some(json!("ALICE"))
        );
        assert_eq!(evaluate(json!({"upper": {"attribute": "level"}})), Some(json!(3)));
        assert_eq!(evaluate(json!({"lower": {"attribute": "external_id"}})), None);
        assert_eq!(
            evaluate(json!({"default": [{"attribute": "external_id"}, {"constant": ""}, {"attribute": "username"}]})),
            Some(json!("Alice.Smith"))
        );
        assert_eq!(evaluate(json!({"default": [{"attribute": "external_id"}]})), None);
        let lookup = |default: Option<Value>| {
            let mut source =
                json!({"lookup": {"input": {"attribute": "language"}, "table": {"en": "English", "de": "German"}}});
            if let Some(default) = default {
                source["lookup"]["default"] = default;
            }
            source
        };
        assert_eq!(evaluate(lookup(None)), Some(json!("English")));
        person.attributes.insert("language".into(), json!("fr"));
        let evaluate = |source: Value| serde_json::from_value::<Source>(source).unwrap().evaluate(&person);
        assert_eq!(evaluate(lookup(None)), None);
        assert_eq!(evaluate(lookup(Some(json!("Other")))), Some(json!("Other")));
        assert_eq!(evaluate(json!({"constant": null})), None);
        assert_eq!(evaluate(json!({"attribute": "active"})), Some(json!(true)));
    }

    #[test]
    fn sources_round_trip_through_json() {
        let text = r#"{"lookup":{"input":{"lower":{"attribute":"language"}},"table":{"en":"English"},"default":"x"}}"#;
        let source: Source = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&source).unwrap(), text);
        let rules = mapping(json!([rule("userName", json!({"attribute": "username"}))]));
        assert_eq!(
            serde_json::to_value(&rules).unwrap(),
            json!([{"target": "userName", "source": {"attribute": "username"}}])
        );
    }

    #[test]
    fn active_must_render_as_a_boolean() {
        let rules = |source: Value| {
            mapping(json!([
                rule("userName", json!({"attribute": "username"})),
                rule("active", source)
            ]))
        };
        let rendered = rules(json!({"constant": "FALSE"})).render(&user()).unwrap();
        assert_eq!(rendered["active"], json!(false));
        match rules(json!({"constant": "yes"})).render(&user()) {
            Err(Error::Validation { field, message }) => {
                assert_eq!(field, "active");
                assert!(message.contains("mapping[1]"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let extension = mapping(json!([
            rule("userName", json!({"attribute": "username"})),
            rule("urn:example:ext:Active", json!({"constant": 1}))
        ]));
        assert!(extension.render(&user()).is_err());
    }

    #[test]
    fn validate_reports_problems_per_rule() {
        let base = || rule("userName", json!({"attribute": "username"}));

        let (field, message) = validation_error(
            mapping(json!([base(), rule("costCenter", json!({"attribute": "costcenter"}))])).validate(&[]),
        );
        assert_eq!(field, "mapping[1].source");
        assert_eq!(
            message,
            "'costcenter' is neither a default profile attribute nor a defined custom attribute"
        );

        let nested = json!({"concat": [{"constant": "x"}, {"lower": {"attribute": "costcenter"}}]});
        let (field, _) = validation_error(mapping(json!([base(), rule("title", nested)])).validate(&[]));
        assert_eq!(field, "mapping[1].source");

        let (field, message) = validation_error(
            mapping(json!([
                base(),
                rule("name.givenName", json!({"attribute": "given_name"})),
                rule("Name.GIVENNAME", json!({"attribute": "given_name"}))
            ]))
            .validate(&[]),
        );
        assert_eq!(field, "mapping[2].target");
        assert!(message.contains("mapping[1]"), "{message}");

        let (field, _) = validation_error(
            mapping(json!([
                base(),
                rule(&format!("{CORE_USER_SCHEMA}:username"), json!({"attribute": "email"}))
            ]))
            .validate(&[]),
        );
        assert_eq!(field, "mapping[1].target");

        let (field, _) = validation_error(
            mapping(json!([
                base(),
                rule(r#"emails[type eq "work"].value"#, json!({"attribute": "email"})),
                rule(r#"emails[TYPE eq "WORK"].Value"#, json!({"attribute": "email"}))
            ]))
            .validate(&[]),
        );
        assert_eq!(field, "mapping[2].target");

        let (field, message) = validation_error(
            mapping(json!([
                base(),
                rule("name", json!({"constant": {}})),
                rule("name.givenName", json!({"constant": "x"}))
            ]))
            .validate(&[]),
        );
        assert_eq!(field, "mapping[2].target");
        assert!(message.contains("not a mix"), "{message}");

        let (field, message) =
            validation_error(mapping(json!([rule("displayName", json!({"attribute": "display_name"}))])).validate(&[]));
        assert_eq!(field, "mapping");
        assert!(message.contains("userName"), "{message}");

        for read_only in ["id", "meta.created", "Schemas", "groups"] {
            let (field, message) =
                validation_error(mapping(json!([base(), rule(read_only, json!({"constant": "x"}))])).validate(&[]));
            assert_eq!(field, "mapping[1].target");
            assert!(message.contains("read-only"), "{message}");
        }

        let (field, message) =
            validation_error(mapping(json!([base(), rule("emails[type eq", json!({"constant": "x"}))])).validate(&[]));
        assert_eq!(field, "mapping[1].target");
        assert!(message.contains("expected a value after 'eq'"), "{message}");

        let (_, message) = validation_error(
            mapping(json!([
                base(),
                rule(r#"emails[type eq "work"]"#, json!({"constant": "x"}))
            ]))
            .validate(&[]),
        );
        assert!(message.contains("no sub-attribute"), "{message}");

        let (_, message) = validation_error(
            mapping(json!([
                base(),
                rule(r#"emails[type eq "work"].type"#, json!({"constant": "x"}))
            ]))
            .validate(&[]),
        );
        assert!(message.contains("filter already fixes"), "{message}");

        let mut deep = json!({"attribute": "username"});
        for _ in 0..MAX_SOURCE_DEPTH {
            deep = json!({"lower": deep});
        }
        let (_, message) = validation_error(mapping(json!([base(), rule("title", deep)])).validate(&[]));
        assert!(message.contains("nested"), "{message}");

        mapping(json!([
            base(),
            rule("title", json!({"attribute": "costcenter"})),
            rule(&format!("{ENTERPRISE}:id"), json!({"constant": "x"}))
        ]))
        .validate(&definitions(&["costcenter"]))
        .unwrap();
    }

    #[test]
    fn patch_changes_a_name_sub_attribute() {
        let before =
            json!({"schemas": [CORE_USER_SCHEMA], "userName": "a", "name": {"givenName": "Al", "familyName": "S"}});
        let after =
            json!({"schemas": [CORE_USER_SCHEMA], "userName": "a", "name": {"givenName": "Alice", "familyName": "S"}});
        assert_eq!(
            patch_operations(&before, &after),
            vec![json!({"op": "replace", "path": "name.givenName", "value": "Alice"})]
        );
    }

    #[test]
    fn patch_replaces_the_emails_array_whole() {
        let before = json!({"userName": "a", "emails": [{"type": "work", "value": "a@x.io", "primary": true}]});
        let after = json!({"userName": "a", "emails": [{"type": "work", "value": "b@x.io", "primary": true}]});
        assert_eq!(
            patch_operations(&before, &after),
            vec![
                json!({"op": "replace", "path": "emails", "value": [{"type": "work", "value": "b@x.io", "primary": true}]})
            ]
        );
    }

    #[test]
    fn patch_adds_and_removes_attributes() {
        let before =
            json!({"userName": "a", "title": "Engineer", "name": {"givenName": "A", "formatted": "A"}, "id": "1"});
        let after =
            json!({"userName": "a", "displayName": "A", "name": {"givenName": "A", "familyName": "B"}, "meta": {}});
        assert_eq!(
            patch_operations(&before, &after),
            vec![
                json!({"op": "add", "path": "displayName", "value": "A"}),
                json!({"op": "add", "path": "name.familyName", "value": "B"}),
                json!({"op": "remove", "path": "name.formatted"}),
                json!({"op": "remove", "path": "title"}),
            ]
        );
        let without_name = json!({"userName": "a", "displayName": "A"});
        assert_eq!(
            patch_operations(&after, &without_name),
            vec![json!({"op": "remove", "path": "name"})]
        );
        assert_eq!(
            patch_operations(&without_name, &after),
            vec![json!({"op": "add", "path": "name", "value": {"givenName": "A", "familyName": "B"}})]
        );
    }

    #[test]
    fn patch_changes_extension_attributes() {
        let before = json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
            "userName": "a",
            ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1"}, "costCenter": "7"}
        });
        let after = json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
            "userName": "a",
            ENTERPRISE: {"department": "Sales", "manager": {"value": "m-2"}, "division": "EU"}
        });
        assert_eq!(
            patch_operations(&before, &after),
            vec![
                json!({"op": "remove", "path": format!("{ENTERPRISE}:costCenter")}),
                json!({"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}),
                json!({"op": "add", "path": format!("{ENTERPRISE}:division"), "value": "EU"}),
                json!({"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "m-2"}}),
            ]
        );
        let core_only = json!({"schemas": [CORE_USER_SCHEMA], "userName": "a"});
        assert_eq!(
            patch_operations(&after, &core_only),
            vec![
                json!({"op": "remove", "path": format!("{ENTERPRISE}:department")}),
                json!({"op": "remove", "path": format!("{ENTERPRISE}:division")}),
                json!({"op": "remove", "path": format!("{ENTERPRISE}:manager")}),
            ]
        );
    }

    #[test]
    fn patch_without_changes_is_empty() {
        let rendered = preset("monday").unwrap().unwrap().mapping.render(&user()).unwrap();
        assert!(patch_operations(&rendered, &rendered).is_empty());
        let mut other_schemas = rendered.clone();
        other_schemas["schemas"] = json!([]);
        assert!(patch_operations(&rendered, &other_schemas).is_empty());
    }

    #[test]
    fn patch_matches_attribute_names_ignoring_case() {
        let before = json!({"userName": "a", "Title": "x"});
        let after = json!({"userName": "a", "title": "y"});
        assert_eq!(
            patch_operations(&before, &after),
            vec![json!({"op": "replace", "path": "title", "value": "y"})]
        );
    }

    #[test]
    fn mapping_schema_is_an_array_of_rules() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(Mapping::schema()).unwrap();
        assert_eq!(schema["type"], json!("array"));
        assert_eq!(schema["items"]["$ref"], json!("#/components/schemas/MappingRule"));
        let mut schemas = Vec::new();
        <Preset as utoipa::ToSchema>::schemas(&mut schemas);
        let names: Vec<&str> = schemas.iter().map(|(name, _)| name.as_str()).collect();
        assert!(names.contains(&"MappingRule") && names.contains(&"Source"), "{names:?}");
    }

    /// Applies exactly the operation forms [`patch_operations`] emits.
    fn apply_patch(resource: &Value, operations: &[Value]) -> Value {
        let mut resource = resource.as_object().unwrap().clone();
        for operation in operations {
            let path = operation["path"].as_str().unwrap();
            let (container, name) = if path.to_ascii_lowercase().starts_with("urn:") {
                let colon = path.rfind(':').unwrap();
                (Some(&path[..colon]), &path[colon + 1..])
            } else {
                (None, path)
            };
            let (attribute, sub) = match (container, name.split_once('.')) {
                (None, Some((attribute, sub))) => (attribute, Some(sub)),
                _ => (name, None),
            };
            let mut scope: Vec<&str> = container.into_iter().collect();
            scope.push(attribute);
            scope.extend(sub);
            let (leaf, parents) = scope.split_last().unwrap();
            let mut target = &mut resource;
            for parent in parents {
                target = target
                    .entry(parent.to_string())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .unwrap();
            }
            match operation["op"].as_str().unwrap() {
                "add" => {
                    assert!(!target.contains_key(*leaf), "add of an existing {path}");
                    target.insert(leaf.to_string(), operation["value"].clone());
                }
                "replace" => {
                    assert!(target.contains_key(*leaf), "replace of a missing {path}");
                    target.insert(leaf.to_string(), operation["value"].clone());
                }
                "remove" => {
                    assert!(target.remove(*leaf).is_some(), "remove of a missing {path}");
                }
                other => panic!("unexpected op {other}"),
            }
            resource.retain(|_, value| value.as_object().is_none_or(|object| !object.is_empty()));
        }
        Value::Object(resource)
    }

    fn without_schemas(value: &Value) -> Value {
        let mut value = value.clone();
        value.as_object_mut().unwrap().remove("schemas");
        value
    }

    fn optional_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-zA-Z ]{0,4}")
    }

    fn arbitrary_user() -> impl Strategy<Value = User> {
        (
            (any::<u128>(), "[a-zA-Z][a-zA-Z0-9._-]{0,5}", any::<bool>()),
            (optional_text(), optional_text(), optional_text(), optional_text()),
            (
                proptest::option::of("[a-c]{1,2}@x\\.io"),
                optional_text(),
                optional_text(),
            ),
        )
            .prop_map(
                |((id, username, active), (given, family, display, formatted), (email, department, manager))| {
                    let mut user = user();
                    user.id = Uuid::from_u128(id % 4);
                    user.username = username;
                    user.active = active;
                    user.given_name = given;
                    user.family_name = family;
                    user.display_name = display;
                    user.formatted_name = formatted;
                    user.email = email;
                    user.attributes.clear();
                    if let Some(department) = department {
                        user.attributes.insert("department".into(), json!(department));
                    }
                    if let Some(manager) = manager {
                        user.attributes.insert("manager".into(), json!(manager));
                    }
                    user
                },
            )
    }

    fn generic_with_extension() -> Mapping {
        let mut rules = preset("generic").unwrap().unwrap().mapping;
        rules.rules.extend(
            mapping(json!([
                rule(&format!("{ENTERPRISE}:department"), json!({"attribute": "department"})),
                rule(&format!("{ENTERPRISE}:manager.value"), json!({"attribute": "manager"})),
            ]))
            .rules,
        );
        rules
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = TargetPath::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_path_like_text(text in r#"(urn:[a-z:.]{0,12}:)?[a-zA-Z0-9.\[\]" :=é\\-]{0,30}"#) {
            if let Ok(path) = TargetPath::parse(&text) {
                prop_assert_eq!(path.as_str(), text.as_str());
            }
        }

        #[test]
        fn patch_turns_previous_into_desired(previous in arbitrary_user(), desired in arbitrary_user()) {
            for rules in [preset("generic").unwrap().unwrap().mapping, generic_with_extension()] {
                let before = rules.render(&previous).unwrap();
                let after = rules.render(&desired).unwrap();
                let operations = patch_operations(&before, &after);
                prop_assert_eq!(without_schemas(&apply_patch(&before, &operations)), without_schemas(&after));
                prop_assert!(patch_operations(&after, &after).is_empty());
            }
        }
    }
}
