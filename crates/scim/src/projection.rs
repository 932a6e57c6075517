//! Which attributes a SCIM response carries: the `attributes` and `excludedAttributes` parameters
//! (RFC 7644 §3.4.2.5, §3.9) combined with each attribute's `returned` characteristic
//! (RFC 7643 §2.4, §7).
//!
//! Rules, in order:
//! - `schemas` is always kept; an extension URN is removed from it when the projection drops that
//!   extension's whole object, so `schemas` keeps naming exactly the schemas present.
//! - `returned: never` (e.g. `password`) is never sent, even when named.
//! - `returned: always` (e.g. `id`) is always sent and cannot be excluded.
//! - `returned: request` is sent only when named in `attributes`.
//! - `returned: default` is sent unless `attributes` is given and does not name it, or
//!   `excludedAttributes` names it.
//!
//! Naming a complex attribute selects it with its default sub-attributes; naming a sub-attribute
//! (`name.givenName`, `emails.value`) keeps only that sub-attribute of it (of every value, for a
//! multi-valued attribute), plus any sub-attribute returned always. A bare schema URN names every
//! attribute of that schema (for an extension: its whole object). Matching ignores case.
//!
//! Decisions where RFC 7644 leaves room:
//! - A well-formed name that this resource type does not have (unknown attribute, sub-attribute
//!   or schema) is ignored, as RFC 7644 defines no error for it; a list naming nothing known
//!   returns the minimal resource (`schemas`, `id` and what is returned always).
//! - A malformed name (empty segment, forbidden character, `a.b.c`, filter brackets) is an
//!   `invalidValue` error.
//! - The two parameters are mutually exclusive (§3.4.2.5); when both are given, `attributes` wins
//!   and `excludedAttributes` is ignored. An empty parameter counts as absent.

use crate::ast::AttrPath;
use crate::error::{Error, Result, ScimErrorType};
use crate::schema::{AttrType, AttributeDef, ResourceSchema, Returned, common_attributes};
use serde_json::{Map, Value};

/// A parsed `attributes` / `excludedAttributes` pair, ready to be applied to resources of one type.
/// [`Projection::default`] is the projection of a request without either parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Mode {
    /// Neither parameter: everything returned by default.
    #[default]
    Default,
    /// `attributes`: only the named attributes (and those returned always).
    Include(Vec<Target>),
    /// `excludedAttributes`: everything returned by default except the named attributes.
    Exclude(Vec<Target>),
}

/// One resolved name of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A bare schema URN: every attribute of that schema.
    Schema(String),
    /// An attribute, by its canonical (schema) spelling.
    Attr {
        /// The extension URN whose object holds it; `None` for core and common attributes.
        container: Option<String>,
        /// The attribute name.
        attr: String,
        /// The sub-attribute name, when one was named.
        sub: Option<String>,
    },
}

impl Target {
    /// Whether this names the attribute `attr` of `container` as a whole.
    fn names_whole(&self, container: Option<&str>, attr: &str, core_id: &str) -> bool {
        match self {
            Target::Schema(urn) => match container {
                Some(c) => urn.eq_ignore_ascii_case(c),
                None => urn.eq_ignore_ascii_case(core_id),
            },
            Target::Attr {
                container: c,
                attr: a,
                sub: None,
            } => same_container(c.as_deref(), container) && a.eq_ignore_ascii_case(attr),
            Target::Attr { .. } => false,
        }
    }

    /// The sub-attribute of `attr` of `container` this names, if it names one.
    fn sub_of(&self, container: Option<&str>, attr: &str) -> Option<&str> {
        match self {
            Target::Attr {
                container: c,
                attr: a,
                sub: Some(sub),
            } if same_container(c.as_deref(), container) && a.eq_ignore_ascii_case(attr) => Some(sub),
            _ => None,
        }
    }
}

