//! SCIM PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` request and applying its operations to a
//! resource's JSON, checked against the resource type's schema.
//!
//! A resource is a JSON object: core and common attributes at the top level, extension attributes in
//! an object under the extension's URN (listed in `schemas`). [`apply_patch`] works on a copy and
//! returns the new resource in stored form (see [`strip_empty`]) or the first error, so a failed
//! request changes nothing. Decisions where the RFC is silent or identity providers deviate from it:
//!
//! - Names (attributes, sub-attributes, URNs, `op`, `Operations`) ignore case; output uses the
//!   schema's names. Path-less keys are split at the URN's last `:` and then at the first `.`.
//! - Errors: a malformed body, a missing `PatchOp` schema or an unknown `op` is `invalidSyntax`; a
//!   `path` that does not parse, names no attribute, schema or sub-attribute, or puts a value filter
//!   on an attribute that is not multi-valued and complex is `invalidPath`; an unknown key in a path-less value object, a
//!   value of the wrong type, a missing `value` for add/replace, or removing a required attribute
//!   that had a value is `invalidValue` (the same code a POST without it gets); `remove` without a
//!   path is `noTarget`.
//! - `null`, `""`, `[]` and `{}` mean "no value": adding one is a no-op, replacing with one removes
//!   the target. Inside a complex value, a sub-attribute given as no value is removed on replace.
//! - Read-only attributes named by a path or a top-level key are a `mutability` error, except `id`
//!   written with its current value (Okta sends it in a group rename). Read-only sub-attributes inside
//!   a complex value (`members[].display`, `manager.displayName`) are ignored, as PUT ignores them:
//!   Okta sends `display` with every member. Immutable attributes and sub-attributes may be set when
//!   they have no value or to the value they have; removing or changing one is `mutability`. An
//!   element of a multi-valued attribute is a value of it: adding, replacing or removing whole
//!   elements never counts as changing their immutable sub-attributes.
//! - Add to a multi-valued attribute appends each new element; an element that is already there
//!   (same `value`, and same `type` when both have one; for complex attributes without `value`, all
//!   given sub-attributes equal; strings compared per `caseExact`) is merged instead, so re-adding a
//!   member is a no-op. Setting `primary` to true on an element sets it to false on the others.
//! - A value filter that selects nothing: remove is a no-op success (IdPs remove members that are
//!   already gone); add and replace create the element when the filter is a conjunction of `eq`
//!   comparisons (`emails[type eq "work"].value` creates `{"type":"work","value":...}`), as Entra ID
//!   expects and Microsoft documents, and are `noTarget` otherwise. RFC 7644 §3.5.2.3 asks `noTarget`
//!   for replace; Entra sends `Replace` for attributes first populated after the user was created.
//! - A sub-attribute path on a multi-valued attribute without a filter (`emails.type`) applies to
//!   every element; add and replace with no elements are `noTarget`.
//! - Replace of a single-valued complex attribute sets the given sub-attributes and keeps the others
//!   (§3.5.2.3); replace of a multi-valued one without a filter replaces the whole list, and with a
//!   filter replaces each matching element by the value.
//! - `remove` with a `value` on a multi-valued attribute (Entra: `"path":"members","value":[{"value":
//!   "id"}]`) removes the elements equal to the given ones; on a single-valued attribute the value
//!   is ignored.
//! - Entra quirks: booleans as strings (`"True"`, `"false"`) are converted for boolean attributes;
//!   a bare scalar for a complex attribute with a `value` sub-attribute (`manager: "2819c223"`) means
//!   `{"value": ...}`; a one-element array for a single-valued attribute is unwrapped.
//! - A `schemas` key in a path-less value is ignored. An extension's URN is added to `schemas` when
//!   one of its attributes gets a value, and removed (unless the extension is required) when the
//!   patch leaves its object empty.

use crate::ast::{AttrPath, CompareOp, Filter, PatchPath};
use crate::error::{Error, Result, ScimErrorType};
use crate::eval::element_matches;
use crate::path::parse_patch_path;
use crate::schema::{AttrType, AttributeDef, Mutability, ResourceSchema, Schema};
use serde_json::{Map, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// URN of the PATCH request message (RFC 7644 §3.5.2).
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

type Object = Map<String, Value>;

/// A parsed PATCH request: its operations, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOp,
    /// Where; `None` means the resource itself (add and replace only).
    pub path: Option<PatchPath>,
    /// The value; present for add and replace, optional for remove (elements to remove).
    pub value: Option<Value>,
}

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

impl PatchOp {
    /// The operation as RFC 7644 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Remove => "remove",
            PatchOp::Replace => "replace",
        }
    }
}

impl PatchOperation {
    /// An operation on an attribute (no element filter): `value` for add and replace, none for
    /// remove.
    pub fn on_attribute(op: PatchOp, attr: AttrPath, value: Option<Value>) -> Self {
        PatchOperation {
            op,
            path: Some(PatchPath {
                attr,
                filter: None,
                sub_after_filter: None,
            }),
            value,
        }
    }

    /// Removes the element of the multi-valued attribute `attr` whose `value` is `id`, e.g.
    /// `members[value eq "2819c223"]`.
    pub fn remove_element(attr: &str, id: &str) -> Self {
        PatchOperation {
            op: PatchOp::Remove,
            path: Some(PatchPath {
                attr: AttrPath::simple(attr),
                filter: Some(Filter::Compare {
                    path: AttrPath::simple("value"),
                    op: CompareOp::Eq,
                    value: Value::String(id.to_owned()),
                }),
                sub_after_filter: None,
            }),
            value: None,
        }
    }

    /// The operation as a PATCH request carries it (`op`, `path` in its canonical text, `value`):
    /// what [`parse_patch_request`] reads back as this operation.
    pub fn to_json(&self) -> Value {
        let mut operation = Map::new();
        operation.insert("op".into(), Value::String(self.op.as_str().into()));
        if let Some(path) = &self.path {
            operation.insert("path".into(), Value::String(path.to_string()));
        }
        if let Some(value) = &self.value {
            operation.insert("value".into(), value.clone());
        }
        Value::Object(operation)
    }
}

/// Written as [`PatchOperation::to_json`] writes it.
impl serde::Serialize for PatchOperation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A PATCH request body (RFC 7644 §3.5.2) holding `operations` in order.
pub fn patch_request_body(operations: &[PatchOperation]) -> Value {
    serde_json::json!({
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": operations.iter().map(PatchOperation::to_json).collect::<Vec<_>>(),
    })
}

fn invalid_syntax(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidSyntax, detail)
}

fn invalid_path(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidPath, detail)
}

fn invalid_value(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidValue, detail)
}

fn no_target(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::NoTarget, detail)
}

fn mutability(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::Mutability, detail)
}

/// Parses a PATCH request body (RFC 7644 §3.5.2). Keys and `op` names ignore case (Entra sends
/// `Operations` and `Replace`); an empty `path` counts as none and a `null` value as missing.
pub fn parse_patch_request(body: &Value) -> Result<PatchRequest> {
    let Value::Object(body) = body else {
        return Err(invalid_syntax("a PATCH request body must be a JSON object"));
    };
    let has_schema = get(body, "schemas").and_then(Value::as_array).is_some_and(|schemas| {
        schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)))
    });
    if !has_schema {
        return Err(invalid_syntax(format!("'schemas' must contain '{PATCH_OP_SCHEMA}'")));
    }
    let operations = match get(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => return Err(invalid_syntax("'Operations' must be a non-empty array")),
    };
    let operations = operations
        .iter()
        .enumerate()
        .map(|(index, op)| parse_operation(index, op))
        .collect::<Result<Vec<_>>>()?;
    Ok(PatchRequest { operations })
}

fn parse_operation(index: usize, op: &Value) -> Result<PatchOperation> {
    let at = format!("Operations[{index}]");
    let Value::Object(op) = op else {
        return Err(invalid_syntax(format!("{at} must be an object")));
    };
    let kind = match get(op, "op") {
        Some(Value::String(name)) if name.eq_ignore_ascii_case("add") => PatchOp::Add,
        Some(Value::String(name)) if name.eq_ignore_ascii_case("remove") => PatchOp::Remove,
        Some(Value::String(name)) if name.eq_ignore_ascii_case("replace") => PatchOp::Replace,
        Some(Value::String(name)) => {
            return Err(invalid_syntax(format!(
                "{at}: unknown op '{name}' (expected add, remove or replace)"
            )));
        }
        Some(_) => return Err(invalid_syntax(format!("{at}: 'op' must be a string"))),
        None => return Err(invalid_syntax(format!("{at}: 'op' is missing"))),
    };
    let path = match get(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) if path.trim().is_empty() => None,
        Some(Value::String(path)) => {
            Some(parse_patch_path(path).map_err(|e| invalid_path(format!("{at}: invalid path '{path}': {e}")))?)
        }
        Some(_) => return Err(invalid_path(format!("{at}: 'path' must be a string"))),
    };
    let value = get(op, "value").filter(|v| !v.is_null()).cloned();
    match kind {
        PatchOp::Remove if path.is_none() => Err(no_target(format!("{at}: remove needs a 'path'"))),
        PatchOp::Add | PatchOp::Replace if value.is_none() => {
            Err(invalid_value(format!("{at}: {} needs a 'value'", kind.as_str())))
        }
        _ => Ok(PatchOperation { op: kind, path, value }),
    }
}

/// Applies `request` to a copy of `resource` (a resource of the type `schema` describes) and
/// returns the result in stored form, or the first failing operation's error; the input is never
/// changed. See the module documentation for the rules.
pub fn apply_patch(resource: &Value, request: &PatchRequest, schema: &ResourceSchema) -> Result<Value> {
    let Value::Object(before) = resource else {
        return Err(invalid_syntax("the resource is not a JSON object"));
    };
    let mut before = before.clone();
    strip_object(&mut before);
    let mut after = before.clone();
    for (index, operation) in request.operations.iter().enumerate() {
        apply_operation(&mut after, operation, schema).map_err(|e| in_operation(index, e))?;
    }
    strip_object(&mut after);
    check_required(&before, &after, schema)?;
    sync_schemas(&before, &mut after, schema);
    Ok(Value::Object(after))
}

