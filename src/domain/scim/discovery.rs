//! SCIM discovery as the hub serves it: the protocol's documents and built-in schemas come from
//! [`provisio_scim::discovery`] (re-exported here), and this module adds what needs the hub's
//! own types: the Provisio User extension built from the directory's custom attribute definitions
//! on every call (so `/Schemas` follows an administrator adding or removing one), the User
//! resource type and schema list that carry it, and the hub's `/ServiceProviderConfig`.

pub use provisio_scim::discovery::*;

use crate::domain::attribute::{AttributeDefinition, AttributeType};
use crate::domain::error::Result;
use provisio_scim::schema::{
    AttrType, AttributeDef, Mutability, PROVISIO_USER_SCHEMA, ResourceSchema, Returned, Schema, Uniqueness,
};
use serde_json::{Value, json};

/// The Provisio User extension: one attribute per custom attribute definition, named like it.
/// `string_list` becomes a multi-valued string; every attribute is read-write, returned by default,
/// not unique and compared without regard to case.
pub fn provisio_user_schema(custom: &[AttributeDefinition]) -> Schema {
    Schema {
        id: PROVISIO_USER_SCHEMA.to_owned(),
        name: "ProvisioUser".to_owned(),
        description: "Custom profile attributes defined in this Provisio directory".to_owned(),
        attributes: custom.iter().map(custom_attribute).collect(),
    }
}

fn custom_attribute(definition: &AttributeDefinition) -> AttributeDef {
    let (kind, multi_valued) = match definition.kind {
        AttributeType::String => (AttrType::String, false),
        AttributeType::Boolean => (AttrType::Boolean, false),
        AttributeType::Integer => (AttrType::Integer, false),
        AttributeType::Datetime => (AttrType::DateTime, false),
        AttributeType::StringList => (AttrType::String, true),
    };
    let description = definition
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&definition.display_name);
    AttributeDef {
        name: definition.name.clone(),
        kind,
        multi_valued,
        description: description.to_owned(),
        required: definition.required,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: Vec::new(),
        reference_types: Vec::new(),
        sub_attributes: Vec::new(),
    }
}

/// The User resource type: core User at `/Users` with the enterprise extension and, once the
/// administrator has defined custom attributes, the Provisio extension built from `custom`
/// (neither required).
pub fn user_resource_schema(custom: &[AttributeDefinition]) -> Result<ResourceSchema> {
    Ok(user_resource_schema_with([provisio_user_schema(custom)])?)
}

/// Every schema `/Schemas` lists: core User, enterprise User, Provisio User (from `custom`), core Group.
pub fn all_schemas(custom: &[AttributeDefinition]) -> Result<Vec<Schema>> {
    let user = user_resource_schema(custom)?;
    let group = group_resource_schema()?;
    Ok(std::iter::once(user.core)
        .chain(user.extensions.into_iter().map(|e| e.schema))
        .chain(std::iter::once(group.core))
        .collect())
}

/// The limits `/ServiceProviderConfig` advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceProviderLimits {
    /// Most operations one bulk request may carry.
    pub max_operations: usize,
    /// Largest bulk request body, in bytes.
    pub max_payload_size: usize,
    /// Most resources one query returns.
    pub max_results: usize,
}

