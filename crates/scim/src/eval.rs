//! In-memory evaluation of SCIM filters against SCIM JSON resources, with the schema's rules
//! (RFC 7644 §3.4.2.2). The hub's store translates filters to SQL with exactly these semantics
//! (`provisio::store::scim_filter`, over the index of `provisio::domain::scim::index`), and a
//! property test (`tests/scim_filters.rs` of the hub) compares the two, so every
//! rule is spelled out here.
//!
//! **Validation.** [`validate`] checks a filter against a resource schema: every path resolves
//! ([`ResourceSchema::resolve`]), each operator suits the attribute's type and each literal
//! converts ([`literal_operand`]). [`matches()`] and [`element_matches`] validate first, so an invalid
//! filter is an error even when the resource alone would decide the result. Every error is
//! `invalidFilter`.
//!
//! **Finding values.** JSON keys are matched ignoring ASCII case; when several keys of one object
//! match, the values under all of them count. Core and common attributes (`id`, `externalId`,
//! `meta`) are read at the top level, extension attributes under their schema URN's key. A value
//! is *absent* when it is `null`, `""`, `[]` or `{}`; an element of a complex attribute is also
//! absent when it is not an object or all its members are absent. The *elements* of an attribute
//! are the items of its array when it is multi-valued (a non-array value is one element), or the
//! value itself when single-valued, absent ones left out. The *value set* of a path is:
//!
//! - a simple attribute: its elements;
//! - `attr.sub`: the non-absent values of the sub-attribute in each element of `attr` (a
//!   sub-attribute value is taken as it is, never split into items);
//! - a multi-valued complex attribute without `.sub`, in a comparison: as `attr.value`
//!   (`invalidFilter` when it has no `value` sub-attribute); in `pr`: its elements;
//! - a single-valued complex attribute without `.sub`: its elements in `pr`; comparing it is
//!   `invalidFilter`.
//!
//! **Operators.** `pr` holds when the value set is non-empty. `eq co sw ew gt ge lt le` hold when
//! some value in the set satisfies them ([`compare`] of [`stored_operand`] and [`literal_operand`]);
//! a value that cannot be compared (wrong JSON type, unparseable dateTime) satisfies none. `ne` is
//! exactly `not (path eq value)`, so a resource without the attribute matches it. Per type:
//!
//! - String, Reference, Binary: the literal must be a JSON string; both sides are folded with
//!   [`fold`] (lower-cased unless the attribute is case-exact); `eq` is equality, `co`/`sw`/`ew`
//!   substring, prefix and suffix, `gt ge lt le` byte-wise order of the folded UTF-8. Binary
//!   refuses `gt ge lt le`.
//! - Boolean: `eq`/`ne` only; the literal is `true`/`false` or the string `"true"`/`"false"` in any
//!   case; stored values likewise.
//! - Integer, Decimal: the literal must be a JSON number; all but `co sw ew`, compared as `f64`.
//! - DateTime: the literal must be an RFC 3339 string; all but `co sw ew`, compared as instants in
//!   whole microseconds since the epoch ([`date_time_micros`]: digits below the microsecond are
//!   dropped, i.e. floor).
//! - Complex: see above. The literal `null` is refused for every type (use `not (attr pr)`).
//!
//! **Value paths.** `attr[filter]` holds when some element of `attr` satisfies the filter, every
//! comparison inside evaluated on that same element ([`element_matches`]). Inside the brackets a
//! path names a sub-attribute of `attr`; for an attribute that is not complex, only `value` is
//! allowed and means the element itself. Value paths apply to any attribute (a single-valued one
//! has one element) and cannot be nested.

use crate::ast::{AttrPath, CompareOp, Filter};
use crate::error::{Error, Result, ScimErrorType};
use crate::schema::{AttrType, AttributeDef, ResourceSchema};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A value in comparable form: what a stored leaf value and a filter literal are turned into
/// before [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// Folded text (see [`fold`]), for String, Reference and Binary attributes.
    Text(String),
    /// An Integer or Decimal, as `f64`.
    Number(f64),
    /// A Boolean.
    Boolean(bool),
    /// A DateTime, in whole microseconds since the Unix epoch.
    DateTime(i64),
}

/// The form in which text is compared: `text.to_lowercase()` unless `case_exact`.
pub fn fold(text: &str, case_exact: bool) -> String {
    if case_exact {
        text.to_owned()
    } else {
        text.to_lowercase()
    }
}

/// An RFC 3339 date-time as whole microseconds since the epoch (floor); `None` when it does not parse.
pub fn date_time_micros(text: &str) -> Option<i64> {
    let instant = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(instant.unix_timestamp_nanos().div_euclid(1000)).ok()
}

/// Whether a stored operand satisfies `op` against a literal operand. Operands of different kinds
/// never satisfy anything; `co sw ew` hold for text only. `ne` here is plain inequality of the two
/// operands: the filter-level `ne` is `not eq` over the whole value set (see the module doc).
pub fn compare(op: CompareOp, stored: &Operand, literal: &Operand) -> bool {
    use std::cmp::Ordering;
    let ordering = match (stored, literal) {
        (Operand::Text(a), Operand::Text(b)) => match op {
            CompareOp::Co => return a.contains(b.as_str()),
            CompareOp::Sw => return a.starts_with(b.as_str()),
            CompareOp::Ew => return a.ends_with(b.as_str()),
            _ => a.as_bytes().cmp(b.as_bytes()),
        },
        (Operand::Number(a), Operand::Number(b)) => match a.partial_cmp(b) {
            Some(ordering) => ordering,
            None => return false,
        },
        (Operand::Boolean(a), Operand::Boolean(b)) => match op {
            CompareOp::Eq => return a == b,
            CompareOp::Ne => return a != b,
            _ => return false,
        },
        (Operand::DateTime(a), Operand::DateTime(b)) => a.cmp(b),
        _ => return false,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidFilter, detail)
}

