//! The PATCH operations (RFC 7644) that move an app's copy of a user from one rendering to the
//! next.

use super::UNPATCHED_KEYS;
use crate::domain::scim::ast::AttrPath;
use crate::domain::scim::patch::{PatchOp, PatchOperation};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The RFC 7644 PATCH operations (`add`, `replace`, `remove`) that turn the rendered resource
/// `previous` into `desired`. Complex attributes change per sub-attribute, extension attributes
/// per attribute, multi-valued attributes whole; `schemas`, `id` and `meta` are ignored.
/// Operations come in order of the attribute names, ignoring case.
pub fn patch_operations(previous: &Value, desired: &Value) -> Vec<PatchOperation> {
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
                    let path = AttrPath {
                        urn: Some(name.clone()),
                        attr: attribute,
                        sub: None,
                    };
                    diff_value(path, old, new, &mut operations);
                }
            }
            (Some(Value::Object(before)), Some(Value::Object(after))) if !is_extension => {
                for (sub, old, new) in pair_entries(before, after) {
                    let path = AttrPath {
                        urn: None,
                        attr: name.clone(),
                        sub: Some(sub),
                    };
                    diff_value(path, old, new, &mut operations);
                }
            }
            (before, after) => diff_value(AttrPath::simple(name), before, after, &mut operations),
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

fn diff_value(path: AttrPath, before: Option<&Value>, after: Option<&Value>, operations: &mut Vec<PatchOperation>) {
    let operation = match (before, after) {
        (Some(_), None) => PatchOperation::on_attribute(PatchOp::Remove, path, None),
        (None, Some(value)) => PatchOperation::on_attribute(PatchOp::Add, path, Some(value.clone())),
        (Some(old), Some(new)) if old != new => PatchOperation::on_attribute(PatchOp::Replace, path, Some(new.clone())),
        _ => return,
    };
    operations.push(operation);
}