/// Removes nulls, empty strings, empty arrays and empty objects, recursively (RFC 7643 §2.5: they
/// all mean "unassigned"); the stored form of a resource never contains them.
pub fn strip_empty(resource: &mut Value) {
    match resource {
        Value::Object(object) => strip_object(object),
        Value::Array(items) => {
            items.iter_mut().for_each(strip_empty);
            items.retain(|v| !is_empty(v));
        }
        _ => {}
    }
}

fn strip_object(object: &mut Object) {
    object.values_mut().for_each(strip_empty);
    object.retain(|_, v| !is_empty(v));
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(object) => object.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn in_operation(index: usize, error: Error) -> Error {
    match error {
        Error::Scim { scim_type, detail } if !detail.starts_with("Operations[") => Error::Scim {
            scim_type,
            detail: format!("Operations[{index}]: {detail}"),
        },
        other => other,
    }
}

// ---- case-insensitive object access ----

fn get<'o>(object: &'o Object, name: &str) -> Option<&'o Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn take(object: &mut Object, name: &str) -> Option<Value> {
    let key = object.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    object.remove(&key)
}

/// Sets `name` (the canonical spelling) to `value`, replacing any other spelling; no value unsets it.
fn put(object: &mut Object, name: &str, value: Value) {
    take(object, name);
    if !is_empty(&value) {
        object.insert(name.to_owned(), value);
    }
}

/// Runs `f` on the object holding attributes of the schema `urn` (`None`: the resource itself).
fn with_container<T>(root: &mut Object, urn: Option<&str>, f: impl FnOnce(&mut Object) -> Result<T>) -> Result<T> {
    let Some(urn) = urn else {
        return f(root);
    };
    let mut container = match take(root, urn) {
        Some(Value::Object(object)) => object,
        _ => Object::new(),
    };
    let out = f(&mut container);
    root.insert(urn.to_owned(), Value::Object(container));
    out
}

fn into_list(value: Option<Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    }
}

fn into_object(value: Option<Value>) -> Object {
    match value {
        Some(Value::Object(object)) => object,
        _ => Object::new(),
    }
}

// ---- targets ----

/// What an operation works on, resolved against the schema.
struct Target<'a> {
    /// The extension URN whose object holds the attribute; `None` for the top level.
    container: Option<&'a str>,
    attr: &'a AttributeDef,
    filter: Option<&'a Filter>,
    /// The sub-attribute: `name.givenName`, or the one after a filter (`emails[...].value`).
    sub: Option<&'a AttributeDef>,
    /// The path or key as written, for messages.
    name: String,
}

impl Target<'_> {
    fn is_id(&self) -> bool {
        self.container.is_none() && self.filter.is_none() && self.sub.is_none() && self.attr.name == "id"
    }

    fn sub_label(&self, sub: &AttributeDef) -> String {
        format!("{}.{}", self.attr.name, sub.name)
    }
}

fn describe(path: &PatchPath) -> String {
    let mut out = path.attr.to_string();
    if path.filter.is_some() {
        out.push_str("[...]");
    }
    if let Some(sub) = &path.sub_after_filter {
        out.push('.');
        out.push_str(sub);
    }
    out
}

fn resolve_target<'a>(path: &'a PatchPath, schema: &'a ResourceSchema) -> Result<Target<'a>> {
    let name = describe(path);
    let resolved = schema
        .resolve(&path.attr)
        .map_err(|e| invalid_path(format!("invalid path '{name}': {e}")))?;
    let attr = resolved.attr;
    let sub = match &path.filter {
        None => {
            if path.sub_after_filter.is_some() {
                return Err(invalid_path(format!("invalid path '{name}'")));
            }
            resolved.sub
        }
        Some(filter) => {
            if resolved.sub.is_some() {
                return Err(invalid_path(format!(
                    "invalid path '{name}': a value filter must follow the attribute"
                )));
            }
            if !attr.multi_valued || attr.kind != AttrType::Complex {
                return Err(invalid_path(format!(
                    "invalid path '{name}': '{}' is not a multi-valued complex attribute",
                    attr.name
                )));
            }
            check_filter(filter, attr, &name)?;
            match &path.sub_after_filter {
                None => None,
                Some(sub) => Some(attr.sub(sub).ok_or_else(|| {
                    invalid_path(format!(
                        "invalid path '{name}': '{}' has no sub-attribute '{sub}'",
                        attr.name
                    ))
                })?),
            }
        }
    };
    Ok(Target {
        container: resolved.container(),
        attr,
        filter: path.filter.as_ref(),
        sub,
        name,
    })
}

/// Checks that every path inside a value filter names a sub-attribute of `attr`.
fn check_filter(filter: &Filter, attr: &AttributeDef, name: &str) -> Result<()> {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => {
            if path.urn.is_some() || path.sub.is_some() || attr.sub(&path.attr).is_none() {
                return Err(invalid_path(format!(
                    "invalid path '{name}': '{path}' is not a sub-attribute of '{}'",
                    attr.name
                )));
            }
            Ok(())
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_filter(a, attr, name)?;
            check_filter(b, attr, name)
        }
        Filter::Not(inner) => check_filter(inner, attr, name),
        Filter::ValuePath { .. } => Err(invalid_path(format!(
            "invalid path '{name}': value filters cannot be nested"
        ))),
    }
}

fn matching(list: &[Value], filter: &Filter, attr: &AttributeDef) -> Result<Vec<usize>> {
    let mut hits = Vec::new();
    for (index, element) in list.iter().enumerate() {
        let hit = element.is_object()
            && element_matches(filter, element, attr).map_err(|e| match e {
                Error::Scim {
                    scim_type: ScimErrorType::InvalidFilter,
                    detail,
                } => invalid_path(detail),
                other => other,
            })?;
        if hit {
            hits.push(index);
        }
    }
    Ok(hits)
}

/// The element a filter of `eq` comparisons joined by `and` describes, if it is one.
fn seed_element(filter: &Filter, attr: &AttributeDef) -> Option<Object> {
    fn collect(filter: &Filter, attr: &AttributeDef, out: &mut Object) -> bool {
        match filter {
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } => {
                let Some(sub) = attr.sub(&path.attr) else {
                    return false;
                };
                if sub.mutability == Mutability::ReadOnly || path.sub.is_some() || is_empty(value) {
                    return false;
                }
                let Ok(value) = coerce_single(sub, value, &sub.name) else {
                    return false;
                };
                match get(out, &sub.name) {
                    Some(seen) if !values_equal(seen, &value, sub) => false,
                    _ => {
                        put(out, &sub.name, value);
                        true
                    }
                }
            }
            Filter::And(a, b) => collect(a, attr, out) && collect(b, attr, out),
            _ => false,
        }
    }
    let mut out = Object::new();
    collect(filter, attr, &mut out).then_some(out)
}

// ---- operations ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Add,
    Replace,
}

/// The extension URN a path names as a whole (`urn:...:extension:enterprise:2.0:User`), if it does.
fn whole_extension<'a>(path: &PatchPath, schema: &'a ResourceSchema) -> Option<&'a str> {
    if path.filter.is_some() || path.sub_after_filter.is_some() || path.attr.sub.is_some() {
        return None;
    }
    let urn = path.attr.urn.as_ref()?;
    let full = format!("{urn}:{}", path.attr.attr);
    schema
        .extensions
        .iter()
        .map(|e| e.schema.id.as_str())
        .find(|id| id.eq_ignore_ascii_case(&full))
}

fn apply_operation(root: &mut Object, operation: &PatchOperation, schema: &ResourceSchema) -> Result<()> {
    if let Some(urn) = operation.path.as_ref().and_then(|p| whole_extension(p, schema)) {
        // The path is an extension schema: the operation concerns its whole object.
        if operation.op != PatchOp::Add {
            take(root, urn);
        }
        if operation.op == PatchOp::Remove {
            return Ok(());
        }
        let Some(value) = &operation.value else {
            return Err(invalid_value(format!("{} needs a 'value'", operation.op.as_str())));
        };
        let mode = if operation.op == PatchOp::Add {
            Mode::Add
        } else {
            Mode::Replace
        };
        let mut wrapped = Object::new();
        wrapped.insert(urn.to_owned(), value.clone());
        return write_pathless(root, &Value::Object(wrapped), mode, schema);
    }
    let mode = match operation.op {
        PatchOp::Add => Mode::Add,
        PatchOp::Replace => Mode::Replace,
        PatchOp::Remove => {
            let Some(path) = &operation.path else {
                return Err(no_target("remove needs a 'path'"));
            };
            return remove(root, &resolve_target(path, schema)?, operation.value.as_ref());
        }
    };
    let Some(value) = &operation.value else {
        return Err(invalid_value(format!("{} needs a 'value'", operation.op.as_str())));
    };
    match &operation.path {
        Some(path) => write(root, &resolve_target(path, schema)?, value, mode),
        None => write_pathless(root, value, mode, schema),
    }
}

/// Add or replace without a path: every key of `value` is an attribute to write.
fn write_pathless(root: &mut Object, value: &Value, mode: Mode, schema: &ResourceSchema) -> Result<()> {
    let Value::Object(attributes) = value else {
        return Err(invalid_value(
            "without a 'path', 'value' must be an object of attributes",
        ));
    };
    for (key, value) in attributes {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(urn) = schema.schema_ids().find(|id| id.eq_ignore_ascii_case(key)) {
            match value {
                Value::Object(inner) => {
                    for (name, value) in inner.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("schemas")) {
                        write_key(root, Some(urn), name, value, mode, schema)?;
                    }
                }
                other if is_empty(other) => {}
                _ => {
                    return Err(invalid_value(format!(
                        "'{key}' must be an object of that schema's attributes"
                    )));
                }
            }
            continue;
        }
        let (urn, name) = split_urn(key);
        write_key(root, urn, name, value, mode, schema)?;
    }
    Ok(())
}