/// Converts a filter literal compared with `op` to attribute `def` (the leaf compared: a simple
/// attribute or sub-attribute) into an operand: folded text, number, boolean or microseconds.
/// Refuses (`invalidFilter`) a complex `def`, `null`, a literal of the wrong JSON type, an
/// unparseable dateTime, and operators the type does not support (`co sw ew` on numbers, booleans
/// and dateTimes; `gt ge lt le` on booleans and binaries). `ne` is accepted wherever `eq` is.
pub fn literal_operand(def: &AttributeDef, op: CompareOp, literal: &Value) -> Result<Operand> {
    let name = &def.name;
    if def.kind == AttrType::Complex {
        return Err(invalid(format!(
            "'{name}' is complex: compare one of its sub-attributes"
        )));
    }
    if literal.is_null() {
        return Err(invalid(format!(
            "'{name}' cannot be compared with null; 'not ({name} pr)' finds resources without it"
        )));
    }
    let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    match def.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            if def.kind == AttrType::Binary && ordering {
                return Err(invalid(format!("'{name}' is binary: gt, ge, lt and le do not apply")));
            }
            match literal {
                Value::String(text) => Ok(Operand::Text(fold(text, def.case_exact))),
                other => Err(invalid(format!("'{name}' is compared with a JSON string, not {other}"))),
            }
        }
        AttrType::Boolean => {
            if ordering || substring {
                return Err(invalid(format!(
                    "'{name}' is a boolean: only eq and ne apply, not {}",
                    op.as_str()
                )));
            }
            boolean(literal).map(Operand::Boolean).ok_or_else(|| {
                invalid(format!(
                    "'{name}' is a boolean: compare it with true or false, not {literal}"
                ))
            })
        }
        AttrType::Integer | AttrType::Decimal => {
            if substring {
                return Err(invalid(format!("'{name}' is a number: {} does not apply", op.as_str())));
            }
            literal.as_f64().map(Operand::Number).ok_or_else(|| {
                invalid(format!(
                    "'{name}' is a number: compare it with a JSON number, not {literal}"
                ))
            })
        }
        AttrType::DateTime => {
            if substring {
                return Err(invalid(format!(
                    "'{name}' is a dateTime: {} does not apply",
                    op.as_str()
                )));
            }
            literal
                .as_str()
                .and_then(date_time_micros)
                .map(Operand::DateTime)
                .ok_or_else(|| {
                    invalid(format!(
                        "'{name}' is a dateTime: compare it with an RFC 3339 string such as \
                         \"2024-01-31T12:00:00Z\", not {literal}"
                    ))
                })
        }
        AttrType::Complex => Err(invalid(format!(
            "'{name}' is complex: compare one of its sub-attributes"
        ))),
    }
}

/// `true`/`false`, or a string spelling one of them in any case.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A resource's leaf value of attribute `def` in comparable form: a JSON string folded for
/// String/Reference/Binary, a JSON number for Integer/Decimal, a JSON boolean or `"true"`/`"false"`
/// (any case) for Boolean, an RFC 3339 string for DateTime. `None` when it cannot be compared:
/// absent (`null`, `""`, `[]`, `{}`), of another JSON type, an unparseable dateTime, or complex.
pub fn stored_operand(def: &AttributeDef, value: &Value) -> Option<Operand> {
    if is_absent(value) {
        return None;
    }
    match def.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            value.as_str().map(|text| Operand::Text(fold(text, def.case_exact)))
        }
        AttrType::Boolean => boolean(value).map(Operand::Boolean),
        AttrType::Integer | AttrType::Decimal => value.as_f64().map(Operand::Number),
        AttrType::DateTime => value.as_str().and_then(date_time_micros).map(Operand::DateTime),
        AttrType::Complex => None,
    }
}

/// `null`, `""`, `[]` or `{}`.
fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Whether one element of attribute `def` is absent; a complex element must be an object with
/// some member present.
fn element_absent(value: &Value, def: &AttributeDef) -> bool {
    if def.kind == AttrType::Complex {
        !value.as_object().is_some_and(|o| o.values().any(|m| !is_absent(m)))
    } else {
        is_absent(value)
    }
}

/// The values under every key of `object` equal to `name` ignoring ASCII case.
fn members<'a>(object: &'a Map<String, Value>, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    object
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The present elements of one value of attribute `def`.
fn elements<'a>(value: &'a Value, def: &AttributeDef) -> Vec<&'a Value> {
    let items: Vec<&Value> = match value {
        Value::Array(items) if def.multi_valued => items.iter().collect(),
        single => vec![single],
    };
    items.into_iter().filter(|v| !element_absent(v, def)).collect()
}

/// The present values of sub-attribute `sub` in one element.
fn sub_values<'a>(element: &'a Value, sub: &'a AttributeDef) -> Vec<&'a Value> {
    match element.as_object() {
        Some(object) => members(object, &sub.name).filter(|v| !is_absent(v)).collect(),
        None => Vec::new(),
    }
}

/// What a comparison reads: the sub-attribute to descend into (if any) and the leaf definition.
type Target<'a> = (Option<&'a AttributeDef>, &'a AttributeDef);

/// The target of a comparison on `attr[.sub]` at resource level.
fn comparison_target<'a>(attr: &'a AttributeDef, sub: Option<&'a AttributeDef>) -> Result<Target<'a>> {
    if let Some(sub) = sub {
        return Ok((Some(sub), sub));
    }
    if attr.kind != AttrType::Complex {
        return Ok((None, attr));
    }
    if !attr.multi_valued {
        return Err(invalid(format!(
            "'{}' is complex: compare one of its sub-attributes, e.g. '{}.{}'",
            attr.name,
            attr.name,
            attr.sub_attributes.first().map_or("value", |s| s.name.as_str())
        )));
    }
    let value = attr.sub("value").ok_or_else(|| {
        invalid(format!(
            "'{}' has no 'value' sub-attribute to compare; name one of its sub-attributes",
            attr.name
        ))
    })?;
    Ok((Some(value), value))
}