/// The RFC 7643 §5 service provider configuration: PATCH, bulk, filtering, sorting and ETags
/// supported, password change not, OAuth bearer tokens as the one authentication scheme.
pub fn service_provider_config(limits: &ServiceProviderLimits, base_url: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": { "supported": true },
        "bulk": {
            "supported": true,
            "maxOperations": limits.max_operations,
            "maxPayloadSize": limits.max_payload_size,
        },
        "filter": { "supported": true, "maxResults": limits.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A Provisio API token sent as 'Authorization: Bearer <token>'.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base_url.trim_end_matches('/')),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisio_scim::ast::AttrPath;
    use provisio_scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use time::OffsetDateTime;

    fn custom(name: &str, kind: AttributeType, required: bool, description: Option<&str>) -> AttributeDefinition {
        AttributeDefinition {
            name: name.into(),
            display_name: format!("{name} label"),
            kind,
            required,
            description: description.map(Into::into),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

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

    #[test]
    fn user_resource_schema_carries_the_custom_attributes() {
        let defs = [
            custom("title2", AttributeType::String, true, Some("Job title, second form")),
            custom("badges", AttributeType::StringList, false, None),
            custom("onsite", AttributeType::Boolean, false, Some("  ")),
            custom("level", AttributeType::Integer, false, None),
            custom("hired", AttributeType::Datetime, false, None),
        ];
        let rs = user_resource_schema(&defs).unwrap();
        assert_eq!(rs.name, "User");
        assert_eq!(rs.endpoint, "/Users");
        assert_eq!(rs.core.id, USER_SCHEMA);
        let ids: Vec<&str> = rs.schema_ids().collect();
        assert_eq!(ids, vec![USER_SCHEMA, ENTERPRISE_USER_SCHEMA, PROVISIO_USER_SCHEMA]);
        assert!(rs.extensions.iter().all(|e| !e.required));

        let provisio = &rs.extension(PROVISIO_USER_SCHEMA).unwrap().schema;
        assert_eq!(provisio.attributes.len(), 5);
        let title = provisio.attribute("title2").unwrap();
        assert_eq!(title.kind, AttrType::String);
        assert!(title.required);
        assert!(!title.case_exact);
        assert_eq!(title.mutability, Mutability::ReadWrite);
        assert_eq!(title.returned, Returned::Default);
        assert_eq!(title.uniqueness, Uniqueness::None);
        assert_eq!(title.description, "Job title, second form");
        let badges = provisio.attribute("badges").unwrap();
        assert!(badges.multi_valued);
        assert_eq!(badges.kind, AttrType::String);
        assert_eq!(badges.description, "badges label");
        assert_eq!(provisio.attribute("onsite").unwrap().description, "onsite label");
        assert_eq!(provisio.attribute("onsite").unwrap().kind, AttrType::Boolean);
        assert_eq!(provisio.attribute("level").unwrap().kind, AttrType::Integer);
        assert_eq!(provisio.attribute("hired").unwrap().kind, AttrType::DateTime);

        // Extension attributes resolve with their URN.
        let resolved = rs
            .resolve(&AttrPath {
                urn: Some(PROVISIO_USER_SCHEMA.into()),
                attr: "BADGES".into(),
                sub: None,
            })
            .unwrap();
        assert!(resolved.in_extension);
        assert_eq!(resolved.attr.name, "badges");
        assert!(rs.resolve(&path("name.givenName")).is_ok());
        assert!(rs.resolve(&path("emails.value")).is_ok());
    }

    #[test]
    fn provisio_extension_appears_with_the_first_custom_attribute() {
        let rs = user_resource_schema(&[]).unwrap();
        assert!(rs.extension(PROVISIO_USER_SCHEMA).is_none());
        assert_eq!(all_schemas(&[]).unwrap().len(), 3);
    }

    #[test]
    fn schema_document_lists_custom_attributes() {
        let defs = [custom("badges", AttributeType::StringList, false, None)];
        let doc = schema_document(&provisio_user_schema(&defs), "https://hub.example.com/scim/v2");
        assert_eq!(doc["id"], PROVISIO_USER_SCHEMA);
        assert_eq!(
            doc["attributes"][0],
            json!({
                "name": "badges",
                "type": "string",
                "multiValued": true,
                "description": "badges label",
                "required": false,
                "caseExact": false,
                "mutability": "readWrite",
                "returned": "default",
                "uniqueness": "none",
            })
        );
    }

    #[test]
    fn service_provider_config_document() {
        let limits = ServiceProviderLimits {
            max_operations: 100,
            max_payload_size: 1_048_576,
            max_results: 200,
        };
        let doc = service_provider_config(&limits, "https://h.example/scim/v2");
        assert_eq!(doc["schemas"], json!([SERVICE_PROVIDER_CONFIG_SCHEMA]));
        assert_eq!(doc["patch"], json!({ "supported": true }));
        assert_eq!(
            doc["bulk"],
            json!({ "supported": true, "maxOperations": 100, "maxPayloadSize": 1_048_576 })
        );
        assert_eq!(doc["filter"], json!({ "supported": true, "maxResults": 200 }));
        assert_eq!(doc["changePassword"], json!({ "supported": false }));
        assert_eq!(doc["sort"], json!({ "supported": true }));
        assert_eq!(doc["etag"], json!({ "supported": true }));
        let scheme = &doc["authenticationSchemes"][0];
        assert_eq!(scheme["type"], "oauthbearertoken");
        assert_eq!(scheme["name"], "OAuth Bearer Token");
        assert_eq!(scheme["primary"], true);
        assert!(scheme["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(doc["meta"]["resourceType"], "ServiceProviderConfig");
        assert_eq!(
            doc["meta"]["location"],
            "https://h.example/scim/v2/ServiceProviderConfig"
        );
    }
}