/// `urn:...:User:manager.value` -> (`urn:...:User`, `manager.value`); other keys have no URN.
fn split_urn(key: &str) -> (Option<&str>, &str) {
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && let Some(colon) = key.rfind(':')
    {
        return (Some(&key[..colon]), &key[colon + 1..]);
    }
    (None, key)
}

fn write_key(
    root: &mut Object,
    urn: Option<&str>,
    name: &str,
    value: &Value,
    mode: Mode,
    schema: &ResourceSchema,
) -> Result<()> {
    let (attr, sub) = match name.split_once('.') {
        Some((attr, sub)) => (attr, Some(sub.to_owned())),
        None => (name, None),
    };
    let path = AttrPath {
        urn: urn.map(str::to_owned),
        attr: attr.to_owned(),
        sub,
    };
    let resolved = schema
        .resolve(&path)
        .map_err(|e| invalid_value(format!("'{path}' in the value: {e}")))?;
    let target = Target {
        container: resolved.container(),
        attr: resolved.attr,
        filter: None,
        sub: resolved.sub,
        name: path.to_string(),
    };
    write(root, &target, value, mode)
}

/// Add or replace `value` at `target`.
fn write(root: &mut Object, target: &Target<'_>, value: &Value, mode: Mode) -> Result<()> {
    let attr = target.attr;
    if attr.mutability == Mutability::ReadOnly {
        if target.is_id() && get(root, "id") == Some(value) {
            return Ok(());
        }
        return Err(mutability(format!("'{}' is read-only", target.name)));
    }
    if let Some(sub) = target.sub
        && sub.mutability == Mutability::ReadOnly
    {
        return Err(mutability(format!("'{}' is read-only", target.sub_label(sub))));
    }
    if is_empty(value) {
        return match mode {
            Mode::Add => Ok(()),
            Mode::Replace => remove(root, target, None),
        };
    }
    with_container(root, target.container, |container| {
        let current = take(container, &attr.name);
        let before = immutable_copy(attr, current.as_ref());
        let new = match (target.filter, target.sub) {
            (None, None) => write_whole(current, attr, value, mode)?,
            (None, Some(sub)) => write_sub_everywhere(current, target, sub, value)?,
            (Some(filter), sub) => write_filtered(current, target, filter, sub, value, mode)?,
        };
        check_immutable(attr, before.as_ref(), &new, &attr.name)?;
        put(container, &attr.name, new);
        Ok(())
    })
}

/// The new value of an attribute written as a whole.
fn write_whole(current: Option<Value>, attr: &AttributeDef, value: &Value, mode: Mode) -> Result<Value> {
    if attr.multi_valued {
        let items = coerce_multi(attr, value, &attr.name)?;
        let mut list = match mode {
            Mode::Add => into_list(current),
            Mode::Replace => Vec::new(),
        };
        let mut index = ValueIndex::new(&list, attr);
        let mut touched = Vec::with_capacity(items.len());
        for item in items {
            touched.push(add_element(&mut list, &mut index, item, attr)?);
        }
        enforce_primary(&mut list, &touched, attr);
        return Ok(Value::Array(list));
    }
    match coerce_one(attr, value, &attr.name)? {
        Value::Object(fields) => {
            let mut object = into_object(current);
            merge_into(&mut object, fields, attr, mode)?;
            Ok(Value::Object(object))
        }
        other => Ok(other),
    }
}

/// `name.givenName` (one object) or `emails.type` (every element).
fn write_sub_everywhere(
    current: Option<Value>,
    target: &Target<'_>,
    sub: &AttributeDef,
    value: &Value,
) -> Result<Value> {
    let value = coerce(sub, value, &target.sub_label(sub))?;
    if !target.attr.multi_valued {
        let mut object = into_object(current);
        set_sub(&mut object, target.attr, sub, value)?;
        return Ok(Value::Object(object));
    }
    let mut list = into_list(current);
    if list.is_empty() {
        return Err(no_target(format!("'{}' has no values", target.attr.name)));
    }
    for element in &mut list {
        if let Value::Object(object) = element {
            set_sub(object, target.attr, sub, value.clone())?;
        }
    }
    let touched: Vec<usize> = (0..list.len()).collect();
    enforce_primary(&mut list, &touched, target.attr);
    Ok(Value::Array(list))
}

/// `emails[type eq "work"]` or `emails[type eq "work"].value`.
fn write_filtered(
    current: Option<Value>,
    target: &Target<'_>,
    filter: &Filter,
    sub: Option<&AttributeDef>,
    value: &Value,
    mode: Mode,
) -> Result<Value> {
    let attr = target.attr;
    let new = match sub {
        Some(sub) => coerce(sub, value, &target.sub_label(sub))?,
        None => coerce_one(attr, value, &attr.name)?,
    };
    let mut list = into_list(current);
    let hits = matching(&list, filter, attr)?;
    let touched = if hits.is_empty() {
        let Some(mut element) = seed_element(filter, attr) else {
            return Err(no_target(format!(
                "no value of '{}' matches '{}'",
                attr.name, target.name
            )));
        };
        match (sub, new) {
            (Some(sub), new) => put(&mut element, &sub.name, new),
            (None, Value::Object(fields)) => {
                for (name, value) in fields {
                    put(&mut element, &name, value);
                }
            }
            (None, _) => {}
        }
        list.push(Value::Object(element));
        vec![list.len() - 1]
    } else {
        for &index in &hits {
            let Some(Value::Object(element)) = list.get_mut(index) else {
                continue;
            };
            match (sub, &new, mode) {
                (Some(sub), new, _) => set_sub(element, attr, sub, new.clone())?,
                (None, Value::Object(fields), Mode::Add) => merge_into(element, fields.clone(), attr, Mode::Add)?,
                (None, Value::Object(fields), Mode::Replace) => {
                    let mut fresh = fields.clone();
                    strip_object(&mut fresh);
                    *element = fresh;
                }
                (None, _, _) => {}
            }
        }
        hits
    };
    enforce_primary(&mut list, &touched, attr);
    Ok(Value::Array(list))
}

/// Remove at `target`; `value` lists elements to remove from a multi-valued attribute.
fn remove(root: &mut Object, target: &Target<'_>, value: Option<&Value>) -> Result<()> {
    let attr = target.attr;
    if attr.mutability == Mutability::ReadOnly {
        return Err(mutability(format!("'{}' is read-only", target.name)));
    }
    if let Some(sub) = target.sub
        && sub.mutability == Mutability::ReadOnly
    {
        return Err(mutability(format!("'{}' is read-only", target.sub_label(sub))));
    }
    with_container(root, target.container, |container| {
        let Some(current) = take(container, &attr.name) else {
            return Ok(());
        };
        let before = immutable_copy(attr, Some(&current));
        let new = match (target.filter, target.sub) {
            (None, None) => match value.filter(|v| attr.multi_valued && !is_empty(v)) {
                Some(value) => {
                    let given = coerce_multi(attr, value, &attr.name)?;
                    let index = ValueIndex::new(&given, attr);
                    let mut list = into_list(Some(current));
                    list.retain(|element| !index.denotes(&given, element, attr));
                    Value::Array(list)
                }
                None => Value::Null,
            },
            (None, Some(sub)) if attr.multi_valued => {
                let mut list = into_list(Some(current));
                for element in &mut list {
                    if let Value::Object(object) = element {
                        remove_sub(object, attr, sub)?;
                    }
                }
                Value::Array(list)
            }
            (None, Some(sub)) => {
                let mut object = into_object(Some(current));
                remove_sub(&mut object, attr, sub)?;
                Value::Object(object)
            }
            (Some(filter), sub) => {
                let list = into_list(Some(current));
                let mut hit = vec![false; list.len()];
                for index in matching(&list, filter, attr)? {
                    if let Some(hit) = hit.get_mut(index) {
                        *hit = true;
                    }
                }
                let mut kept = Vec::with_capacity(list.len());
                for (mut element, hit) in list.into_iter().zip(hit) {
                    if hit {
                        let Some(sub) = sub else { continue };
                        if let Value::Object(object) = &mut element {
                            remove_sub(object, attr, sub)?;
                        }
                    }
                    kept.push(element);
                }
                Value::Array(kept)
            }
        };
        check_immutable(attr, before.as_ref(), &new, &attr.name)?;
        put(container, &attr.name, new);
        Ok(())
    })
}

// ---- values ----

/// A copy of the current value, for [`check_immutable`], when `def` is immutable.
fn immutable_copy(def: &AttributeDef, current: Option<&Value>) -> Option<Value> {
    current.filter(|_| def.mutability == Mutability::Immutable).cloned()
}

/// Fails when `def` is immutable, had a value, and would get a different one.
fn check_immutable(def: &AttributeDef, current: Option<&Value>, new: &Value, label: &str) -> Result<()> {
    match current {
        Some(current)
            if def.mutability == Mutability::Immutable && !is_empty(current) && !values_equal(current, new, def) =>
        {
            Err(mutability(format!("'{label}' is immutable and already has a value")))
        }
        _ => Ok(()),
    }
}

fn set_sub(object: &mut Object, attr: &AttributeDef, sub: &AttributeDef, value: Value) -> Result<()> {
    check_immutable(
        sub,
        get(object, &sub.name),
        &value,
        &format!("{}.{}", attr.name, sub.name),
    )?;
    put(object, &sub.name, value);
    Ok(())
}

fn remove_sub(object: &mut Object, attr: &AttributeDef, sub: &AttributeDef) -> Result<()> {
    check_immutable(
        sub,
        get(object, &sub.name),
        &Value::Null,
        &format!("{}.{}", attr.name, sub.name),
    )?;
    take(object, &sub.name);
    Ok(())
}

/// Writes coerced sub-attributes into `object`; a `null` one is removed on replace, skipped on add.
fn merge_into(object: &mut Object, fields: Object, attr: &AttributeDef, mode: Mode) -> Result<()> {
    for (name, value) in fields {
        let Some(sub) = attr.sub(&name) else { continue };
        if is_empty(&value) {
            if mode == Mode::Replace {
                remove_sub(object, attr, sub)?;
            }
            continue;
        }
        set_sub(object, attr, sub, value)?;
    }
    Ok(())
}