/// The target of a path inside `attr[...]`: a sub-attribute of `attr`, or `value` (the element
/// itself) when `attr` is not complex.
fn element_target<'a>(attr: &'a AttributeDef, path: &AttrPath) -> Result<Target<'a>> {
    if path.urn.is_some() || path.sub.is_some() {
        return Err(invalid(format!(
            "'{path}' inside '{}[...]': name a sub-attribute of '{}' only",
            attr.name, attr.name
        )));
    }
    if attr.kind == AttrType::Complex {
        let sub = attr
            .sub(&path.attr)
            .ok_or_else(|| invalid(format!("'{}' has no sub-attribute '{}'", attr.name, path.attr)))?;
        return Ok((Some(sub), sub));
    }
    if path.attr.eq_ignore_ascii_case("value") {
        return Ok((None, attr));
    }
    Err(invalid(format!(
        "inside '{}[...]' only 'value' (the element itself) can be named, not '{}'",
        attr.name, path.attr
    )))
}

/// The values a target denotes within the given elements.
fn target_values<'a>(elements: &[&'a Value], descend: Option<&'a AttributeDef>) -> Vec<&'a Value> {
    match descend {
        Some(sub) => elements.iter().flat_map(|e| sub_values(e, sub)).collect(),
        None => elements.to_vec(),
    }
}

/// Whether some value satisfies `op literal`; `ne` is `not eq` over the whole set.
fn any_satisfies(values: &[&Value], leaf: &AttributeDef, op: CompareOp, literal: &Value) -> Result<bool> {
    let operand = literal_operand(leaf, op, literal)?;
    let test = if op == CompareOp::Ne { CompareOp::Eq } else { op };
    let hit = values
        .iter()
        .any(|v| stored_operand(leaf, v).is_some_and(|stored| compare(test, &stored, &operand)));
    Ok(if op == CompareOp::Ne { !hit } else { hit })
}

/// Checks `filter` against `schema`: paths resolve, operators suit the types, literals convert.
pub fn validate(filter: &Filter, schema: &ResourceSchema) -> Result<()> {
    match filter {
        Filter::Compare { path, op, value } => {
            let resolved = resolve(schema, path)?;
            let (_, leaf) = comparison_target(resolved.attr, resolved.sub)?;
            literal_operand(leaf, *op, value).map(|_| ())
        }
        Filter::Present(path) => resolve(schema, path).map(|_| ()),
        Filter::And(a, b) | Filter::Or(a, b) => {
            validate(a, schema)?;
            validate(b, schema)
        }
        Filter::Not(inner) => validate(inner, schema),
        Filter::ValuePath { path, filter } => {
            let resolved = resolve(schema, path)?;
            if resolved.sub.is_some() {
                return Err(invalid(format!(
                    "'{path}[...]': a value filter applies to an attribute, not to a sub-attribute"
                )));
            }
            validate_element(filter, resolved.attr)
        }
    }
}

/// Checks a value filter on the elements of `attr`.
fn validate_element(filter: &Filter, attr: &AttributeDef) -> Result<()> {
    match filter {
        Filter::Compare { path, op, value } => {
            let (_, leaf) = element_target(attr, path)?;
            literal_operand(leaf, *op, value).map(|_| ())
        }
        Filter::Present(path) => element_target(attr, path).map(|_| ()),
        Filter::And(a, b) | Filter::Or(a, b) => {
            validate_element(a, attr)?;
            validate_element(b, attr)
        }
        Filter::Not(inner) => validate_element(inner, attr),
        Filter::ValuePath { .. } => Err(invalid(format!(
            "value filters cannot be nested (inside '{}[...]')",
            attr.name
        ))),
    }
}

fn resolve<'a>(schema: &'a ResourceSchema, path: &AttrPath) -> Result<crate::schema::Resolved<'a>> {
    schema.resolve(path).map_err(|e| invalid(e.to_string()))
}

/// Whether `resource` (a full SCIM JSON resource) satisfies `filter`; validates the filter first,
/// including the rules of [`crate::supported`] that the database translation shares.
pub fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> Result<bool> {
    crate::supported::check(filter, schema)?;
    validate(filter, schema)?;
    eval(filter, resource, schema)
}

/// The present elements of the resolved attribute `path` in `resource`.
fn attribute_elements<'a>(
    resource: &'a Value,
    schema: &'a ResourceSchema,
    path: &AttrPath,
) -> Result<(crate::schema::Resolved<'a>, Vec<&'a Value>)> {
    let resolved = resolve(schema, path)?;
    let Some(object) = resource.as_object() else {
        return Ok((resolved, Vec::new()));
    };
    let attr = resolved.attr;
    let values: Vec<&Value> = match resolved.container() {
        None => members(object, &attr.name).collect(),
        Some(urn) => members(object, urn)
            .filter_map(Value::as_object)
            .flat_map(|extension| members(extension, &attr.name))
            .collect(),
    };
    let elements = values.into_iter().flat_map(|v| elements(v, attr)).collect();
    Ok((resolved, elements))
}