fn same_container(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

impl Projection {
    /// Parses the two query parameters for resources described by `schema`: comma-separated
    /// attribute names in RFC 7644 §3.10 notation (`userName`, `name.givenName`, `emails.value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`). Whitespace around
    /// names is ignored. See the module documentation for unknown names and for both parameters.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>, schema: &ResourceSchema) -> Result<Projection> {
        let attributes = attributes.filter(|list| has_names(list));
        let excluded = excluded.filter(|list| has_names(list));
        let mode = match (attributes, excluded) {
            (Some(list), _) => Mode::Include(parse_list(list, schema)?),
            (None, Some(list)) => Mode::Exclude(parse_list(list, schema)?),
            (None, None) => Mode::Default,
        };
        Ok(Projection { mode })
    }

    /// Whether this is the projection of a request without either parameter.
    pub fn is_default(&self) -> bool {
        self.mode == Mode::Default
    }

    /// The representation of `resource` (a resource of the type `schema` describes) to send.
    /// Keys the schema does not know are kept unless `attributes` was given. Values that are not
    /// JSON objects are returned unchanged.
    pub fn apply(&self, resource: &Value, schema: &ResourceSchema) -> Value {
        let Value::Object(object) = resource else {
            return resource.clone();
        };
        let mut out = Map::new();
        let mut dropped_extensions: Vec<&str> = Vec::new();
        for (key, value) in object {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert(key.clone(), value.clone());
            } else if let Some(extension) = schema.extension(key) {
                let urn = extension.schema.id.as_str();
                match value {
                    Value::Object(inner) => {
                        let mut projected = Map::new();
                        for (name, v) in inner {
                            let kept = match extension.schema.attribute(name) {
                                Some(def) => self.project(def, Some(urn), v, &schema.core.id),
                                None => self.keeps_unknown().then(|| v.clone()),
                            };
                            if let Some(kept) = kept {
                                projected.insert(name.clone(), kept);
                            }
                        }
                        if projected.is_empty() {
                            dropped_extensions.push(urn);
                        } else {
                            out.insert(key.clone(), Value::Object(projected));
                        }
                    }
                    other => {
                        if self.keeps_unknown() {
                            out.insert(key.clone(), other.clone());
                        }
                    }
                }
            } else {
                let def = common_attributes()
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(key))
                    .or_else(|| schema.core.attribute(key));
                let kept = match def {
                    Some(def) => self.project(def, None, value, &schema.core.id),
                    None => self.keeps_unknown().then(|| value.clone()),
                };
                if let Some(kept) = kept {
                    out.insert(key.clone(), kept);
                }
            }
        }
        if !dropped_extensions.is_empty()
            && let Some(Value::Array(ids)) = out
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
                .map(|(_, v)| v)
        {
            ids.retain(|id| {
                !id.as_str()
                    .is_some_and(|id| dropped_extensions.iter().any(|d| d.eq_ignore_ascii_case(id)))
            });
        }
        Value::Object(out)
    }

    /// Whether a resource's core attribute `name` (any part of it) would be sent, so that a
    /// caller can leave out loading what the answer will not carry (a group's members).
    pub fn returns(&self, name: &str, schema: &ResourceSchema) -> bool {
        let Some(def) = schema.core.attribute(name) else {
            return false;
        };
        let one = if def.kind == AttrType::Complex {
            Value::Object(
                def.sub_attributes
                    .iter()
                    .map(|s| (s.name.clone(), Value::String("x".into())))
                    .collect(),
            )
        } else {
            Value::String("x".into())
        };
        let probe = if def.multi_valued { Value::Array(vec![one]) } else { one };
        self.project(def, None, &probe, &schema.core.id).is_some()
    }

    /// Whether keys the schema does not describe are passed through.
    fn keeps_unknown(&self) -> bool {
        !matches!(self.mode, Mode::Include(_))
    }

    /// The projected value of attribute `def` (of extension `container`, or core/common when
    /// `None`), or `None` to leave it out.
    fn project(&self, def: &AttributeDef, container: Option<&str>, value: &Value, core_id: &str) -> Option<Value> {
        if def.returned == Returned::Never {
            return None;
        }
        match &self.mode {
            Mode::Default => {
                if def.returned == Returned::Request {
                    return None;
                }
                keep_subs(def, value, true, returned_by_default)
            }
            Mode::Include(targets) => {
                let whole = targets.iter().any(|t| t.names_whole(container, &def.name, core_id));
                let named: Vec<&str> = targets.iter().filter_map(|t| t.sub_of(container, &def.name)).collect();
                let is_named = |s: &AttributeDef| named.iter().any(|n| n.eq_ignore_ascii_case(&s.name));
                if whole || def.returned == Returned::Always {
                    keep_subs(def, value, true, |s| {
                        returned_by_default(s) || (s.returned == Returned::Request && is_named(s))
                    })
                } else if !named.is_empty() {
                    keep_subs(def, value, false, |s| {
                        s.returned == Returned::Always || (s.returned != Returned::Never && is_named(s))
                    })
                } else if def.sub_attributes.iter().any(|s| s.returned == Returned::Always) {
                    keep_subs(def, value, false, |s| s.returned == Returned::Always)
                } else {
                    None
                }
            }
            Mode::Exclude(targets) => {
                if def.returned == Returned::Request {
                    return None;
                }
                let whole = targets.iter().any(|t| t.names_whole(container, &def.name, core_id));
                if whole && def.returned != Returned::Always {
                    return None;
                }
                let excluded: Vec<&str> = targets.iter().filter_map(|t| t.sub_of(container, &def.name)).collect();
                keep_subs(def, value, true, |s| {
                    s.returned == Returned::Always
                        || (s.returned == Returned::Default
                            && !excluded.iter().any(|n| n.eq_ignore_ascii_case(&s.name)))
                })
            }
        }
    }
}

