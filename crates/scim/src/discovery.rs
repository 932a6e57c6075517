//! SCIM discovery (RFC 7643 §5–§7, RFC 7644 §4): the built-in resource schemas and the JSON
//! documents of `/Schemas` and `/ResourceTypes`, plus the list response envelope of RFC 7644
//! §3.4.2.
//!
//! The core User, core Group and enterprise User schemas are data (`schemas/*.json`, the RFC 7643
//! §8.7.1 definitions with its verified errata applied), embedded at build time and parsed once.
//! Further User extensions (the hub's custom attributes) are passed in by the caller, so that
//! `/Schemas` follows an administrator adding or removing one.

use crate::error::{Error, Result};
use crate::schema::{ENTERPRISE_USER_SCHEMA, Extension, GROUP_SCHEMA, ResourceSchema, Schema, USER_SCHEMA};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// URN of a schema definition document (RFC 7643 §7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// URN of a resource type document (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// URN of the service provider configuration document (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// URN of a list response (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

const USER_JSON: &str = include_str!("../schemas/user.json");
const GROUP_JSON: &str = include_str!("../schemas/group.json");
const ENTERPRISE_USER_JSON: &str = include_str!("../schemas/enterprise_user.json");

/// The schemas shipped as data.
struct BuiltIn {
    user: Schema,
    group: Schema,
    enterprise_user: Schema,
}

/// Parses the embedded schemas on first use. A failure (which the unit tests rule out) is kept and
/// reported as [`Error::Schema`] on every call rather than panicking.
fn built_in() -> Result<&'static BuiltIn> {
    static BUILT_IN: OnceLock<Result<BuiltIn, String>> = OnceLock::new();
    let parsed = BUILT_IN.get_or_init(|| {
        Ok(BuiltIn {
            user: parse_schema("schemas/user.json", USER_JSON, USER_SCHEMA)?,
            group: parse_schema("schemas/group.json", GROUP_JSON, GROUP_SCHEMA)?,
            enterprise_user: parse_schema(
                "schemas/enterprise_user.json",
                ENTERPRISE_USER_JSON,
                ENTERPRISE_USER_SCHEMA,
            )?,
        })
    });
    parsed.as_ref().map_err(|message| Error::Schema(message.clone()))
}

fn parse_schema(file: &str, text: &str, expected_id: &str) -> Result<Schema, String> {
    let schema: Schema = serde_json::from_str(text).map_err(|e| format!("{file} is not a valid SCIM schema: {e}"))?;
    if schema.id != expected_id {
        return Err(format!("{file} defines '{}' instead of '{expected_id}'", schema.id));
    }
    Ok(schema)
}

/// The core User schema (RFC 7643 §4.1).
pub fn user_schema() -> Result<&'static Schema> {
    Ok(&built_in()?.user)
}

/// The core Group schema (RFC 7643 §4.2).
pub fn group_schema() -> Result<&'static Schema> {
    Ok(&built_in()?.group)
}

/// The enterprise User extension schema (RFC 7643 §4.3).
pub fn enterprise_user_schema() -> Result<&'static Schema> {
    Ok(&built_in()?.enterprise_user)
}

/// The User resource type: core User at `/Users` with the enterprise extension and each schema of
/// `extensions` that has attributes (none of them required). An extension without attributes is
/// not advertised: a client could only write an empty object to it.
pub fn user_resource_schema_with(extensions: impl IntoIterator<Item = Schema>) -> Result<ResourceSchema> {
    let built_in = built_in()?;
    let extensions = std::iter::once(built_in.enterprise_user.clone())
        .chain(extensions.into_iter().filter(|schema| !schema.attributes.is_empty()))
        .map(|schema| Extension {
            schema,
            required: false,
        })
        .collect();
    Ok(ResourceSchema {
        name: "User".to_owned(),
        endpoint: "/Users".to_owned(),
        core: built_in.user.clone(),
        extensions,
    })
}

/// The Group resource type: core Group at `/Groups`, without extensions.
pub fn group_resource_schema() -> Result<ResourceSchema> {
    Ok(ResourceSchema {
        name: "Group".to_owned(),
        endpoint: "/Groups".to_owned(),
        core: built_in()?.group.clone(),
        extensions: Vec::new(),
    })
}

