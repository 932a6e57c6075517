//! SCIM schemas (RFC 7643 §7): attribute definitions with their characteristics, the model of the
//! resource types the hub serves (core User with the enterprise and Provisio extensions, Group), and the
//! resolution of an attribute path against them. Everything that needs to know whether an attribute
//! is case-exact, multi-valued, read-only or a date asks here.

use crate::ast::AttrPath;
use serde::{Deserialize, Serialize};

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// URN of Provisio's User extension: the directory's custom attributes.
pub const PROVISIO_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:provisio:2.0:User";

/// An attribute's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// Text.
    String,
    /// `true` / `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An xsd:dateTime (RFC 3339) instant.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI.
    Reference,
    /// An object of sub-attributes.
    Complex,
}

/// Whether and how a client may write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// Freely writable.
    ReadWrite,
    /// Written once, at creation or when unset.
    Immutable,
    /// Written but never returned.
    WriteOnly,
}

/// When an attribute is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// In every response, even when `attributes` excludes it.
    Always,
    /// Never.
    Never,
    /// Unless excluded.
    Default,
    /// Only when asked for with `attributes`.
    Request,
}

/// Uniqueness of an attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No constraint.
    None,
    /// Unique within this service provider.
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition, in the RFC 7643 §7 JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    /// The name, e.g. `userName`.
    pub name: String,
    /// The data type.
    #[serde(rename = "type")]
    pub kind: AttrType,
    /// Whether the value is a list.
    pub multi_valued: bool,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Whether a resource must carry it.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Uniqueness of its values.
    pub uniqueness: Uniqueness,
    /// Suggested values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// For references: what they may point to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// For complex attributes: the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    /// The sub-attribute called `name`, regardless of case.
    pub fn sub(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema: an id (URN) and its attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The URN.
    pub id: String,
    /// A short name.
    pub name: String,
    /// What it describes.
    #[serde(default)]
    pub description: String,
    /// The attributes.
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    /// The attribute called `name`, regardless of case.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// An extension a resource type carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    /// The extension schema.
    pub schema: Schema,
    /// Whether every resource must carry it.
    pub required: bool,
}

/// A resource type as served: its endpoint, core schema and extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSchema {
    /// `User` or `Group`.
    pub name: String,
    /// `/Users` or `/Groups`.
    pub endpoint: String,
    /// The core schema.
    pub core: Schema,
    /// The extension schemas.
    pub extensions: Vec<Extension>,
}

/// Where a resolved attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    /// The URN of the schema defining it; `None` for the common attributes (`id`, `externalId`, `meta`).
    pub schema: Option<&'a str>,
    /// Whether it sits under the schema's URN key in the JSON (extension attributes) rather than at the top level.
    pub in_extension: bool,
    /// The attribute.
    pub attr: &'a AttributeDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> Resolved<'a> {
    /// The definition that the path's value has: the sub-attribute's when there is one.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }

    /// The JSON key of the attribute's container: `None` for the top level, or the extension URN.
    pub fn container(&self) -> Option<&'a str> {
        if self.in_extension { self.schema } else { None }
    }
}

/// Why a path does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The URN names no schema of this resource type.
    #[error("'{0}' is not a schema of this resource type")]
    UnknownSchema(String),
    /// No such attribute.
    #[error("'{0}' is not an attribute of this resource type")]
    UnknownAttribute(String),
    /// The attribute has no such sub-attribute (or is not complex).
    #[error("'{0}' has no sub-attribute '{1}'")]
    UnknownSubAttribute(String, String),
}

impl ResourceSchema {
    /// Every schema URN of this resource type, the core first.
    pub fn schema_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str()).chain(self.extensions.iter().map(|e| e.schema.id.as_str()))
    }

    /// The extension with this URN, regardless of case.
    pub fn extension(&self, urn: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.schema.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves `path` to its definition. Without a URN, the common attributes and then the core
    /// schema are searched; extension attributes need their URN. Names ignore case.
    pub fn resolve(&self, path: &AttrPath) -> Result<Resolved<'_>, ResolveError> {
        let (schema, in_extension, attr) = match &path.urn {
            Some(urn) if urn.eq_ignore_ascii_case(&self.core.id) => {
                let attr = self
                    .core
                    .attribute(&path.attr)
                    .ok_or_else(|| ResolveError::UnknownAttribute(path.to_string()))?;
                (Some(self.core.id.as_str()), false, attr)
            }
            Some(urn) => {
                let ext = self
                    .extension(urn)
                    .ok_or_else(|| ResolveError::UnknownSchema(urn.clone()))?;
                let attr = ext
                    .schema
                    .attribute(&path.attr)
                    .ok_or_else(|| ResolveError::UnknownAttribute(path.to_string()))?;
                (Some(ext.schema.id.as_str()), true, attr)
            }
            None => {
                if let Some(attr) = common_attributes()
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&path.attr))
                {
                    (None, false, attr)
                } else {
                    let attr = self
                        .core
                        .attribute(&path.attr)
                        .ok_or_else(|| ResolveError::UnknownAttribute(path.to_string()))?;
                    (Some(self.core.id.as_str()), false, attr)
                }
            }
        };
        let sub = match &path.sub {
            None => None,
            Some(name) => Some(
                attr.sub(name)
                    .ok_or_else(|| ResolveError::UnknownSubAttribute(attr.name.clone(), name.clone()))?,
            ),
        };
        Ok(Resolved {
            schema,
            in_extension,
            attr,
            sub,
        })
    }
}

/// The attributes every resource has (RFC 7643 §3.1): `id`, `externalId`, `meta`.
pub fn common_attributes() -> &'static [AttributeDef] {
    static COMMON: std::sync::OnceLock<Vec<AttributeDef>> = std::sync::OnceLock::new();
    COMMON.get_or_init(|| {
        let simple = |name: &str, kind, case_exact, mutability, returned| AttributeDef {
            name: name.to_owned(),
            kind,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact,
            mutability,
            returned,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        };
        let mut id = simple("id", AttrType::String, true, Mutability::ReadOnly, Returned::Always);
        id.uniqueness = Uniqueness::Server;
        id.description = "Unique identifier assigned by the service provider.".into();
        let mut external_id = simple(
            "externalId",
            AttrType::String,
            true,
            Mutability::ReadWrite,
            Returned::Default,
        );
        external_id.description = "Identifier of the resource in the provisioning client's system.".into();
        let mut meta = simple(
            "meta",
            AttrType::Complex,
            false,
            Mutability::ReadOnly,
            Returned::Default,
        );
        meta.description = "Resource metadata.".into();
        meta.sub_attributes = vec![
            simple(
                "resourceType",
                AttrType::String,
                true,
                Mutability::ReadOnly,
                Returned::Default,
            ),
            simple(
                "created",
                AttrType::DateTime,
                false,
                Mutability::ReadOnly,
                Returned::Default,
            ),
            simple(
                "lastModified",
                AttrType::DateTime,
                false,
                Mutability::ReadOnly,
                Returned::Default,
            ),
            simple(
                "location",
                AttrType::Reference,
                true,
                Mutability::ReadOnly,
                Returned::Default,
            ),
            simple(
                "version",
                AttrType::String,
                true,
                Mutability::ReadOnly,
                Returned::Default,
            ),
        ];
        vec![id, external_id, meta]
    })
}