/// The elements of a multi-valued complex attribute by their string `value` sub-attribute, so adding
/// or removing many members of a large group stays linear. [`same_element`] needs equal `value`s
/// whenever the given element has a string one, so only elements with the same key can match it.
struct ValueIndex<'d> {
    value_def: Option<&'d AttributeDef>,
    by_value: HashMap<String, Vec<usize>>,
    unkeyed: Vec<usize>,
}

impl<'d> ValueIndex<'d> {
    fn new(list: &[Value], attr: &'d AttributeDef) -> Self {
        let mut index = ValueIndex {
            value_def: attr.sub("value").filter(|_| attr.kind == AttrType::Complex),
            by_value: HashMap::new(),
            unkeyed: Vec::new(),
        };
        for (position, element) in list.iter().enumerate() {
            index.insert(position, element);
        }
        index
    }

    /// The element's string `value` as [`values_equal`] compares it.
    fn key(&self, element: &Value) -> Option<String> {
        let def = self.value_def?;
        match get(element.as_object()?, &def.name)? {
            Value::String(s) if def.case_exact => Some(s.clone()),
            Value::String(s) => Some(s.chars().flat_map(char::to_lowercase).collect()),
            _ => None,
        }
    }

    fn insert(&mut self, position: usize, element: &Value) {
        match self.key(element) {
            Some(key) => self.by_value.entry(key).or_default().push(position),
            None => self.unkeyed.push(position),
        }
    }

    /// The position of an element of the indexed `list` that `given` denotes.
    fn find_existing(&self, list: &[Value], given: &Value, attr: &AttributeDef) -> Option<usize> {
        let same = |&position: &usize| list.get(position).is_some_and(|e| same_element(e, given, attr));
        match self.key(given) {
            Some(key) => self.by_value.get(&key)?.iter().copied().find(same),
            None => (0..list.len()).find(same),
        }
    }

    /// Whether some element of the indexed `given` list denotes `existing`.
    fn denotes(&self, given: &[Value], existing: &Value, attr: &AttributeDef) -> bool {
        let keyed = self.key(existing).and_then(|key| self.by_value.get(&key));
        keyed
            .into_iter()
            .flatten()
            .chain(&self.unkeyed)
            .any(|&position| given.get(position).is_some_and(|g| same_element(existing, g, attr)))
    }
}

/// Adds `item` to `list` unless the same element is there (then merges in the sub-attributes that
/// differ, so an equal value written in another case changes nothing); returns its index.
fn add_element(list: &mut Vec<Value>, index: &mut ValueIndex<'_>, item: Value, attr: &AttributeDef) -> Result<usize> {
    if let Some(position) = index.find_existing(list, &item, attr) {
        if let (Some(Value::Object(element)), Value::Object(mut fields)) = (list.get_mut(position), item) {
            fields.retain(|name, value| {
                let same = attr
                    .sub(name)
                    .zip(get(element, name))
                    .is_some_and(|(def, v)| values_equal(v, value, def));
                !same
            });
            merge_into(element, fields, attr, Mode::Add)?;
        }
        return Ok(position);
    }
    index.insert(list.len(), &item);
    list.push(item);
    Ok(list.len() - 1)
}

/// Whether `existing` is the element `given` denotes (see the module documentation).
fn same_element(existing: &Value, given: &Value, attr: &AttributeDef) -> bool {
    let (Value::Object(existing), Value::Object(given)) = (existing, given) else {
        return values_equal(existing, given, attr);
    };
    if let Some(value_def) = attr.sub("value")
        && let Some(given_value) = get(given, &value_def.name)
    {
        if !get(existing, &value_def.name).is_some_and(|v| values_equal(v, given_value, value_def)) {
            return false;
        }
        return match (attr.sub("type"), get(existing, "type"), get(given, "type")) {
            (Some(type_def), Some(a), Some(b)) => values_equal(a, b, type_def),
            _ => true,
        };
    }
    given.iter().filter(|(_, v)| !is_empty(v)).all(|(name, value)| {
        attr.sub(name)
            .is_some_and(|def| get(existing, name).is_some_and(|v| values_equal(v, value, def)))
    })
}

fn values_equal(a: &Value, b: &Value, def: &AttributeDef) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if !def.case_exact => a
            .chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

/// When a touched element has `primary: true`, every other element gets `primary: false`.
fn enforce_primary(list: &mut [Value], touched: &[usize], attr: &AttributeDef) {
    let Some(primary) = attr.sub("primary").filter(|p| p.kind == AttrType::Boolean) else {
        return;
    };
    let name = primary.name.as_str();
    let is_primary = |element: &Value| element.as_object().and_then(|o| get(o, name)) == Some(&Value::Bool(true));
    let Some(&winner) = touched.iter().rev().find(|&&i| list.get(i).is_some_and(is_primary)) else {
        return;
    };
    for (index, element) in list.iter_mut().enumerate() {
        if index != winner
            && is_primary(element)
            && let Value::Object(object) = element
        {
            put(object, name, Value::Bool(false));
        }
    }
}

/// `value` as `def`'s value: an array for a multi-valued attribute, else one value.
fn coerce(def: &AttributeDef, value: &Value, label: &str) -> Result<Value> {
    if def.multi_valued {
        Ok(Value::Array(coerce_multi(def, value, label)?))
    } else {
        coerce_one(def, value, label)
    }
}

/// The elements of a multi-valued attribute: an array, or one value wrapped; empty ones dropped.
fn coerce_multi(def: &AttributeDef, value: &Value, label: &str) -> Result<Vec<Value>> {
    let items = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.into_iter().filter(|v| !is_empty(v)) {
        let mut item = coerce_single(def, item, label)?;
        strip_empty(&mut item);
        if !is_empty(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// One value of `def`'s type; a one-element array is unwrapped.
fn coerce_one(def: &AttributeDef, value: &Value, label: &str) -> Result<Value> {
    if let Value::Array(items) = value
        && let [only] = items.as_slice()
    {
        return coerce_single(def, only, label);
    }
    coerce_single(def, value, label)
}

/// Checks one (non-empty) value against `def`'s type, converting Entra's quirks. Complex values get
/// canonical sub-attribute names, lose read-only sub-attributes, and keep empty ones as `null`.
fn coerce_single(def: &AttributeDef, value: &Value, label: &str) -> Result<Value> {
    let wrong = |expected: &str| invalid_value(format!("'{label}' must be {expected}"));
    match def.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(wrong("a string")),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.as_i64().is_some() => Ok(value.clone()),
            _ => Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(value.clone()),
            _ => Err(wrong("an RFC 3339 date-time")),
        },
        AttrType::Complex => match value {
            Value::Object(fields) => coerce_complex(def, fields.iter(), label),
            Value::String(_) | Value::Number(_) | Value::Bool(_) if def.sub("value").is_some() => {
                coerce_complex(def, std::iter::once((&"value".to_owned(), value)), label)
            }
            _ => Err(wrong("an object")),
        },
    }
}

fn coerce_complex<'v>(
    def: &AttributeDef,
    fields: impl Iterator<Item = (&'v String, &'v Value)>,
    label: &str,
) -> Result<Value> {
    let mut out = Object::new();
    for (name, value) in fields {
        let sub = def
            .sub(name)
            .ok_or_else(|| invalid_value(format!("'{label}' has no sub-attribute '{name}'")))?;
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let value = if is_empty(value) {
            Value::Null
        } else {
            coerce(sub, value, &format!("{label}.{}", sub.name))?
        };
        out.insert(sub.name.clone(), value);
    }
    Ok(Value::Object(out))
}

// ---- whole-resource rules ----

/// A required attribute that had a value must still have one.
fn check_required(before: &Object, after: &Object, schema: &ResourceSchema) -> Result<()> {
    let scopes = std::iter::once((None, &schema.core)).chain(
        schema
            .extensions
            .iter()
            .map(|e| (Some(e.schema.id.as_str()), &e.schema)),
    );
    for (urn, scope) in scopes {
        for attr in scope.attributes.iter().filter(|a| a.required) {
            if has_value(before, urn, attr) && !has_value(after, urn, attr) {
                return Err(invalid_value(format!(
                    "'{}' is required and cannot be removed",
                    attr.name
                )));
            }
        }
    }
    Ok(())
}

fn has_value(resource: &Object, urn: Option<&str>, attr: &AttributeDef) -> bool {
    let container = match urn {
        None => Some(resource),
        Some(urn) => get(resource, urn).and_then(Value::as_object),
    };
    container.and_then(|c| get(c, &attr.name)).is_some_and(|v| !is_empty(v))
}

/// Lists the extensions the patch gave values in `schemas`, and drops those it emptied.
fn sync_schemas(before: &Object, after: &mut Object, schema: &ResourceSchema) {
    for extension in &schema.extensions {
        let urn = extension.schema.id.as_str();
        let new = get(after, urn);
        if get(before, urn) == new {
            continue;
        }
        let listed = new.is_some_and(|v| !is_empty(v)) || extension.required;
        set_listed(after, urn, listed, &schema.core);
    }
}