/// `base_url` without a trailing slash, so locations never contain `//`.
fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The RFC 7643 §7 document of `schema`, as served at `{base_url}/Schemas/{id}`.
pub fn schema_document(schema: &Schema, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(base_url), schema.id),
        },
    })
}

/// The RFC 7643 §6 document of a resource type, as served at `{base_url}/ResourceTypes/{name}`.
/// `schemaExtensions` is left out when the type has none.
pub fn resource_type_document(rs: &ResourceSchema, base_url: &str) -> Value {
    let mut document = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rs.name,
        "name": rs.name,
        "endpoint": rs.endpoint,
        "description": rs.core.description,
        "schema": rs.core.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base(base_url), rs.name),
        },
    });
    if !rs.extensions.is_empty()
        && let Value::Object(map) = &mut document
    {
        let extensions = rs
            .extensions
            .iter()
            .map(|e| json!({ "schema": e.schema.id, "required": e.required }))
            .collect();
        map.insert("schemaExtensions".to_owned(), Value::Array(extensions));
    }
    document
}

/// The RFC 7644 §3.4.2 list response: `total` matches in all, `resources` the page starting at the
/// 1-based `start_index`; `itemsPerPage` is the number of resources on this page.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::AttrPath;
    use crate::schema::{AttrType, AttributeDef, Mutability, PROVISIO_USER_SCHEMA, Returned, Uniqueness};

    fn path(text: &str) -> AttrPath {
        let (attr, sub) = match text.split_once('.') {
            Some((a, s)) => (a, Some(s.to_owned())),
            None => (text, None),
        };
        AttrPath {
            urn: None,
            attr: attr.to_owned(),
            sub,
        }
    }

    /// Every attribute and sub-attribute, depth first.
    fn walk(attrs: &[AttributeDef], out: &mut Vec<AttributeDef>) {
        for a in attrs {
            out.push(a.clone());
            walk(&a.sub_attributes, out);
        }
    }

    #[test]
    fn embedded_schemas_parse() {
        for parsed in [user_schema(), group_schema(), enterprise_user_schema()] {
            let schema = parsed.unwrap();
            assert!(!schema.attributes.is_empty());
            let mut all = Vec::new();
            walk(&schema.attributes, &mut all);
            for a in &all {
                assert!(!a.description.is_empty(), "{} has no description", a.name);
                assert_eq!(a.kind == AttrType::Complex, !a.sub_attributes.is_empty(), "{}", a.name);
            }
        }
        // The files parse as plain JSON with the fields every client expects, not only through serde defaults.
        for text in [USER_JSON, GROUP_JSON, ENTERPRISE_USER_JSON] {
            let value: Value = serde_json::from_str(text).unwrap();
            for attr in value["attributes"].as_array().unwrap() {
                for key in [
                    "name",
                    "type",
                    "multiValued",
                    "description",
                    "required",
                    "caseExact",
                    "mutability",
                    "returned",
                    "uniqueness",
                ] {
                    assert!(attr.get(key).is_some(), "{} lacks {key}", attr["name"]);
                }
            }
        }
    }

    #[test]
    fn common_attributes_are_not_in_the_data() {
        for schema in [
            user_schema().unwrap(),
            group_schema().unwrap(),
            enterprise_user_schema().unwrap(),
        ] {
            for name in ["id", "externalId", "meta", "schemas"] {
                assert!(schema.attribute(name).is_none(), "{} defines {name}", schema.id);
            }
        }
    }

    #[test]
    fn user_schema_characteristics() {
        let user = user_schema().unwrap();
        let names: Vec<&str> = user.attributes.iter().map(|a| a.name.as_str()).collect();
        for expected in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(names.contains(&expected), "missing {expected}");
        }

        let user_name = user.attribute("username").unwrap();
        assert!(user_name.required);
        assert!(!user_name.case_exact);
        assert_eq!(user_name.uniqueness, Uniqueness::Server);
        assert_eq!(user_name.mutability, Mutability::ReadWrite);

        let password = user.attribute("password").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);

        let groups = user.attribute("groups").unwrap();
        assert!(groups.multi_valued);
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        assert!(
            groups
                .sub_attributes
                .iter()
                .all(|s| s.mutability == Mutability::ReadOnly)
        );
        assert_eq!(groups.sub("$ref").unwrap().reference_types, vec!["Group"]);
        assert_eq!(groups.sub("type").unwrap().canonical_values, vec!["direct", "indirect"]);

        let emails = user.attribute("emails").unwrap();
        assert!(emails.multi_valued);
        assert_eq!(
            emails.sub("type").unwrap().canonical_values,
            vec!["work", "home", "other"]
        );
        assert_eq!(emails.sub("primary").unwrap().kind, AttrType::Boolean);

        let photos = user.attribute("photos").unwrap();
        assert_eq!(photos.sub("value").unwrap().kind, AttrType::Reference);
        assert_eq!(photos.sub("value").unwrap().reference_types, vec!["external"]);

        let certificates = user.attribute("x509Certificates").unwrap();
        assert_eq!(certificates.sub("value").unwrap().kind, AttrType::Binary);

        assert_eq!(user.attribute("active").unwrap().kind, AttrType::Boolean);
        assert!(user.attribute("addresses").unwrap().sub("primary").is_some());
        assert!(!user.attribute("name").unwrap().multi_valued);
    }

    #[test]
    fn group_schema_characteristics() {
        let group = group_schema().unwrap();
        let display_name = group.attribute("displayName").unwrap();
        assert!(display_name.required);
        let members = group.attribute("members").unwrap();
        assert!(members.multi_valued);
        assert_eq!(members.mutability, Mutability::ReadWrite);
        assert_eq!(members.sub("value").unwrap().mutability, Mutability::Immutable);
        let reference = members.sub("$ref").unwrap();
        assert_eq!(reference.kind, AttrType::Reference);
        assert_eq!(reference.mutability, Mutability::Immutable);
        assert_eq!(reference.reference_types, vec!["User", "Group"]);
        assert_eq!(members.sub("display").unwrap().mutability, Mutability::ReadOnly);
        let kind = members.sub("type").unwrap();
        assert_eq!(kind.mutability, Mutability::Immutable);
        assert_eq!(kind.canonical_values, vec!["User", "Group"]);
    }

    #[test]
    fn enterprise_schema_characteristics() {
        let enterprise = enterprise_user_schema().unwrap();
        for name in ["employeeNumber", "costCenter", "organization", "division", "department"] {
            let a = enterprise.attribute(name).unwrap();
            assert_eq!(a.kind, AttrType::String);
            assert_eq!(a.mutability, Mutability::ReadWrite);
        }
        let manager = enterprise.attribute("manager").unwrap();
        assert_eq!(manager.kind, AttrType::Complex);
        assert!(!manager.multi_valued);
        assert_eq!(manager.sub("$ref").unwrap().reference_types, vec!["User"]);
        assert_eq!(manager.sub("displayName").unwrap().mutability, Mutability::ReadOnly);
        assert_eq!(manager.sub("value").unwrap().mutability, Mutability::ReadWrite);
    }

    /// A User extension with one string attribute per name, as the hub builds from custom attributes.
    fn extension(names: &[&str]) -> Schema {
        Schema {
            id: PROVISIO_USER_SCHEMA.to_owned(),
            name: "ProvisioUser".to_owned(),
            description: "Custom attributes".to_owned(),
            attributes: names
                .iter()
                .map(|name| AttributeDef {
                    name: (*name).to_owned(),
                    kind: AttrType::String,
                    multi_valued: false,
                    description: format!("{name} label"),
                    required: false,
                    case_exact: false,
                    mutability: Mutability::ReadWrite,
                    returned: Returned::Default,
                    uniqueness: Uniqueness::None,
                    canonical_values: Vec::new(),
                    reference_types: Vec::new(),
                    sub_attributes: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn user_resource_schema_carries_the_given_extensions() {
        let rs = user_resource_schema_with([extension(&["badge"])]).unwrap();
        assert_eq!(rs.name, "User");
        assert_eq!(rs.endpoint, "/Users");
        assert_eq!(rs.core.id, USER_SCHEMA);
        let ids: Vec<&str> = rs.schema_ids().collect();
        assert_eq!(ids, vec![USER_SCHEMA, ENTERPRISE_USER_SCHEMA, PROVISIO_USER_SCHEMA]);
        assert!(rs.extensions.iter().all(|e| !e.required));
        // Extension attributes resolve with their URN.
        let resolved = rs
            .resolve(&AttrPath {
                urn: Some(PROVISIO_USER_SCHEMA.into()),
                attr: "BADGE".into(),
                sub: None,
            })
            .unwrap();
        assert!(resolved.in_extension);
        assert_eq!(resolved.attr.name, "badge");
        assert!(rs.resolve(&path("name.givenName")).is_ok());
        assert!(rs.resolve(&path("emails.value")).is_ok());
    }

    #[test]
    fn an_extension_without_attributes_is_not_advertised() {
        let rs = user_resource_schema_with([extension(&[])]).unwrap();
        assert!(rs.extension(PROVISIO_USER_SCHEMA).is_none());
        let ids: Vec<&str> = rs.schema_ids().collect();
        assert_eq!(ids, vec![USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        assert_eq!(user_resource_schema_with([]).unwrap(), rs);
    }

    #[test]
    fn group_resource_schema_has_no_extensions() {
        let rs = group_resource_schema().unwrap();
        assert_eq!(rs.name, "Group");
        assert_eq!(rs.endpoint, "/Groups");
        assert_eq!(rs.core.id, GROUP_SCHEMA);
        assert!(rs.extensions.is_empty());
        assert!(rs.resolve(&path("members.value")).is_ok());
    }

    #[test]
    fn schema_document_follows_rfc_7643_section_7() {
        let doc = schema_document(group_schema().unwrap(), "https://hub.example.com/scim/v2/");
        assert_eq!(doc["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(doc["id"], GROUP_SCHEMA);
        assert_eq!(doc["name"], "Group");
        assert_eq!(doc["meta"]["resourceType"], "Schema");
        assert_eq!(
            doc["meta"]["location"],
            format!("https://hub.example.com/scim/v2/Schemas/{GROUP_SCHEMA}")
        );
        let members = &doc["attributes"][1];
        assert_eq!(members["name"], "members");
        assert_eq!(members["type"], "complex");
        assert_eq!(members["multiValued"], true);
        assert_eq!(members["subAttributes"][1]["name"], "$ref");
        assert_eq!(members["subAttributes"][1]["referenceTypes"], json!(["User", "Group"]));
        assert_eq!(members["subAttributes"][0]["mutability"], "immutable");
        // The document round-trips into the model.
        let back: Schema = serde_json::from_value(doc).unwrap();
        assert_eq!(&back, group_schema().unwrap());
    }

    #[test]
    fn resource_type_documents() {
        let user = resource_type_document(
            &user_resource_schema_with([extension(&["title"])]).unwrap(),
            "https://h.example/scim/v2",
        );
        assert_eq!(user["schemas"], json!([RESOURCE_TYPE_SCHEMA]));
        assert_eq!(user["id"], "User");
        assert_eq!(user["name"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["schemaExtensions"],
            json!([
                { "schema": ENTERPRISE_USER_SCHEMA, "required": false },
                { "schema": PROVISIO_USER_SCHEMA, "required": false },
            ])
        );
        assert_eq!(user["meta"]["resourceType"], "ResourceType");
        assert_eq!(user["meta"]["location"], "https://h.example/scim/v2/ResourceTypes/User");
        assert!(user["description"].as_str().is_some_and(|d| !d.is_empty()));

        let group = resource_type_document(&group_resource_schema().unwrap(), "https://h.example/scim/v2");
        assert_eq!(group["endpoint"], "/Groups");
        assert_eq!(group["schema"], GROUP_SCHEMA);
        assert!(group.get("schemaExtensions").is_none());
        assert_eq!(
            group["meta"]["location"],
            "https://h.example/scim/v2/ResourceTypes/Group"
        );
    }

    #[test]
    fn list_response_envelope() {
        let doc = list_response(vec![json!({ "id": "a" }), json!({ "id": "b" })], 12, 3);
        assert_eq!(
            doc,
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 12,
                "startIndex": 3,
                "itemsPerPage": 2,
                "Resources": [{ "id": "a" }, { "id": "b" }],
            })
        );
        let empty = list_response(Vec::new(), 0, 1);
        assert_eq!(empty["itemsPerPage"], 0);
        assert_eq!(empty["Resources"], json!([]));
    }

    #[test]
    fn a_broken_schema_file_is_an_error_not_a_panic() {
        assert!(parse_schema("x.json", "{", USER_SCHEMA).is_err());
        assert!(parse_schema("group.json", GROUP_JSON, USER_SCHEMA).is_err());
        assert!(parse_schema("user.json", USER_JSON, USER_SCHEMA).is_ok());
    }
}