fn returned_by_default(def: &AttributeDef) -> bool {
    matches!(def.returned, Returned::Always | Returned::Default)
}

/// `value` of attribute `def` with only the sub-attributes `keep` accepts (in every element of a
/// multi-valued attribute). Sub-attribute keys the schema does not know are kept when
/// `keep_unknown`. Elements and objects that filtering empties are dropped; `None` when nothing
/// is left of a value that had something.
fn keep_subs(
    def: &AttributeDef,
    value: &Value,
    keep_unknown: bool,
    keep: impl Fn(&AttributeDef) -> bool,
) -> Option<Value> {
    if def.kind != AttrType::Complex || def.sub_attributes.is_empty() {
        return Some(value.clone());
    }
    let filter_object = |object: &Map<String, Value>| -> Map<String, Value> {
        object
            .iter()
            .filter(|(name, _)| def.sub(name).map_or(keep_unknown, &keep))
            .map(|(name, v)| (name.clone(), v.clone()))
            .collect()
    };
    match value {
        Value::Object(object) => {
            let filtered = filter_object(object);
            (filtered.is_empty() == object.is_empty()).then_some(Value::Object(filtered))
        }
        Value::Array(items) => {
            let filtered: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(object) => {
                        let filtered = filter_object(object);
                        (filtered.is_empty() == object.is_empty()).then_some(Value::Object(filtered))
                    }
                    other => Some(other.clone()),
                })
                .collect();
            (filtered.is_empty() == items.is_empty()).then_some(Value::Array(filtered))
        }
        other => Some(other.clone()),
    }
}

/// Whether a parameter value names anything at all (`""` and `" , "` do not).
fn has_names(list: &str) -> bool {
    list.split(',').any(|name| !name.trim().is_empty())
}