fn set_listed(resource: &mut Object, urn: &str, listed: bool, core: &Schema) {
    let mut schemas = match take(resource, "schemas") {
        Some(Value::Array(items)) => items,
        _ => vec![Value::String(core.id.clone())],
    };
    let is_urn = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn));
    if listed {
        if !schemas.iter().any(is_urn) {
            schemas.push(Value::String(urn.to_owned()));
        }
    } else {
        schemas.retain(|v| !is_urn(v));
    }
    resource.insert("schemas".to_owned(), Value::Array(schemas));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::AttrPath;
    use crate::schema::{
        ENTERPRISE_USER_SCHEMA, Extension, GROUP_SCHEMA, PROVISIO_USER_SCHEMA, Returned, USER_SCHEMA, Uniqueness,
    };
    use serde_json::json;

    #[test]
    fn typed_operations_are_read_back_as_written() {
        let operations = vec![
            PatchOperation::on_attribute(PatchOp::Replace, AttrPath::simple("active"), Some(json!(false))),
            PatchOperation::on_attribute(
                PatchOp::Add,
                AttrPath {
                    urn: None,
                    attr: "name".into(),
                    sub: Some("givenName".into()),
                },
                Some(json!("Al")),
            ),
            PatchOperation::on_attribute(
                PatchOp::Remove,
                AttrPath {
                    urn: Some(ENTERPRISE_USER_SCHEMA.into()),
                    attr: "department".into(),
                    sub: None,
                },
                None,
            ),
            PatchOperation::remove_element("members", "id \"with\" quotes\tand a tab"),
        ];
        let body = patch_request_body(&operations);
        assert_eq!(body["schemas"], json!([PATCH_OP_SCHEMA]));
        assert_eq!(
            body["Operations"][3]["path"],
            json!(r#"members[value eq "id \"with\" quotes\tand a tab"]"#)
        );
        let parsed = parse_patch_request(&body).expect("a body this crate wrote parses");
        assert_eq!(parsed.operations, operations);
    }

    const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
    const GROUP_ID: &str = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b";
    const ALICE: &str = "23a35c27-23d3-4c03-b4c5-6443c09e7173";
    const BOB: &str = "89bb1940-b905-4575-9e7f-6f887cfb368e";
    const CAROL: &str = "902c246b-6245-4190-8e05-00816be7344a";

    // ---- test schemas ----

    fn def(name: &str, kind: AttrType) -> AttributeDef {
        AttributeDef {
            name: name.to_owned(),
            kind,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }

    fn string(name: &str) -> AttributeDef {
        def(name, AttrType::String)
    }

    fn complex(name: &str, subs: Vec<AttributeDef>) -> AttributeDef {
        AttributeDef {
            sub_attributes: subs,
            ..def(name, AttrType::Complex)
        }
    }

    fn multi(attr: AttributeDef) -> AttributeDef {
        AttributeDef {
            multi_valued: true,
            ..attr
        }
    }

    fn with(attr: AttributeDef, mutability: Mutability) -> AttributeDef {
        AttributeDef { mutability, ..attr }
    }

    fn schema(id: &str, name: &str, attributes: Vec<AttributeDef>) -> Schema {
        Schema {
            id: id.to_owned(),
            name: name.to_owned(),
            description: String::new(),
            attributes,
        }
    }

    fn user_schema() -> ResourceSchema {
        let user_name = AttributeDef {
            required: true,
            uniqueness: Uniqueness::Server,
            ..string("userName")
        };
        let core = schema(
            USER_SCHEMA,
            "User",
            vec![
                user_name,
                complex(
                    "name",
                    vec![string("formatted"), string("familyName"), string("givenName")],
                ),
                string("displayName"),
                string("title"),
                def("active", AttrType::Boolean),
                multi(complex(
                    "emails",
                    vec![string("value"), string("type"), def("primary", AttrType::Boolean)],
                )),
                multi(complex(
                    "addresses",
                    vec![
                        string("formatted"),
                        string("streetAddress"),
                        string("locality"),
                        string("postalCode"),
                        string("country"),
                        string("type"),
                        def("primary", AttrType::Boolean),
                    ],
                )),
                with(
                    multi(complex(
                        "groups",
                        vec![
                            with(string("value"), Mutability::ReadOnly),
                            with(def("$ref", AttrType::Reference), Mutability::ReadOnly),
                            with(string("display"), Mutability::ReadOnly),
                        ],
                    )),
                    Mutability::ReadOnly,
                ),
            ],
        );
        let enterprise = schema(
            ENTERPRISE_USER_SCHEMA,
            "EnterpriseUser",
            vec![
                string("employeeNumber"),
                string("department"),
                complex(
                    "manager",
                    vec![
                        string("value"),
                        def("$ref", AttrType::Reference),
                        with(string("displayName"), Mutability::ReadOnly),
                    ],
                ),
            ],
        );
        let custom = schema(
            PROVISIO_USER_SCHEMA,
            "ProvisioUser",
            vec![
                def("level", AttrType::Integer),
                def("score", AttrType::Decimal),
                def("hiredAt", AttrType::DateTime),
                multi(string("tags")),
                with(string("badge"), Mutability::Immutable),
            ],
        );
        ResourceSchema {
            name: "User".into(),
            endpoint: "/Users".into(),
            core,
            extensions: vec![
                Extension {
                    schema: enterprise,
                    required: false,
                },
                Extension {
                    schema: custom,
                    required: false,
                },
            ],
        }
    }

    fn group_schema() -> ResourceSchema {
        let display_name = AttributeDef {
            required: true,
            ..string("displayName")
        };
        let members = multi(complex(
            "members",
            vec![
                with(string("value"), Mutability::Immutable),
                with(string("display"), Mutability::ReadOnly),
                string("type"),
                def("$ref", AttrType::Reference),
            ],
        ));
        ResourceSchema {
            name: "Group".into(),
            endpoint: "/Groups".into(),
            core: schema(GROUP_SCHEMA, "Group", vec![display_name, members]),
            extensions: Vec::new(),
        }
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA],
            "id": USER_ID,
            "externalId": "bjensen-ext",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "groups": [{"value": GROUP_ID, "display": "Tour Guides"}],
            "meta": {
                "resourceType": "User",
                "created": "2024-01-23T04:56:22Z",
                "lastModified": "2024-05-13T04:42:34Z",
                "version": "W/\"3\""
            }
        })
    }

    fn group() -> Value {
        json!({
            "schemas": [GROUP_SCHEMA],
            "id": GROUP_ID,
            "displayName": "Tour Guides",
            "members": [
                {"value": ALICE, "display": "Alice", "type": "User"},
                {"value": BOB, "display": "Bob", "type": "User"}
            ],
            "meta": {"resourceType": "Group", "version": "W/\"7\""}
        })
    }

    // ---- helpers ----

    fn request(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
    }

    fn patch(resource: &Value, operations: Value, schema: &ResourceSchema) -> Result<Value> {
        apply_patch(resource, &parse_patch_request(&request(operations))?, schema)
    }

    fn patch_user(operations: Value) -> Result<Value> {
        patch(&user(), operations, &user_schema())
    }

    fn patch_group(operations: Value) -> Result<Value> {
        patch(&group(), operations, &group_schema())
    }

    fn fixture(resource: &Value, body: &str, schema: &ResourceSchema) -> Value {
        let body: Value = serde_json::from_str(body).expect("fixture is JSON");
        let request = parse_patch_request(&body).expect("fixture parses");
        apply_patch(resource, &request, schema).expect("fixture applies")
    }

    #[track_caller]
    fn scim_type(result: Result<impl std::fmt::Debug>) -> ScimErrorType {
        match result {
            Err(Error::Scim { scim_type, .. }) => scim_type,
            other => panic!("expected a SCIM error, got {other:?}"),
        }
    }

    fn member_ids(group: &Value) -> Vec<&str> {
        group["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["value"].as_str()).collect())
            .unwrap_or_default()
    }

    // ---- parsing ----

    #[test]
    fn parse_accepts_any_case_for_op_and_keys() {
        let body = json!({
            "schemas": [PATCH_OP_SCHEMA.to_uppercase()],
            "operations": [
                {"op": "Add", "path": "title", "value": "x"},
                {"OP": "REPLACE", "Path": "title", "Value": "y"},
                {"op": "remove", "path": "title"}
            ]
        });
        let request = parse_patch_request(&body).unwrap();
        let ops: Vec<PatchOp> = request.operations.iter().map(|o| o.op).collect();
        assert_eq!(ops, vec![PatchOp::Add, PatchOp::Replace, PatchOp::Remove]);
        assert_eq!(request.operations[1].value, Some(json!("y")));
        assert_eq!(request.operations[2].value, None);
        assert_eq!(
            request.operations[0].path.as_ref().unwrap().attr,
            AttrPath::simple("title")
        );
    }

    #[test]
    fn parse_requires_the_patch_op_schema() {
        let body = json!({"schemas": [USER_SCHEMA], "Operations": [{"op": "add", "path": "title", "value": "x"}]});
        assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidSyntax);
        let body = json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]});
        assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidSyntax);
    }

    #[test]
    fn parse_requires_a_non_empty_operations_array() {
        for operations in [json!([]), json!({}), json!(null)] {
            let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
            assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidSyntax);
        }
        assert_eq!(
            scim_type(parse_patch_request(&json!([1]))),
            ScimErrorType::InvalidSyntax
        );
    }

    #[test]
    fn parse_rejects_unknown_or_missing_op() {
        for op in [
            json!({"op": "move", "path": "title"}),
            json!({"path": "title"}),
            json!("add"),
        ] {
            assert_eq!(
                scim_type(parse_patch_request(&request(json!([op])))),
                ScimErrorType::InvalidSyntax
            );
        }
    }

    #[test]
    fn parse_remove_without_path_is_no_target() {
        let body = request(json!([{"op": "remove", "value": {"title": "x"}}]));
        assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::NoTarget);
    }

    #[test]
    fn parse_add_or_replace_without_value_is_invalid_value() {
        for op in ["add", "replace"] {
            let body = request(json!([{"op": op, "path": "title"}]));
            assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidValue);
            let body = request(json!([{"op": op, "path": "title", "value": null}]));
            assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidValue);
        }
    }

    #[test]
    fn parse_bad_path_is_invalid_path() {
        for path in [json!("emails[type eq"), json!("name..givenName"), json!(5)] {
            let body = request(json!([{"op": "add", "path": path, "value": "x"}]));
            assert_eq!(scim_type(parse_patch_request(&body)), ScimErrorType::InvalidPath);
        }
    }

    #[test]
    fn parse_treats_an_empty_path_as_none() {
        let body = request(json!([{"op": "replace", "path": "", "value": {"title": "x"}}]));
        assert_eq!(parse_patch_request(&body).unwrap().operations[0].path, None);
    }

    #[test]
    fn parse_keeps_value_filter_paths() {
        let body = request(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x"}]));
        let path = parse_patch_request(&body).unwrap().operations.remove(0).path.unwrap();
        assert_eq!(path.attr, AttrPath::simple("emails"));
        assert!(path.filter.is_some());
        assert_eq!(path.sub_after_filter.as_deref(), Some("value"));
    }

    // ---- add ----

    #[test]
    fn add_sets_a_simple_attribute() {
        let out = patch_user(json!([{"op": "add", "path": "title", "value": "Tour Guide"}])).unwrap();
        assert_eq!(out["title"], "Tour Guide");
        let out = patch_user(json!([{"op": "add", "path": "displayName", "value": "B"}])).unwrap();
        assert_eq!(out["displayName"], "B");
    }

    #[test]
    fn add_merges_a_complex_attribute() {
        let out =
            patch_user(json!([{"op": "add", "path": "name", "value": {"givenName": "Barb", "formatted": "Barb J"}}]))
                .unwrap();
        assert_eq!(
            out["name"],
            json!({"givenName": "Barb", "familyName": "Jensen", "formatted": "Barb J"})
        );
    }

    #[test]
    fn add_appends_to_a_multi_valued_attribute() {
        let out =
            patch_user(json!([{"op": "add", "path": "emails", "value": {"value": "b@other.org", "type": "other"}}]))
                .unwrap();
        let emails = out["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[2], json!({"value": "b@other.org", "type": "other"}));
        let out = patch_user(json!([{"op": "add", "path": "emails", "value": [
            {"value": "x@a.org", "type": "other"}, {"value": "y@a.org", "type": "other"}
        ]}]))
        .unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn add_skips_an_element_that_is_already_there() {
        let out = patch_user(json!([{"op": "add", "path": "emails", "value": [
            {"value": "BJENSEN@example.com", "type": "work"}
        ]}]))
        .unwrap();
        let mut expected = user();
        strip_empty(&mut expected);
        assert_eq!(out, expected);
    }

    #[test]
    fn add_primary_clears_the_other_primary() {
        let out = patch_user(json!([{"op": "add", "path": "emails", "value": [
            {"value": "babs@jensen.org", "type": "home", "primary": true}
        ]}]))
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn add_sub_attribute_creates_the_complex_value() {
        let mut resource = user();
        resource.as_object_mut().unwrap().remove("name");
        let out = patch(
            &resource,
            json!([{"op": "add", "path": "name.givenName", "value": "B"}]),
            &user_schema(),
        )
        .unwrap();
        assert_eq!(out["name"], json!({"givenName": "B"}));
    }

    #[test]
    fn add_with_filter_sets_the_sub_attribute_of_matching_elements() {
        let out =
            patch_user(json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "new@jensen.org"}]))
                .unwrap();
        assert_eq!(out["emails"][1], json!({"value": "new@jensen.org", "type": "home"}));
        assert_eq!(out["emails"][0]["value"], "bjensen@example.com");
    }

    #[test]
    fn add_with_equality_filter_and_no_match_creates_the_element() {
        let out =
            patch_user(json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "o@x.org"}])).unwrap();
        assert_eq!(out["emails"][2], json!({"type": "other", "value": "o@x.org"}));
        let out = patch_user(
            json!([{"op": "add", "path": "addresses[type eq \"work\" and primary eq true]",
            "value": {"locality": "Hollywood"}}]),
        )
        .unwrap();
        assert_eq!(
            out["addresses"],
            json!([{"type": "work", "primary": true, "locality": "Hollywood"}])
        );
    }

    #[test]
    fn add_with_other_filter_and_no_match_is_no_target() {
        for path in [
            "emails[value co \"nobody\"].type",
            "emails[type eq \"x\" or type eq \"y\"].value",
            "emails[not (type pr)].value",
        ] {
            let out = patch_user(json!([{"op": "add", "path": path, "value": "z"}]));
            assert_eq!(scim_type(out), ScimErrorType::NoTarget, "{path}");
        }
    }

    #[test]
    fn add_sub_attribute_of_every_element() {
        let out = patch_user(json!([{"op": "add", "path": "emails.type", "value": "other"}])).unwrap();
        assert!(out["emails"].as_array().unwrap().iter().all(|e| e["type"] == "other"));
        let mut resource = user();
        resource.as_object_mut().unwrap().remove("emails");
        let out = patch(
            &resource,
            json!([{"op": "add", "path": "emails.type", "value": "x"}]),
            &user_schema(),
        );
        assert_eq!(scim_type(out), ScimErrorType::NoTarget);
    }

    #[test]
    fn add_without_path_accepts_dotted_urn_and_extension_keys() {
        let out = patch_user(json!([{"op": "add", "value": {
            "title": "Guide",
            "name.formatted": "Ms. Barbara Jensen",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m-1",
            PROVISIO_USER_SCHEMA: {"level": 3, "tags": "a"},
            "urn:ietf:params:scim:schemas:core:2.0:User:nickname_unknown_free": null
        }}]));
        // The last key names no attribute.
        assert_eq!(scim_type(out), ScimErrorType::InvalidValue);
        let out = patch_user(json!([{"op": "add", "value": {
            "title": "Guide",
            "name.formatted": "Ms. Barbara Jensen",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m-1",
            PROVISIO_USER_SCHEMA: {"level": 3, "tags": "a"},
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Barbara"
        }}]))
        .unwrap();
        assert_eq!(out["title"], "Guide");
        assert_eq!(out["name"]["formatted"], "Ms. Barbara Jensen");
        assert_eq!(out["name"]["givenName"], "Barbara");
        assert_eq!(out["displayName"], "Barbara");
        assert_eq!(
            out[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "701984", "manager": {"value": "m-1"}})
        );
        assert_eq!(out[PROVISIO_USER_SCHEMA], json!({"level": 3, "tags": ["a"]}));
        assert_eq!(
            out["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA, PROVISIO_USER_SCHEMA])
        );
    }

    #[test]
    fn add_of_no_value_is_a_no_op() {
        let out = patch_user(json!([
            {"op": "add", "path": "title", "value": ""},
            {"op": "add", "path": "emails", "value": []},
            {"op": "add", "value": {"displayName": null}}
        ]))
        .unwrap();
        let mut expected = user();
        strip_empty(&mut expected);
        assert_eq!(out, expected);
    }

    // ---- replace ----

    #[test]
    fn replace_sets_a_simple_attribute() {
        let out = patch_user(json!([{"op": "replace", "path": "displayName", "value": "Barbara"}])).unwrap();
        assert_eq!(out["displayName"], "Barbara");
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn replace_of_a_complex_attribute_keeps_unnamed_sub_attributes() {
        let out =
            patch_user(json!([{"op": "replace", "path": "name", "value": {"givenName": "Barb", "familyName": null}}]))
                .unwrap();
        assert_eq!(out["name"], json!({"givenName": "Barb"}));
    }

    #[test]
    fn replace_of_a_multi_valued_attribute_replaces_the_list() {
        let out = patch_user(
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x.org", "type": "work"}]}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"value": "only@x.org", "type": "work"}]));
        let out = patch_user(json!([{"op": "replace", "path": "emails", "value": {"value": "one@x.org"}}])).unwrap();
        assert_eq!(out["emails"], json!([{"value": "one@x.org"}]));
    }

    #[test]
    fn replace_with_filter_and_sub_attribute() {
        let out =
            patch_user(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@new.org"}]))
                .unwrap();
        assert_eq!(
            out["emails"][0],
            json!({"value": "b@new.org", "type": "work", "primary": true})
        );
        assert_eq!(out["emails"][1]["value"], "babs@jensen.org");
    }

    #[test]
    fn replace_with_filter_replaces_matching_elements() {
        let out = patch_user(json!([{"op": "replace", "path": "emails[type eq \"home\"]",
            "value": {"value": "h@x.org", "type": "home", "primary": true}}]))
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "h@x.org", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn replace_with_filter_and_no_match() {
        let out = patch_user(json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "o@x.org"}]))
            .unwrap();
        assert_eq!(out["emails"][2], json!({"type": "other", "value": "o@x.org"}));
        let out = patch_user(json!([{"op": "replace", "path": "emails[value sw \"zz\"].value", "value": "o@x.org"}]));
        assert_eq!(scim_type(out), ScimErrorType::NoTarget);
    }

    #[test]
    fn replace_without_path_merges_complex_and_replaces_lists() {
        let out = patch_user(json!([{"op": "replace", "value": {
            "name": {"givenName": "Barb"},
            "emails": [{"value": "b@x.org"}],
            "active": false
        }}]))
        .unwrap();
        assert_eq!(out["name"], json!({"givenName": "Barb", "familyName": "Jensen"}));
        assert_eq!(out["emails"], json!([{"value": "b@x.org"}]));
        assert_eq!(out["active"], false);
    }

    #[test]
    fn replace_with_no_value_removes_the_target() {
        let out = patch_user(json!([
            {"op": "replace", "path": "displayName", "value": ""},
            {"op": "replace", "value": {"externalId": null, "name.familyName": ""}},
            {"op": "replace", "path": "emails[type eq \"home\"].value", "value": ""}
        ]))
        .unwrap();
        assert!(out.get("displayName").is_none());
        assert!(out.get("externalId").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["emails"][1], json!({"type": "home"}));
    }

    // ---- remove ----

    #[test]
    fn remove_an_attribute() {
        let out = patch_user(json!([{"op": "remove", "path": "displayName"}])).unwrap();
        assert!(out.get("displayName").is_none());
        let out = patch_user(json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn remove_a_sub_attribute() {
        let out = patch_user(json!([{"op": "remove", "path": "name.givenName"}])).unwrap();
        assert_eq!(out["name"], json!({"familyName": "Jensen"}));
        let out = patch_user(json!([{"op": "remove", "path": "emails.primary"}])).unwrap();
        assert!(
            out["emails"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e.get("primary").is_none())
        );
    }

    #[test]
    fn remove_with_filter_removes_matching_elements() {
        let out = patch_user(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])).unwrap();
        assert_eq!(out["emails"], json!([{"value": "babs@jensen.org", "type": "home"}]));
        let out =
            patch_user(json!([{"op": "remove", "path": "emails[type eq \"work\" or type eq \"home\"]"}])).unwrap();
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn remove_with_filter_and_sub_attribute() {
        let out = patch_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}])).unwrap();
        assert_eq!(
            out["emails"][0],
            json!({"value": "bjensen@example.com", "type": "work"})
        );
    }

    #[test]
    fn remove_of_nothing_is_a_no_op() {
        let mut expected = user();
        strip_empty(&mut expected);
        let level = format!("{PROVISIO_USER_SCHEMA}:level");
        for path in [
            "title",
            "emails[type eq \"other\"]",
            "addresses",
            "name.formatted",
            &level,
        ] {
            assert_eq!(
                patch_user(json!([{"op": "remove", "path": path}])).unwrap(),
                expected,
                "{path}"
            );
        }
        let out = patch_group(json!([{"op": "remove", "path": format!("members[value eq \"{CAROL}\"]")}])).unwrap();
        let mut expected = group();
        strip_empty(&mut expected);
        assert_eq!(out, expected);
    }

    #[test]
    fn remove_with_value_removes_the_given_elements() {
        let out =
            patch_group(json!([{"op": "remove", "path": "members", "value": [{"value": ALICE}, {"value": CAROL}]}]))
                .unwrap();
        assert_eq!(member_ids(&out), vec![BOB]);
        let out =
            patch_user(json!([{"op": "remove", "path": "emails", "value": {"value": "BABS@jensen.org"}}])).unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn remove_of_the_last_extension_attribute_drops_the_extension() {
        let mut resource = user();
        resource[ENTERPRISE_USER_SCHEMA] = json!({"department": "Tours"});
        resource["schemas"] = json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        let out = patch(
            &resource,
            json!([{"op": "remove", "path": format!("{ENTERPRISE_USER_SCHEMA}:department")}]),
            &user_schema(),
        )
        .unwrap();
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn remove_of_a_required_attribute_is_invalid_value() {
        let out = patch_user(json!([{"op": "remove", "path": "userName"}]));
        assert_eq!(scim_type(out), ScimErrorType::InvalidValue);
        let out = patch_user(json!([{"op": "replace", "path": "userName", "value": ""}]));
        assert_eq!(scim_type(out), ScimErrorType::InvalidValue);
        let out = patch_group(json!([{"op": "replace", "value": {"displayName": null}}]));
        assert_eq!(scim_type(out), ScimErrorType::InvalidValue);
        // Removed and set again within one request: fine.
        let out = patch_user(json!([
            {"op": "remove", "path": "userName"},
            {"op": "add", "path": "userName", "value": "barbara"}
        ]))
        .unwrap();
        assert_eq!(out["userName"], "barbara");
    }

    // ---- mutability ----

    #[test]
    fn read_only_attributes_cannot_be_written() {
        for op in [
            json!({"op": "replace", "path": "id", "value": "other"}),
            json!({"op": "remove", "path": "id"}),
            json!({"op": "add", "path": "groups", "value": [{"value": "g"}]}),
            json!({"op": "remove", "path": "groups"}),
            json!({"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"}),
            json!({"op": "replace", "value": {"meta": {"version": "W/\"9\""}}}),
            json!({"op": "replace", "value": {"id": "other"}}),
            json!({"op": "add", "path": format!("{ENTERPRISE_USER_SCHEMA}:manager.displayName"), "value": "Boss"}),
        ] {
            assert_eq!(
                scim_type(patch_user(json!([op.clone()]))),
                ScimErrorType::Mutability,
                "{op}"
            );
        }
        let out = patch_group(
            json!([{"op": "replace", "path": format!("members[value eq \"{ALICE}\"].display"), "value": "A"}]),
        );
        assert_eq!(scim_type(out), ScimErrorType::Mutability);
    }

    #[test]
    fn id_with_its_current_value_is_tolerated() {
        let out = patch_user(json!([
            {"op": "replace", "value": {"id": USER_ID, "title": "Guide"}},
            {"op": "replace", "path": "id", "value": USER_ID}
        ]))
        .unwrap();
        assert_eq!(out["id"], USER_ID);
        assert_eq!(out["title"], "Guide");
    }

    #[test]
    fn read_only_sub_attributes_inside_values_are_ignored() {
        let out = patch_user(
            json!([{"op": "add", "path": format!("{ENTERPRISE_USER_SCHEMA}:manager"),
            "value": {"value": "m-1", "displayName": "Boss"}}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "m-1"}));
    }

    #[test]
    fn immutable_attributes_can_be_set_once() {
        let level = format!("{PROVISIO_USER_SCHEMA}:badge");
        let set = patch_user(json!([{"op": "add", "path": level, "value": "B-1"}])).unwrap();
        assert_eq!(set[PROVISIO_USER_SCHEMA]["badge"], "B-1");
        let schema = user_schema();
        let same = patch(&set, json!([{"op": "replace", "path": level, "value": "B-1"}]), &schema).unwrap();
        assert_eq!(same, set);
        for op in [
            json!({"op": "replace", "path": level, "value": "B-2"}),
            json!({"op": "add", "path": level, "value": "B-2"}),
            json!({"op": "remove", "path": level}),
            json!({"op": "replace", "value": {PROVISIO_USER_SCHEMA: {"badge": ""}}}),
        ] {
            assert_eq!(
                scim_type(patch(&set, json!([op.clone()]), &schema)),
                ScimErrorType::Mutability,
                "{op}"
            );
        }
    }

    #[test]
    fn immutable_sub_attributes_of_elements() {
        let path = format!("members[value eq \"{ALICE}\"].value");
        let out = patch_group(json!([{"op": "replace", "path": path, "value": CAROL}]));
        assert_eq!(scim_type(out), ScimErrorType::Mutability);
        let out = patch_group(json!([{"op": "remove", "path": path}]));
        assert_eq!(scim_type(out), ScimErrorType::Mutability);
        // Whole elements come and go freely.
        let out = patch_group(json!([{"op": "replace", "path": "members", "value": [{"value": CAROL}]}])).unwrap();
        assert_eq!(member_ids(&out), vec![CAROL]);
    }

    // ---- paths and values ----

    #[test]
    fn unknown_paths_are_invalid_path() {
        for path in [
            "nickName",
            "name.middle",
            "urn:example:unknown:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            "displayName[value eq \"x\"]",
            "name[givenName eq \"x\"]",
            "emails[display eq \"x\"].value",
            "emails[type eq \"work\"].display",
        ] {
            let out = patch_user(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert_eq!(scim_type(out), ScimErrorType::InvalidPath, "{path}");
        }
    }

    #[test]
    fn unknown_keys_without_path_are_invalid_value() {
        for value in [
            json!({"nickName": "x"}),
            json!({"name.middle": "x"}),
            json!({"urn:example:unknown:2.0:User:department": "x"}),
            json!({"name": {"middle": "x"}}),
            json!("just a string"),
            json!([{"title": "x"}]),
        ] {
            let out = patch_user(json!([{"op": "replace", "value": value.clone()}]));
            assert_eq!(scim_type(out), ScimErrorType::InvalidValue, "{value}");
        }
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let custom = PROVISIO_USER_SCHEMA;
        for (path, value) in [
            ("active".to_owned(), json!("yes")),
            ("active".to_owned(), json!(1)),
            ("title".to_owned(), json!(42)),
            ("name".to_owned(), json!("Barbara")),
            ("name".to_owned(), json!([{"givenName": "a"}, {"givenName": "b"}])),
            ("emails".to_owned(), json!([[{"value": "a"}]])),
            ("emails".to_owned(), json!({"value": "a", "primary": "perhaps"})),
            (format!("{custom}:level"), json!(1.5)),
            (format!("{custom}:level"), json!("3")),
            (format!("{custom}:score"), json!("3.5")),
            (format!("{custom}:hiredAt"), json!("2024-13-01")),
            (format!("{custom}:hiredAt"), json!("yesterday")),
            (format!("{custom}:tags"), json!([1, 2])),
        ] {
            let out = patch_user(json!([{"op": "add", "path": path, "value": value.clone()}]));
            assert_eq!(scim_type(out), ScimErrorType::InvalidValue, "{path} = {value}");
        }
    }

    #[test]
    fn values_of_every_type_are_accepted() {
        let custom = PROVISIO_USER_SCHEMA;
        let out = patch_user(json!([
            {"op": "add", "path": format!("{custom}:level"), "value": 3},
            {"op": "add", "path": format!("{custom}:score"), "value": 4.5},
            {"op": "add", "path": format!("{custom}:hiredAt"), "value": "2024-02-29T09:30:00+01:00"},
            {"op": "add", "path": format!("{custom}:tags"), "value": ["a", "b"]},
            {"op": "add", "path": format!("{custom}:tags"), "value": "A"},
            {"op": "replace", "path": "active", "value": "false"},
            {"op": "add", "path": "title", "value": ["Guide"]}
        ]))
        .unwrap();
        assert_eq!(
            out[custom],
            json!({"level": 3, "score": 4.5, "hiredAt": "2024-02-29T09:30:00+01:00", "tags": ["a", "b"]})
        );
        assert_eq!(out["active"], false);
        assert_eq!(out["title"], "Guide");
    }

    #[test]
    fn names_ignore_case_and_come_out_canonical() {
        let mut resource = user();
        resource.as_object_mut().unwrap().remove("displayName");
        resource["DISPLAYNAME"] = json!("old");
        let out = patch(
            &resource,
            json!([
                {"op": "replace", "path": "displayname", "value": "New"},
                {"op": "add", "path": "NAME.GIVENNAME", "value": "B"},
                {"op": "add", "path": "Emails[Type eq \"home\"].Value", "value": "h@x.org"},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User:Department", "value": "D"}
            ]),
            &user_schema(),
        )
        .unwrap();
        assert_eq!(out["displayName"], "New");
        assert!(out.get("DISPLAYNAME").is_none());
        assert_eq!(out["name"]["givenName"], "B");
        assert_eq!(out["emails"][1]["value"], "h@x.org");
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "D"}));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn hand_built_paths_apply() {
        let request = PatchRequest {
            operations: vec![
                PatchOperation {
                    op: PatchOp::Replace,
                    path: Some(PatchPath {
                        attr: AttrPath::simple("emails"),
                        filter: Some(Filter::Compare {
                            path: AttrPath::simple("type"),
                            op: CompareOp::Eq,
                            value: json!("work"),
                        }),
                        sub_after_filter: Some("value".into()),
                    }),
                    value: Some(json!("w@x.org")),
                },
                PatchOperation {
                    op: PatchOp::Add,
                    path: Some(PatchPath {
                        attr: AttrPath {
                            urn: Some(ENTERPRISE_USER_SCHEMA.into()),
                            attr: "manager".into(),
                            sub: Some("value".into()),
                        },
                        filter: None,
                        sub_after_filter: None,
                    }),
                    value: Some(json!("m-2")),
                },
            ],
        };
        let out = apply_patch(&user(), &request, &user_schema()).unwrap();
        assert_eq!(out["emails"][0]["value"], "w@x.org");
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "m-2"}));
    }

    // ---- whole requests ----

    #[test]
    fn a_failing_operation_fails_the_request_and_changes_nothing() {
        let original = user();
        let copy = original.clone();
        let body = request(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "groups", "value": []},
        ]));
        let err = apply_patch(&original, &parse_patch_request(&body).unwrap(), &user_schema()).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimErrorType::Mutability));
        assert!(err.to_string().starts_with("Operations[1]:"), "{err}");
        assert_eq!(original, copy);
    }

    #[test]
    fn operations_apply_in_order() {
        let out = patch_user(json!([
            {"op": "add", "path": "title", "value": "A"},
            {"op": "replace", "path": "title", "value": "B"},
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "unknownAttribute", "value": "x"}
        ]));
        assert_eq!(scim_type(out), ScimErrorType::InvalidPath);
        let out = patch_user(json!([
            {"op": "add", "path": "title", "value": "A"},
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "title", "value": "C"}
        ]))
        .unwrap();
        assert_eq!(out["title"], "C");
    }

    #[test]
    fn adding_an_existing_member_is_idempotent() {
        let ops =
            json!([{"op": "add", "path": "members", "value": [{"value": ALICE}, {"value": BOB, "display": "B"}]}]);
        let out = patch_group(ops.clone()).unwrap();
        let mut expected = group();
        strip_empty(&mut expected);
        assert_eq!(out, expected);
        assert_eq!(patch(&out, ops, &group_schema()).unwrap(), expected);
    }

    #[test]
    fn strip_empty_removes_empty_values_recursively() {
        let mut value = json!({
            "a": null, "b": "", "c": [], "d": {}, "e": {"f": {"g": [null, "", {}]}},
            "h": [1, null, {"i": ""}, {"j": false}], "k": 0, "l": "x"
        });
        strip_empty(&mut value);
        assert_eq!(value, json!({"h": [1, {"j": false}], "k": 0, "l": "x"}));
    }

    #[test]
    fn the_result_is_in_stored_form() {
        let mut resource = user();
        resource["title"] = json!("");
        resource["addresses"] = json!([]);
        let out = patch(
            &resource,
            json!([{"op": "add", "path": "nickName_x", "value": "x"}]),
            &user_schema(),
        );
        assert_eq!(scim_type(out), ScimErrorType::InvalidPath);
        let out = patch(
            &resource,
            json!([{"op": "add", "path": "displayName", "value": "x"}]),
            &user_schema(),
        )
        .unwrap();
        assert!(out.get("title").is_none() && out.get("addresses").is_none());
    }

    #[test]
    fn primary_set_through_a_filter_path_moves() {
        let out = patch_user(json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]))
            .unwrap();
        assert_eq!(out["emails"][0]["primary"], false);
        assert_eq!(out["emails"][1]["primary"], true);
    }

    #[test]
    fn remove_of_a_filtered_sub_attribute_ignores_the_value() {
        // Entra sends the old value along; the matching elements lose the sub-attribute.
        let out =
            patch_user(json!([{"op": "Remove", "path": "emails[type eq \"work\"].value", "value": "old@example.com"}]))
                .unwrap();
        assert_eq!(out["emails"][0], json!({"type": "work", "primary": true}));
    }

    #[test]
    fn extension_object_without_path_may_be_empty() {
        let out =
            patch_user(json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: null, "title": "T"}}])).unwrap();
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        let out = patch_user(json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: "x"}}]));
        assert_eq!(scim_type(out), ScimErrorType::InvalidValue);
    }

    #[test]
    fn large_groups_stay_fast() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("user-{i:05}")).collect();
        let members: Vec<Value> = ids[..10_000]
            .iter()
            .map(|id| json!({"value": id, "display": id}))
            .collect();
        let resource = json!({"schemas": [GROUP_SCHEMA], "id": GROUP_ID, "displayName": "All", "members": members});
        let schema = group_schema();
        // 5,000 already there (in upper case) and 5,000 new.
        let add: Vec<Value> = ids[5_000..15_000]
            .iter()
            .map(|id| json!({"value": id.to_uppercase()}))
            .collect();
        let out = patch(
            &resource,
            json!([{"op": "add", "path": "members", "value": add}]),
            &schema,
        )
        .unwrap();
        assert_eq!(out["members"].as_array().unwrap().len(), 15_000);
        assert_eq!(
            out["members"][0],
            json!({"value": "user-00000", "display": "user-00000"})
        );
        let remove: Vec<Value> = ids[..10_000].iter().map(|id| json!({"value": id})).collect();
        let out = patch(
            &out,
            json!([{"op": "remove", "path": "members", "value": remove}]),
            &schema,
        )
        .unwrap();
        assert_eq!(out["members"].as_array().unwrap().len(), 5_000);
        assert_eq!(out["members"][0], json!({"value": "USER-10000"}));
    }

    // ---- identity-provider fixtures ----

    #[test]
    fn entra_replace_without_path() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/entra_user_replace_without_path.json"),
            &user_schema(),
        );
        assert_eq!(out["name"], json!({"givenName": "Barbara Ann", "familyName": "Jensen"}));
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Tour Operations"}));
        assert_eq!(out["active"], false);
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn entra_boolean_as_string() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/entra_user_active_string.json"),
            &user_schema(),
        );
        assert_eq!(out["active"], false);
    }

    #[test]
    fn entra_manager_as_a_bare_string() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/entra_user_manager_add.json"),
            &user_schema(),
        );
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"manager": {"value": USER_ID}}));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn entra_work_email_and_family_name() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/entra_user_update_attributes.json"),
            &user_schema(),
        );
        assert_eq!(
            out["emails"][0],
            json!({"value": "updatedEmail@microsoft.com", "type": "work", "primary": true})
        );
        assert_eq!(out["name"]["familyName"], "updatedFamilyName");
    }

    #[test]
    fn entra_work_address_is_created_then_updated() {
        let body = include_str!("../tests/fixtures/scim_patch/entra_user_address_work.json");
        let out = fixture(&user(), body, &user_schema());
        assert_eq!(
            out["addresses"],
            json!([{"type": "work", "streetAddress": "1 Microsoft Way", "locality": "Redmond", "postalCode": "98052"}])
        );
        // Sent again (the next delta sync), the same request changes nothing.
        assert_eq!(fixture(&out, body, &user_schema()), out);
    }

    #[test]
    fn entra_member_add_and_removals() {
        let schema = group_schema();
        let added = fixture(
            &group(),
            include_str!("../tests/fixtures/scim_patch/entra_group_members_add.json"),
            &schema,
        );
        assert_eq!(member_ids(&added), vec![ALICE, BOB, CAROL]);
        for body in [
            include_str!("../tests/fixtures/scim_patch/entra_group_members_remove_value.json"),
            include_str!("../tests/fixtures/scim_patch/entra_group_members_remove_filter.json"),
        ] {
            let removed = fixture(&added, body, &schema);
            assert_eq!(member_ids(&removed), vec![ALICE, BOB]);
            // Removing a member that is not there succeeds.
            assert_eq!(fixture(&removed, body, &schema), removed);
        }
    }

    #[test]
    fn okta_deactivate() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/okta_user_deactivate.json"),
            &user_schema(),
        );
        assert_eq!(out["active"], false);
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn okta_replace_of_several_attributes() {
        let out = fixture(
            &user(),
            include_str!("../tests/fixtures/scim_patch/okta_user_replace_attributes.json"),
            &user_schema(),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen-Smith"})
        );
        assert_eq!(out["displayName"], "Barbara Jensen-Smith");
        assert_eq!(
            out["emails"],
            json!([{"primary": true, "value": "barbara.smith@example.com", "type": "work"}])
        );
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Finance"}));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(out["groups"], user()["groups"]);
    }

    #[test]
    fn okta_group_rename_with_its_id() {
        let out = fixture(
            &group(),
            include_str!("../tests/fixtures/scim_patch/okta_group_rename.json"),
            &group_schema(),
        );
        assert_eq!(out["displayName"], "Test SCIMv2 Renamed");
        assert_eq!(out["id"], GROUP_ID);
        assert_eq!(member_ids(&out), vec![ALICE, BOB]);
    }

    #[test]
    fn okta_member_add_remove_and_replace() {
        let schema = group_schema();
        let empty = json!({"schemas": [GROUP_SCHEMA], "id": GROUP_ID, "displayName": "Tour Guides"});
        let added = fixture(
            &empty,
            include_str!("../tests/fixtures/scim_patch/okta_group_members_add.json"),
            &schema,
        );
        // `display` is read-only: the hub fills it in, Okta's copy is ignored.
        assert_eq!(added["members"], json!([{"value": ALICE}]));
        let removed = fixture(
            &group(),
            include_str!("../tests/fixtures/scim_patch/okta_group_members_remove.json"),
            &schema,
        );
        assert_eq!(member_ids(&removed), vec![ALICE]);
        let replaced = fixture(
            &json!({"schemas": [GROUP_SCHEMA], "id": GROUP_ID, "displayName": "G", "members": [{"value": CAROL}]}),
            include_str!("../tests/fixtures/scim_patch/okta_group_members_replace.json"),
            &schema,
        );
        assert_eq!(replaced["members"], json!([{"value": ALICE}, {"value": BOB}]));
    }
}