fn eval(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> Result<bool> {
    Ok(match filter {
        Filter::Compare { path, op, value } => {
            let (resolved, elements) = attribute_elements(resource, schema, path)?;
            let (descend, leaf) = comparison_target(resolved.attr, resolved.sub)?;
            any_satisfies(&target_values(&elements, descend), leaf, *op, value)?
        }
        Filter::Present(path) => {
            let (resolved, elements) = attribute_elements(resource, schema, path)?;
            !target_values(&elements, resolved.sub).is_empty()
        }
        Filter::And(a, b) => eval(a, resource, schema)? && eval(b, resource, schema)?,
        Filter::Or(a, b) => eval(a, resource, schema)? || eval(b, resource, schema)?,
        Filter::Not(inner) => !eval(inner, resource, schema)?,
        Filter::ValuePath { path, filter } => {
            let (resolved, elements) = attribute_elements(resource, schema, path)?;
            let mut hit = false;
            for element in elements {
                if eval_element(filter, element, resolved.attr)? {
                    hit = true;
                    break;
                }
            }
            hit
        }
    })
}

/// Whether one element of attribute `attr` (an object for a complex attribute, a plain value for
/// a multi-valued simple one) satisfies the value filter `filter`, whose paths name sub-attributes
/// of `attr` (or `value`, the element itself, when `attr` is not complex). Validates the filter
/// against `attr` first. The element is taken as given, even when it would count as absent.
pub fn element_matches(filter: &Filter, element: &Value, attr: &AttributeDef) -> Result<bool> {
    validate_element(filter, attr)?;
    eval_element(filter, element, attr)
}

fn eval_element(filter: &Filter, element: &Value, attr: &AttributeDef) -> Result<bool> {
    let values = |path: &AttrPath| -> Result<(Vec<&Value>, &AttributeDef)> {
        let (descend, leaf) = element_target(attr, path)?;
        let values = match descend {
            Some(sub) => sub_values(element, sub),
            None if is_absent(element) => Vec::new(),
            None => vec![element],
        };
        Ok((values, leaf))
    };
    Ok(match filter {
        Filter::Compare { path, op, value } => {
            let (values, leaf) = values(path)?;
            any_satisfies(&values, leaf, *op, value)?
        }
        Filter::Present(path) => !values(path)?.0.is_empty(),
        Filter::And(a, b) => eval_element(a, element, attr)? && eval_element(b, element, attr)?,
        Filter::Or(a, b) => eval_element(a, element, attr)? || eval_element(b, element, attr)?,
        Filter::Not(inner) => !eval_element(inner, element, attr)?,
        Filter::ValuePath { .. } => {
            return Err(invalid(format!(
                "value filters cannot be nested (inside '{}[...]')",
                attr.name
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_filter;
    use crate::schema::{Extension, Mutability, Returned, Schema, Uniqueness};
    use proptest::prelude::*;
    use serde_json::json;

    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn def(name: &str, kind: AttrType) -> AttributeDef {
        AttributeDef {
            name: name.into(),
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

    fn multi(mut d: AttributeDef) -> AttributeDef {
        d.multi_valued = true;
        d
    }

    fn complex(name: &str, subs: Vec<AttributeDef>) -> AttributeDef {
        let mut d = def(name, AttrType::Complex);
        d.sub_attributes = subs;
        d
    }

    fn exact(mut d: AttributeDef) -> AttributeDef {
        d.case_exact = true;
        d
    }

    fn emails_def() -> AttributeDef {
        multi(complex(
            "emails",
            vec![
                def("value", AttrType::String),
                def("type", AttrType::String),
                def("primary", AttrType::Boolean),
            ],
        ))
    }

    fn user_schema() -> ResourceSchema {
        ResourceSchema {
            name: "User".into(),
            endpoint: "/Users".into(),
            core: Schema {
                id: CORE.into(),
                name: "User".into(),
                description: String::new(),
                attributes: vec![
                    def("userName", AttrType::String),
                    complex(
                        "name",
                        vec![def("givenName", AttrType::String), def("familyName", AttrType::String)],
                    ),
                    def("displayName", AttrType::String),
                    emails_def(),
                    def("active", AttrType::Boolean),
                    def("lastLogin", AttrType::DateTime),
                    def("loginCount", AttrType::Integer),
                    def("score", AttrType::Decimal),
                    def("profileUrl", AttrType::Reference),
                    exact(def("photo", AttrType::Binary)),
                    multi(def("nicknames", AttrType::String)),
                    exact(def("badge", AttrType::String)),
                    multi(complex(
                        "x509Certificates",
                        vec![def("display", AttrType::String), exact(def("data", AttrType::Binary))],
                    )),
                ],
            },
            extensions: vec![Extension {
                schema: Schema {
                    id: ENTERPRISE.into(),
                    name: "EnterpriseUser".into(),
                    description: String::new(),
                    attributes: vec![
                        def("employeeNumber", AttrType::String),
                        complex(
                            "manager",
                            vec![
                                def("value", AttrType::String),
                                exact(def("$ref", AttrType::Reference)),
                                def("displayName", AttrType::String),
                            ],
                        ),
                    ],
                },
                required: false,
            }],
        }
    }

    fn bjensen() -> Value {
        json!({
            "schemas": [CORE, ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "BJ-1",
            "meta": {
                "resourceType": "User",
                "created": "2024-01-01T00:00:00Z",
                "lastModified": "2024-06-01T12:00:00.123456Z"
            },
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "active": true,
            "lastLogin": "2024-05-01T08:30:00.000001Z",
            "loginCount": 42,
            "score": 2.5,
            "profileUrl": "https://Example.com/bjensen",
            "photo": "QUJD",
            "nicknames": ["Babs", "BJ"],
            "badge": "Gold",
            ENTERPRISE: {
                "employeeNumber": "701984",
                "manager": {"value": "26118915", "$ref": "../Users/26118915", "displayName": "John Smith"}
            }
        })
    }

    /// Parses and evaluates `filter` against `resource`.
    fn eval_on(filter: &str, resource: &Value) -> Result<bool> {
        let parsed = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        matches(&parsed, resource, &user_schema())
    }

    fn yes(filter: &str) -> bool {
        eval_on(filter, &bjensen()).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    fn refused(filter: &str) -> String {
        match eval_on(filter, &bjensen()) {
            Err(Error::Scim {
                scim_type: ScimErrorType::InvalidFilter,
                detail,
            }) => detail,
            other => panic!("{filter}: expected invalidFilter, got {other:?}"),
        }
    }

    #[test]
    fn fold_lowercases_unless_case_exact() {
        assert_eq!(fold("BJensen", false), "bjensen");
        assert_eq!(fold("BJensen", true), "BJensen");
        assert_eq!(fold("ÉCOLE Straße", false), "école straße");
    }

    #[test]
    fn strings_compare_folded() {
        assert!(yes(r#"userName eq "bjensen@example.com""#));
        assert!(yes(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#));
        assert!(yes(r#"userName co "JENSEN""#));
        assert!(yes(r#"userName sw "bj""#));
        assert!(yes(r#"userName ew ".COM""#));
        assert!(!yes(r#"userName sw "jensen""#));
        assert!(yes(r#"userName co """#));
        assert!(yes(r#"userName gt "bjensen""#));
        assert!(yes(r#"userName ge "bjensen@example.com""#));
        assert!(yes(r#"userName le "bjensen@example.com""#));
        assert!(!yes(r#"userName lt "bjensen@example.com""#));
        assert!(yes(r#"userName lt "c""#));
        // Byte order of the folded UTF-8: "é" (0xC3 0xA9) sorts after "z".
        assert!(yes(r#"userName lt "é""#));
        assert!(yes(r#"profileUrl eq "HTTPS://example.com/BJENSEN""#));
    }

    #[test]
    fn case_exact_strings() {
        assert!(yes(r#"badge eq "Gold""#));
        assert!(!yes(r#"badge eq "gold""#));
        assert!(!yes(r#"badge co "GOLD""#));
        assert!(yes(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!yes(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(yes(r#"externalId eq "BJ-1""#));
        assert!(!yes(r#"externalId eq "bj-1""#));
    }

    #[test]
    fn binary() {
        assert!(yes(r#"photo eq "QUJD""#));
        assert!(!yes(r#"photo eq "qujd""#));
        assert!(yes(r#"photo sw "QU""#));
        assert!(refused(r#"photo gt "A""#).contains("binary"));
        assert!(refused(r#"photo le "A""#).contains("binary"));
        assert!(refused("photo eq 1").contains("JSON string"));
    }

    #[test]
    fn booleans() {
        assert!(yes("active eq true"));
        assert!(!yes("active eq false"));
        assert!(yes("active ne false"));
        assert!(yes(r#"active eq "True""#));
        assert!(yes(r#"active eq "TRUE""#));
        assert!(!yes(r#"active eq "False""#));
        assert!(refused("active gt true").contains("only eq and ne"));
        assert!(refused(r#"active co "t""#).contains("only eq and ne"));
        assert!(refused("active eq 1").contains("true or false"));
        assert!(refused(r#"active eq "yes""#).contains("true or false"));
        // Stored as a string, in any case.
        let entra = json!({"userName": "a", "active": "False"});
        assert!(eval_on("active eq false", &entra).unwrap());
        assert!(!eval_on("active eq true", &entra).unwrap());
        let junk = json!({"active": 1});
        assert!(!eval_on("active eq true", &junk).unwrap());
        assert!(!eval_on("active eq false", &junk).unwrap());
        assert!(eval_on("active pr", &junk).unwrap());
    }

    #[test]
    fn numbers() {
        assert!(yes("loginCount eq 42"));
        assert!(yes("loginCount eq 42.0"));
        assert!(yes("loginCount eq 4.2e1"));
        assert!(yes("loginCount gt 41"));
        assert!(yes("loginCount ge 42"));
        assert!(!yes("loginCount gt 42"));
        assert!(yes("loginCount lt 42.5"));
        assert!(yes("loginCount le 42"));
        assert!(yes("loginCount ne 43"));
        assert!(yes("score gt -1"));
        assert!(yes("score eq 2.5"));
        assert!(refused(r#"loginCount eq "42""#).contains("JSON number"));
        assert!(refused("loginCount eq true").contains("JSON number"));
        assert!(refused("loginCount co 4").contains("co does not apply"));
        assert!(refused("score sw 2").contains("sw does not apply"));
        assert!(refused("score ew 2").contains("ew does not apply"));
        let stringly = json!({"loginCount": "42"});
        assert!(!eval_on("loginCount eq 42", &stringly).unwrap());
        assert!(eval_on("loginCount pr", &stringly).unwrap());
    }

    #[test]
    fn date_times() {
        assert!(yes(r#"lastLogin gt "2024-05-01T08:30:00Z""#));
        assert!(yes(r#"lastLogin eq "2024-05-01T08:30:00.000001Z""#));
        // The same instant in another offset.
        assert!(yes(r#"lastLogin eq "2024-05-01T10:30:00.000001+02:00""#));
        // Digits below the microsecond are dropped on both sides.
        assert!(yes(r#"lastLogin eq "2024-05-01T08:30:00.0000019Z""#));
        assert!(!yes(r#"lastLogin eq "2024-05-01T08:30:00.000002Z""#));
        assert!(yes(r#"lastLogin lt "2024-05-01T08:30:00.000002Z""#));
        assert!(yes(r#"lastLogin le "2024-05-01T08:30:00.000001Z""#));
        assert!(yes(r#"lastLogin ge "2024-05-01T08:30:00.000001Z""#));
        assert!(yes(r#"meta.lastModified gt "2024-06-01T12:00:00Z""#));
        assert!(yes(r#"meta.created eq "2024-01-01T00:00:00.000Z""#));
        assert!(refused(r#"lastLogin co "2024""#).contains("co does not apply"));
        assert!(refused(r#"lastLogin gt "yesterday""#).contains("RFC 3339"));
        assert!(refused(r#"lastLogin gt "2024-05-01""#).contains("RFC 3339"));
        assert!(refused("lastLogin gt 1714552200").contains("RFC 3339"));
        // A stored value that does not parse never matches, but is present.
        let junk = json!({"lastLogin": "last tuesday"});
        assert!(!eval_on(r#"lastLogin gt "1970-01-01T00:00:00Z""#, &junk).unwrap());
        assert!(!eval_on(r#"lastLogin lt "2999-01-01T00:00:00Z""#, &junk).unwrap());
        assert!(eval_on("lastLogin pr", &junk).unwrap());
        assert!(eval_on(r#"lastLogin ne "2024-01-01T00:00:00Z""#, &junk).unwrap());
    }

    #[test]
    fn micros_floor() {
        assert_eq!(date_time_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date_time_micros("1970-01-01T00:00:01.0000009Z"), Some(1_000_000));
        assert_eq!(date_time_micros("1969-12-31T23:59:59.9999995Z"), Some(-1));
        assert_eq!(date_time_micros("2024-01-01"), None);
    }

    #[test]
    fn multi_valued_simple() {
        assert!(yes(r#"nicknames eq "babs""#));
        assert!(yes(r#"nicknames eq "bj""#));
        assert!(!yes(r#"nicknames eq "barb""#));
        assert!(yes(r#"nicknames sw "B""#));
        assert!(yes("nicknames pr"));
        assert!(yes(r#"nicknames[value eq "BJ"]"#));
        assert!(refused(r#"nicknames[type eq "x"]"#).contains("only 'value'"));
        for empty in [json!([]), json!([null, ""]), json!(null), json!("")] {
            let r = json!({"nicknames": empty});
            assert!(!eval_on("nicknames pr", &r).unwrap(), "{r}");
            assert!(!eval_on("nicknames[value pr]", &r).unwrap(), "{r}");
        }
        // A lone value where a list is expected is one element.
        let single = json!({"nicknames": "Babs"});
        assert!(eval_on(r#"nicknames eq "babs""#, &single).unwrap());
    }

    #[test]
    fn multi_valued_complex() {
        // Without a sub-attribute, a comparison reads `value`.
        assert!(yes(r#"emails eq "babs@jensen.org""#));
        assert!(yes(r#"emails co "@example.com""#));
        assert!(yes(r#"emails.type eq "home""#));
        assert!(yes("emails.primary eq true"));
        assert!(yes("emails pr"));
        assert!(yes("emails.primary pr"));
        assert!(refused(r#"x509Certificates eq "x""#).contains("no 'value' sub-attribute"));
        assert!(refused(r#"emails.kind eq "x""#).contains("no sub-attribute 'kind'"));
        let no_primary = json!({"emails": [{"value": "a@b.c"}, {"value": "d@e.f", "primary": null}]});
        assert!(!eval_on("emails.primary pr", &no_primary).unwrap());
        for empty in [
            json!([]),
            json!([{}]),
            json!([{"value": null, "type": ""}]),
            json!([null]),
        ] {
            let r = json!({"emails": empty});
            assert!(!eval_on("emails pr", &r).unwrap(), "{r}");
            assert!(!eval_on(r#"emails[not (type eq "work")]"#, &r).unwrap(), "{r}");
        }
    }

    #[test]
    fn single_valued_complex() {
        assert!(yes(r#"name.givenName eq "barbara""#));
        assert!(yes(r#"name.familyName sw "J""#));
        assert!(yes("name pr"));
        assert!(yes(r#"name[givenName eq "Barbara" and familyName eq "Jensen"]"#));
        assert!(refused(r#"name eq "Barbara""#).contains("is complex"));
        assert!(refused("name pr and name.middle pr").contains("no sub-attribute 'middle'"));
        for empty in [json!({}), json!({"givenName": null}), json!(null), json!("x")] {
            let r = json!({"name": empty});
            assert!(!eval_on("name pr", &r).unwrap(), "{r}");
        }
    }

    #[test]
    fn absent_values() {
        let r = json!({"userName": "", "displayName": null, "emails": [], "name": {}});
        for attr in ["userName", "displayName", "emails", "name"] {
            assert!(!eval_on(&format!("{attr} pr"), &r).unwrap(), "{attr}");
        }
        assert!(!eval_on(r#"userName eq """#, &r).unwrap());
        assert!(eval_on(r#"userName ne """#, &r).unwrap());
        assert!(!eval_on("active pr", &r).unwrap());
    }

    #[test]
    fn ne_is_not_eq() {
        // An absent attribute matches ne.
        assert!(yes(r#"displayName ne "x""#));
        assert!(!yes(r#"displayName eq "x""#));
        // Multi-valued: ne fails when any value equals.
        assert!(!yes(r#"emails.type ne "work""#));
        assert!(yes(r#"emails.type ne "other""#));
        assert!(!yes(r#"nicknames ne "babs""#));
        assert!(yes(r#"emails[type ne "work"]"#));
        assert!(!yes(r#"emails[type ne "work" and type ne "home"]"#));
    }

    #[test]
    fn logic() {
        assert!(yes(r#"userName sw "b" and active eq true"#));
        assert!(!yes(r#"userName sw "x" and active eq true"#));
        assert!(yes(r#"userName sw "x" or active eq true"#));
        assert!(yes(r#"not (userName sw "x")"#));
        assert!(!yes(r#"not (userName sw "b")"#));
        assert!(yes(r#"userName sw "x" or (active eq true and not (loginCount lt 10))"#));
    }

    #[test]
    fn value_paths_use_one_element() {
        assert!(yes(r#"emails[type eq "work" and value co "@example.com"]"#));
        // Both conditions hold, but on different elements.
        assert!(!yes(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(yes(r#"emails[type eq "home" or value co "nothing"]"#));
        assert!(yes(r#"emails[not (primary pr)]"#));
        assert!(yes(r#"emails[primary eq true] and emails[type eq "home"]"#));
        assert!(refused(r#"emails[kind eq "x"]"#).contains("no sub-attribute 'kind'"));
    }

    #[test]
    fn value_path_ast_errors() {
        let schema = user_schema();
        let nested = Filter::ValuePath {
            path: AttrPath::simple("emails"),
            filter: Box::new(Filter::ValuePath {
                path: AttrPath::simple("type"),
                filter: Box::new(Filter::Present(AttrPath::simple("value"))),
            }),
        };
        assert!(validate(&nested, &schema).is_err());
        let on_sub = Filter::ValuePath {
            path: AttrPath {
                urn: None,
                attr: "emails".into(),
                sub: Some("value".into()),
            },
            filter: Box::new(Filter::Present(AttrPath::simple("type"))),
        };
        assert!(validate(&on_sub, &schema).is_err());
        let inner_sub = Filter::ValuePath {
            path: AttrPath::simple("emails"),
            filter: Box::new(Filter::Present(AttrPath {
                urn: None,
                attr: "type".into(),
                sub: Some("x".into()),
            })),
        };
        assert!(validate(&inner_sub, &schema).is_err());
    }

    #[test]
    fn extensions_and_urns() {
        assert!(yes(&format!(r#"{ENTERPRISE}:employeeNumber eq "701984""#)));
        assert!(yes(&format!(r#"{ENTERPRISE}:manager.value eq "26118915""#)));
        assert!(yes(&format!(r#"{ENTERPRISE}:manager.displayName co "smith""#)));
        assert!(yes(&format!("{ENTERPRISE}:manager pr")));
        assert!(yes(&format!(r#"{ENTERPRISE}:manager[value eq "26118915"]"#)));
        assert!(yes(&format!(r#"{CORE}:userName sw "bj""#)));
        assert!(yes(&format!(r#"{CORE}:emails[type eq "work"]"#)));
        assert!(yes(&format!(r#"{ENTERPRISE}:manager.$ref eq "../Users/26118915""#)));
        assert!(!yes(&format!(r#"{ENTERPRISE}:manager.$ref eq "../users/26118915""#)));
        // Extension attributes need their URN.
        assert!(refused(r#"employeeNumber eq "701984""#).contains("'employeeNumber' is not an attribute"));
        assert!(refused(r#"urn:example:ext:1.0:User:x eq "1""#).contains("is not a schema"));
        assert!(refused(&format!(r#"{CORE}:employeeNumber pr"#)).contains("is not an attribute"));
    }

    #[test]
    fn json_keys_ignore_case() {
        let r = json!({
            "USERNAME": "bjensen",
            "Emails": [{"VALUE": "a@b.c", "Type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "7"}
        });
        assert!(eval_on(r#"userName eq "bjensen""#, &r).unwrap());
        assert!(eval_on(r#"emails[type eq "work" and value eq "a@b.c"]"#, &r).unwrap());
        assert!(eval_on(&format!(r#"{ENTERPRISE}:employeeNumber eq "7""#), &r).unwrap());
        // Every matching key counts.
        let twice = json!({"userName": "a", "username": "b"});
        assert!(eval_on(r#"userName eq "a""#, &twice).unwrap());
        assert!(eval_on(r#"userName eq "b""#, &twice).unwrap());
    }

    #[test]
    fn resolution_and_literal_errors() {
        assert!(refused(r#"title eq "x""#).contains("'title' is not an attribute"));
        assert!(refused(r#"name.middle eq "x""#).contains("no sub-attribute 'middle'"));
        assert!(refused("userName eq null").contains("null"));
        assert!(refused("loginCount eq null").contains("null"));
        assert!(refused("userName eq 1").contains("JSON string"));
        assert!(refused("userName eq true").contains("JSON string"));
        // Validation happens before evaluation: no short-circuit hides an error.
        assert!(refused(r#"userName pr or title eq "x""#).contains("'title'"));
        assert!(refused(r#"not (userName pr) and loginCount co 1"#).contains("co does not apply"));
    }

    #[test]
    fn element_matching() {
        let emails = emails_def();
        let work = json!({"value": "bjensen@example.com", "type": "Work", "primary": true});
        let check = |f: &str, e: &Value| element_matches(&parse_filter(f).unwrap(), e, &emails);
        assert!(check(r#"type eq "work""#, &work).unwrap());
        assert!(check(r#"type eq "work" and primary eq true"#, &work).unwrap());
        assert!(check("value pr", &work).unwrap());
        assert!(!check(r#"type ne "work""#, &work).unwrap());
        assert!(check(r#"display ne "x""#, &work).is_err());
        assert!(check(r#"emails[type eq "work"]"#, &work).is_err());
        assert!(check(r#"primary gt true"#, &work).is_err());
        // Simple multi-valued: `value` is the element itself.
        let nicknames = multi(def("nicknames", AttrType::String));
        let filter = parse_filter(r#"value eq "babs""#).unwrap();
        assert!(element_matches(&filter, &json!("Babs"), &nicknames).unwrap());
        assert!(!element_matches(&filter, &json!("BJ"), &nicknames).unwrap());
        let other = parse_filter(r#"type eq "x""#).unwrap();
        assert!(element_matches(&other, &json!("Babs"), &nicknames).is_err());
        // Group members.
        let members = multi(complex(
            "members",
            vec![
                exact(def("value", AttrType::String)),
                exact(def("$ref", AttrType::Reference)),
                def("type", AttrType::String),
            ],
        ));
        let member = json!({"value": "2819c223-7f76-453a-919d-413861904646", "$ref": "https://x/Users/2819c223"});
        let f = parse_filter(r#"value eq "2819c223-7f76-453a-919d-413861904646""#).unwrap();
        assert!(element_matches(&f, &member, &members).unwrap());
        let f = parse_filter(r#"value eq "2819C223-7F76-453A-919D-413861904646""#).unwrap();
        assert!(!element_matches(&f, &member, &members).unwrap());
        let f = Filter::Compare {
            path: AttrPath::simple("$ref"),
            op: CompareOp::Ew,
            value: json!("/2819c223"),
        };
        assert!(element_matches(&f, &member, &members).unwrap());
    }

    #[test]
    fn operands() {
        let name = def("userName", AttrType::String);
        assert_eq!(
            literal_operand(&name, CompareOp::Eq, &json!("BJ")).unwrap(),
            Operand::Text("bj".into())
        );
        assert_eq!(stored_operand(&name, &json!("BJ")), Some(Operand::Text("bj".into())));
        assert_eq!(stored_operand(&name, &json!("")), None);
        assert_eq!(stored_operand(&name, &json!(1)), None);
        let active = def("active", AttrType::Boolean);
        assert_eq!(
            literal_operand(&active, CompareOp::Ne, &json!("TRUE")).unwrap(),
            Operand::Boolean(true)
        );
        assert_eq!(stored_operand(&active, &json!(false)), Some(Operand::Boolean(false)));
        let count = def("loginCount", AttrType::Integer);
        assert_eq!(
            literal_operand(&count, CompareOp::Gt, &json!(3)).unwrap(),
            Operand::Number(3.0)
        );
        assert_eq!(stored_operand(&count, &json!("3")), None);
        let at = def("lastLogin", AttrType::DateTime);
        assert_eq!(
            literal_operand(&at, CompareOp::Le, &json!("1970-01-01T00:00:01Z")).unwrap(),
            Operand::DateTime(1_000_000)
        );
        assert_eq!(stored_operand(&at, &json!("nope")), None);
        assert!(literal_operand(&emails_def(), CompareOp::Eq, &json!("x")).is_err());
        assert_eq!(stored_operand(&emails_def(), &json!({"value": "x"})), None);
        assert!(!compare(
            CompareOp::Eq,
            &Operand::Text("1".into()),
            &Operand::Number(1.0)
        ));
        assert!(compare(CompareOp::Ne, &Operand::Number(1.0), &Operand::Number(2.0)));
        assert!(!compare(CompareOp::Co, &Operand::Number(1.0), &Operand::Number(1.0)));
    }

    // ---- properties ----

    fn arb_resource() -> impl Strategy<Value = Value> {
        let word = prop_oneof![Just("work"), Just("home"), Just("Work"), Just("other"), Just("")];
        let email = (word.clone(), proptest::option::of(any::<bool>()), 0..3usize).prop_map(|(kind, primary, n)| {
            let mut e = json!({"type": kind, "value": format!("u{n}@example.com")});
            if let Some(p) = primary {
                e["primary"] = json!(p);
            }
            e
        });
        (
            proptest::option::of(word),
            proptest::option::of(proptest::collection::vec(email, 0..4)),
            proptest::option::of(any::<bool>()),
            proptest::option::of(-2i64..3),
        )
            .prop_map(|(user, emails, active, count)| {
                let mut r = json!({});
                if let Some(u) = user {
                    r["userName"] = json!(u);
                }
                if let Some(e) = emails {
                    r["emails"] = json!(e);
                }
                if let Some(a) = active {
                    r["active"] = json!(a);
                }
                if let Some(c) = count {
                    r["loginCount"] = json!(c);
                }
                r
            })
    }

    fn arb_element_filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            (
                prop_oneof![Just("type"), Just("value")],
                prop_oneof![
                    Just(CompareOp::Eq),
                    Just(CompareOp::Ne),
                    Just(CompareOp::Sw),
                    Just(CompareOp::Gt)
                ],
                prop_oneof![Just("work"), Just("u1@example.com"), Just("h"), Just("")]
            )
                .prop_map(|(attr, op, v)| Filter::Compare {
                    path: AttrPath::simple(attr),
                    op,
                    value: json!(v)
                }),
            (prop_oneof![Just(CompareOp::Eq), Just(CompareOp::Ne)], any::<bool>()).prop_map(|(op, b)| {
                Filter::Compare {
                    path: AttrPath::simple("primary"),
                    op,
                    value: json!(b),
                }
            }),
            prop_oneof![Just("type"), Just("value"), Just("primary")]
                .prop_map(|a| Filter::Present(AttrPath::simple(a))),
        ];
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            (
                prop_oneof![
                    Just(CompareOp::Eq),
                    Just(CompareOp::Ne),
                    Just(CompareOp::Co),
                    Just(CompareOp::Lt)
                ],
                prop_oneof![Just("work"), Just("home"), Just("")]
            )
                .prop_map(|(op, v)| Filter::Compare {
                    path: AttrPath::simple("userName"),
                    op,
                    value: json!(v)
                }),
            (
                prop_oneof![
                    Just(CompareOp::Eq),
                    Just(CompareOp::Ne),
                    Just(CompareOp::Gt),
                    Just(CompareOp::Le)
                ],
                -2i64..3
            )
                .prop_map(|(op, n)| Filter::Compare {
                    path: AttrPath::simple("loginCount"),
                    op,
                    value: json!(n)
                }),
            (
                prop_oneof![Just("emails.type"), Just("emails"), Just("emails.primary")],
                prop_oneof![Just(CompareOp::Eq), Just(CompareOp::Ne)]
            )
                .prop_map(|(p, op)| {
                    let path = parse_filter(&format!("{p} pr")).map(|f| match f {
                        Filter::Present(path) => path,
                        _ => AttrPath::simple("userName"),
                    });
                    let path = path.unwrap_or_else(|_| AttrPath::simple("userName"));
                    let value = if p.ends_with("primary") {
                        json!(true)
                    } else {
                        json!("work")
                    };
                    Filter::Compare { path, op, value }
                }),
            prop_oneof![Just("userName"), Just("emails"), Just("active"), Just("loginCount")]
                .prop_map(|a| Filter::Present(AttrPath::simple(a))),
            arb_element_filter().prop_map(|f| Filter::ValuePath {
                path: AttrPath::simple("emails"),
                filter: Box::new(f)
            }),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        #[test]
        fn not_negates(filter in arb_filter(), resource in arb_resource()) {
            let schema = user_schema();
            let plain = matches(&filter, &resource, &schema).unwrap();
            let negated = matches(&Filter::Not(Box::new(filter.clone())), &resource, &schema).unwrap();
            prop_assert_eq!(plain, !negated);
            // The canonical text evaluates the same.
            let reparsed = parse_filter(&filter.to_string()).unwrap();
            prop_assert_eq!(matches(&reparsed, &resource, &schema).unwrap(), plain);
        }

        #[test]
        fn ne_is_not_eq_everywhere(filter in arb_filter(), resource in arb_resource()) {
            let schema = user_schema();
            if let Filter::Compare { path, op: CompareOp::Eq | CompareOp::Ne, value } = &filter {
                let eq = Filter::Compare { path: path.clone(), op: CompareOp::Eq, value: value.clone() };
                let ne = Filter::Compare { path: path.clone(), op: CompareOp::Ne, value: value.clone() };
                prop_assert_eq!(matches(&eq, &resource, &schema).unwrap(), !matches(&ne, &resource, &schema).unwrap());
            }
        }

        #[test]
        fn value_path_is_some_element(inner in arb_element_filter(), resource in arb_resource()) {
            let schema = user_schema();
            let attr = emails_def();
            let whole = Filter::ValuePath { path: AttrPath::simple("emails"), filter: Box::new(inner.clone()) };
            let expected = resource["emails"].as_array().is_some_and(|list| {
                list.iter()
                    .filter(|e| !element_absent(e, &attr))
                    .any(|e| element_matches(&inner, e, &attr).unwrap())
            });
            prop_assert_eq!(matches(&whole, &resource, &schema).unwrap(), expected);
        }
    }
}