/// Parses and resolves every name of a parameter; unknown ones are left out.
fn parse_list(list: &str, schema: &ResourceSchema) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(target) = resolve_name(name, schema)?
            && !targets.contains(&target)
        {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// One name of a parameter: a bare schema URN, or an attribute path resolved against `schema`.
/// `Ok(None)` for well-formed names the resource type does not have.
fn resolve_name(name: &str, schema: &ResourceSchema) -> Result<Option<Target>> {
    if let Some(id) = schema.schema_ids().find(|id| id.eq_ignore_ascii_case(name)) {
        return Ok(Some(Target::Schema(id.to_owned())));
    }
    let path = parse_path(name)?;
    let resolved = match schema.resolve(&path) {
        Ok(resolved) => resolved,
        // `id`, `externalId` and `meta` belong to no schema, but clients qualify them with the core URN too.
        Err(_)
            if path
                .urn
                .as_deref()
                .is_some_and(|urn| urn.eq_ignore_ascii_case(&schema.core.id)) =>
        {
            let unqualified = AttrPath {
                urn: None,
                ..path.clone()
            };
            match schema.resolve(&unqualified) {
                Ok(resolved) => resolved,
                Err(_) => return Ok(None),
            }
        }
        Err(_) => return Ok(None),
    };
    Ok(Some(Target::Attr {
        container: resolved.container().map(str::to_owned),
        attr: resolved.attr.name.clone(),
        sub: resolved.sub.map(|s| s.name.clone()),
    }))
}

/// Splits `[URN ":"] attr ["." sub]`. The URN is everything up to the last `:`, so the dots in
/// `…:2.0:User` are never taken for a sub-attribute separator.
fn parse_path(name: &str) -> Result<AttrPath> {
    let malformed = |why: &str| {
        Error::scim(
            ScimErrorType::InvalidValue,
            format!("'{name}' is not a valid attribute name: {why}"),
        )
    };
    let (urn, rest) = match name.rsplit_once(':') {
        Some((urn, rest)) => {
            if !urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
                return Err(malformed("only a schema URN may contain ':'"));
            }
            (Some(urn.to_owned()), rest)
        }
        None => (None, name),
    };
    let mut parts = rest.split('.');
    let attr = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(malformed("at most one sub-attribute may follow the attribute"));
    }
    for part in std::iter::once(attr).chain(sub) {
        if !valid_attr_name(part) {
            return Err(malformed(
                "names start with a letter and contain letters, digits, '_' or '-' ($ref aside)",
            ));
        }
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// RFC 7643 §2.1 ATTRNAME (`ALPHA *(nameChar)`), or `$ref`.
fn valid_attr_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{group_resource_schema, user_resource_schema_with};
    use crate::schema::{ENTERPRISE_USER_SCHEMA, Mutability, PROVISIO_USER_SCHEMA, Schema, USER_SCHEMA, Uniqueness};
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;
    const PRO: &str = PROVISIO_USER_SCHEMA;

    /// Users with a custom extension of a string `badge` and a multi-valued string `languages`.
    fn users() -> ResourceSchema {
        let def = |name: &str, multi_valued| AttributeDef {
            name: name.into(),
            kind: AttrType::String,
            multi_valued,
            description: name.into(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        };
        user_resource_schema_with([Schema {
            id: PRO.to_owned(),
            name: "ProvisioUser".to_owned(),
            description: "Custom attributes".to_owned(),
            attributes: vec![def("badge", false), def("languages", true)],
        }])
        .unwrap()
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENT, PRO],
            "id": "2819c223",
            "externalId": "701984",
            "userName": "bjensen",
            "password": "t1meMa$heen",
            "name": { "givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara Jensen" },
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "value": "babs@jensen.org", "type": "home" }
            ],
            "groups": [{ "value": "e9e30dba", "display": "Tour Guides" }],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "location": "https://example.com/v2/Users/2819c223",
                "version": "W/\"a330bc54f0671c9\""
            },
            ENT: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": { "value": "26118915", "displayName": "John Smith" }
            },
            PRO: { "badge": "gold", "languages": ["en", "de"] }
        })
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let schema = users();
        Projection::parse(attributes, excluded, &schema)
            .unwrap()
            .apply(&user(), &schema)
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn default_drops_only_never_returned_attributes() {
        let schema = users();
        let out = Projection::default().apply(&user(), &schema);
        let mut expected = user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(out, expected);
        assert!(Projection::default().is_default());
        assert!(Projection::parse(None, None, &schema).unwrap().is_default());
        assert!(Projection::parse(Some(""), Some(" , "), &schema).unwrap().is_default());
    }

    #[test]
    fn attributes_keeps_named_and_always_returned() {
        let out = project(Some("userName"), None);
        assert_eq!(
            out,
            json!({ "schemas": [USER_SCHEMA], "id": "2819c223", "userName": "bjensen" })
        );
    }

    #[test]
    fn attributes_ignores_case_and_whitespace() {
        let out = project(Some(" USERNAME ,displayname "), None);
        assert_eq!(keys(&out), vec!["displayName", "id", "schemas", "userName"]);
    }

    #[test]
    fn attributes_with_a_sub_attribute_of_a_complex_attribute() {
        let out = project(Some("name.givenName"), None);
        assert_eq!(out["name"], json!({ "givenName": "Barbara" }));
        assert_eq!(keys(&out), vec!["id", "name", "schemas"]);
    }

    #[test]
    fn attributes_with_a_sub_attribute_of_a_multi_valued_attribute() {
        let out = project(Some("emails.value"), None);
        assert_eq!(
            out["emails"],
            json!([{ "value": "bjensen@example.com" }, { "value": "babs@jensen.org" }])
        );
        let out = project(Some("emails.primary"), None);
        // Elements without the sub-attribute disappear instead of becoming `{}`.
        assert_eq!(out["emails"], json!([{ "primary": true }]));
        let out = project(Some("emails.display"), None);
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn naming_the_parent_keeps_all_its_default_sub_attributes() {
        let out = project(Some("emails,emails.value"), None);
        assert_eq!(out["emails"], user()["emails"]);
        let out = project(Some("name"), None);
        assert_eq!(out["name"], user()["name"]);
    }

    #[test]
    fn never_returned_even_when_asked() {
        let out = project(Some("password,userName"), None);
        assert!(out.get("password").is_none());
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn extension_attributes_by_urn() {
        let out = project(Some(&format!("{ENT}:manager")), None);
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENT],
                "id": "2819c223",
                ENT: { "manager": { "value": "26118915", "displayName": "John Smith" } }
            })
        );
        let out = project(Some(&format!("{ENT}:manager.value,{PRO}:languages")), None);
        assert_eq!(out[ENT], json!({ "manager": { "value": "26118915" } }));
        assert_eq!(out[PRO], json!({ "languages": ["en", "de"] }));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENT, PRO]));
    }

    #[test]
    fn extension_urn_matching_ignores_case() {
        let out = project(Some(&format!("{}:EMPLOYEENUMBER", ENT.to_uppercase())), None);
        assert_eq!(out[ENT], json!({ "employeeNumber": "701984" }));
        // Keys in the resource match regardless of case, too.
        let schema = users();
        let resource = json!({ "id": "1", "USERNAME": "x", ENT.to_lowercase(): { "Department": "Ops" } });
        let out = Projection::parse(Some(&format!("userName,{ENT}:department")), None, &schema)
            .unwrap()
            .apply(&resource, &schema);
        assert_eq!(out, resource);
    }

    #[test]
    fn a_bare_schema_urn_selects_the_whole_schema() {
        let out = project(Some(ENT), None);
        assert_eq!(out[ENT], user()[ENT]);
        assert_eq!(keys(&out), vec!["id", "schemas", ENT]);
        let out = project(None, Some(ENT));
        assert!(out.get(ENT).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA, PRO]));
        let out = project(Some(USER_SCHEMA), None);
        assert!(out.get("userName").is_some() && out.get("emails").is_some() && out.get("meta").is_some());
        assert!(out.get(ENT).is_none() && out.get("password").is_none());
    }

    #[test]
    fn core_attributes_may_carry_the_core_urn() {
        let out = project(
            Some(&format!("{USER_SCHEMA}:userName,{USER_SCHEMA}:name.familyName")),
            None,
        );
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(out["name"], json!({ "familyName": "Jensen" }));
        let out = project(Some(&format!("{USER_SCHEMA}:meta.version")), None);
        assert_eq!(out["meta"], json!({ "version": "W/\"a330bc54f0671c9\"" }));
    }

    #[test]
    fn meta_is_a_default_attribute_with_sub_attributes() {
        let out = project(Some("meta.location"), None);
        assert_eq!(
            out["meta"],
            json!({ "location": "https://example.com/v2/Users/2819c223" })
        );
        let out = project(Some("userName"), None);
        assert!(out.get("meta").is_none());
        let out = project(None, Some("meta.version,meta.created"));
        assert_eq!(keys(&out["meta"]), vec!["location", "resourceType"]);
        let out = project(None, Some("meta"));
        assert!(out.get("meta").is_none());
    }

    #[test]
    fn excluded_attributes_removes_named_only() {
        let out = project(None, Some("emails, name.formatted, externalId"));
        assert!(out.get("emails").is_none());
        assert!(out.get("externalId").is_none());
        assert!(out.get("password").is_none());
        assert_eq!(out["name"], json!({ "givenName": "Barbara", "familyName": "Jensen" }));
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(out[ENT], user()[ENT]);
    }

    #[test]
    fn excluded_sub_attribute_of_a_multi_valued_attribute() {
        let out = project(None, Some("emails.type,emails.primary"));
        assert_eq!(
            out["emails"],
            json!([{ "value": "bjensen@example.com" }, { "value": "babs@jensen.org" }])
        );
    }

    #[test]
    fn always_returned_cannot_be_excluded() {
        let out = project(None, Some("id,userName,schemas"));
        assert_eq!(out["id"], "2819c223");
        assert!(out.get("schemas").is_some());
        assert!(out.get("userName").is_none());
    }

    #[test]
    fn an_emptied_extension_disappears_from_the_resource_and_from_schemas() {
        let out = project(None, Some(&format!("{PRO}:badge,{PRO}:languages")));
        assert!(out.get(PRO).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENT]));
        let out = project(None, Some(&format!("{PRO}:badge")));
        assert_eq!(out[PRO], json!({ "languages": ["en", "de"] }));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENT, PRO]));
    }

    #[test]
    fn attributes_wins_over_excluded_attributes() {
        let out = project(Some("userName"), Some("userName"));
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(keys(&out), vec!["id", "schemas", "userName"]);
        // An empty `attributes` counts as absent, so `excludedAttributes` applies.
        let out = project(Some(" "), Some("userName"));
        assert!(out.get("userName").is_none());
        assert!(out.get("emails").is_some());
    }

    #[test]
    fn unknown_names_are_ignored() {
        let out = project(
            Some("userName,nickname2,name.nothing,urn:example:params:x:User:foo"),
            None,
        );
        assert_eq!(keys(&out), vec!["id", "schemas", "userName"]);
        let out = project(Some(&format!("{ENT}:unknown")), None);
        assert_eq!(keys(&out), vec!["id", "schemas"]);
        let out = project(None, Some("bogus"));
        let mut expected = user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(out, expected);
    }

    #[test]
    fn malformed_names_are_invalid_values() {
        let schema = users();
        for bad in [
            "name.givenName.x",
            "emails[type eq \"work\"]",
            "user name",
            "1st",
            "name.",
            ".value",
            "foo:bar",
            "urn:ietf:params:scim:schemas:core:2.0:User:",
        ] {
            let err = Projection::parse(Some(bad), None, &schema).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Scim {
                        scim_type: ScimErrorType::InvalidValue,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert!(Projection::parse(None, Some(bad), &schema).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_outside_the_schema() {
        let schema = users();
        let resource = json!({ "id": "1", "userName": "x", "x-note": "kept by default" });
        let out = Projection::default().apply(&resource, &schema);
        assert_eq!(out, resource);
        let out = Projection::parse(Some("userName"), None, &schema)
            .unwrap()
            .apply(&resource, &schema);
        assert_eq!(out, json!({ "id": "1", "userName": "x" }));
        assert_eq!(Projection::default().apply(&json!("text"), &schema), json!("text"));
    }

    #[test]
    fn group_members() {
        let schema = group_resource_schema().unwrap();
        let group = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba",
            "displayName": "Tour Guides",
            "members": [
                { "value": "2819c223", "$ref": "https://example.com/v2/Users/2819c223", "display": "Babs", "type": "User" },
                { "value": "902c246b", "$ref": "https://example.com/v2/Users/902c246b", "display": "Mandy", "type": "User" }
            ],
            "meta": { "resourceType": "Group" }
        });
        let by = |a: Option<&str>, e: Option<&str>| Projection::parse(a, e, &schema).unwrap().apply(&group, &schema);
        assert_eq!(by(None, None), group);
        let out = by(Some("displayName"), None);
        assert_eq!(keys(&out), vec!["displayName", "id", "schemas"]);
        let out = by(None, Some("members"));
        assert_eq!(keys(&out), vec!["displayName", "id", "meta", "schemas"]);
        let out = by(Some("members.value,members.$REF"), None);
        assert_eq!(
            out["members"],
            json!([
                { "value": "2819c223", "$ref": "https://example.com/v2/Users/2819c223" },
                { "value": "902c246b", "$ref": "https://example.com/v2/Users/902c246b" }
            ])
        );
    }

    /// A schema exercising `returned: request` and `returned: always` sub-attributes, which the
    /// RFC schemas do not use.
    fn custom_returned_schema() -> ResourceSchema {
        let mut schema = group_resource_schema().unwrap();
        let display_name = schema
            .core
            .attributes
            .iter_mut()
            .find(|a| a.name == "displayName")
            .unwrap();
        display_name.returned = Returned::Request;
        let members = schema.core.attributes.iter_mut().find(|a| a.name == "members").unwrap();
        for sub in &mut members.sub_attributes {
            match sub.name.as_str() {
                "value" => sub.returned = Returned::Always,
                "display" => sub.returned = Returned::Request,
                _ => {}
            }
        }
        schema
    }

    #[test]
    fn returned_request_and_always_sub_attributes() {
        let schema = custom_returned_schema();
        let group = json!({
            "id": "g",
            "displayName": "Ops",
            "members": [{ "value": "u1", "display": "Ann", "type": "User" }]
        });
        let by = |a: Option<&str>, e: Option<&str>| Projection::parse(a, e, &schema).unwrap().apply(&group, &schema);
        // Request-only attributes and sub-attributes stay out unless named.
        assert_eq!(
            by(None, None),
            json!({ "id": "g", "members": [{ "value": "u1", "type": "User" }] })
        );
        assert_eq!(
            by(None, Some("members.type")),
            json!({ "id": "g", "members": [{ "value": "u1" }] })
        );
        assert_eq!(by(Some("displayName"), None)["displayName"], "Ops");
        // A sub-attribute returned always comes along even when its parent is not named.
        assert_eq!(by(Some("displayName"), None)["members"], json!([{ "value": "u1" }]));
        assert_eq!(
            by(Some("members.display"), None)["members"],
            json!([{ "value": "u1", "display": "Ann" }])
        );
        assert_eq!(
            by(Some("members,members.display"), None)["members"],
            json!([{ "value": "u1", "display": "Ann", "type": "User" }])
        );
        // And cannot be excluded.
        assert_eq!(
            by(None, Some("members.value"))["members"],
            json!([{ "value": "u1", "type": "User" }])
        );
    }

    #[test]
    fn parse_path_keeps_urn_dots() {
        let path = parse_path(&format!("{ENT}:manager.value")).unwrap();
        assert_eq!(path.urn.as_deref(), Some(ENT));
        assert_eq!(path.attr, "manager");
        assert_eq!(path.sub.as_deref(), Some("value"));
        let path = parse_path("members.$ref").unwrap();
        assert_eq!(
            path,
            AttrPath {
                urn: None,
                attr: "members".into(),
                sub: Some("$ref".into())
            }
        );
    }
}
