//! The hub's SCIM 2.0 service provider (RFC 7644), for identity providers that push users and
//! groups into the directory: discovery documents, searches, reads, creates, replaces, PATCH,
//! deletes and Bulk. Resources written here are ordinary directory users and groups (source
//! `scim`), so they reach outbound apps through the same change log. No HTTP here: the API layer
//! passes parsed parameters and the base URL, and maps errors to SCIM error bodies.

mod bulk;
mod reads;
mod writes;

pub use reads::parse_sort_path;

use crate::domain::attribute::AttributeDefinition;
use crate::domain::scim::discovery::{
    ServiceProviderLimits, all_schemas, group_resource_schema, resource_type_document, schema_document,
    service_provider_config, user_resource_schema,
};
use crate::domain::scim::schema::ResourceSchema;
use crate::domain::{Error, Result};
use crate::service::directory::DirectoryService;
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, ScimStore, UserStore};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use uuid::Uuid;

/// URN of a Bulk request.
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// URN of a Bulk response.
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// URN of a search request (`POST /.search`).
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The limits the service advertises and enforces.
#[derive(Debug, Clone, Copy)]
pub struct ScimLimits {
    /// Most resources one page returns.
    pub max_results: u64,
    /// Most operations in one Bulk request.
    pub max_operations: usize,
    /// Largest request body in bytes (also the Bulk `maxPayloadSize`).
    pub max_payload_bytes: usize,
}

impl Default for ScimLimits {
    fn default() -> Self {
        ScimLimits {
            max_results: 1000,
            max_operations: 1000,
            max_payload_bytes: 1024 * 1024,
        }
    }
}

/// Listing parameters (RFC 7644 §3.4.2), as given in the query string or a search request.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `filter`.
    pub filter: Option<String>,
    /// `sortBy`.
    pub sort_by: Option<String>,
    /// `sortOrder` (`ascending` or `descending`).
    pub sort_order: Option<String>,
    /// `startIndex` (1-based).
    pub start_index: Option<i64>,
    /// `count`.
    pub count: Option<i64>,
    /// `attributes`.
    pub attributes: Option<String>,
    /// `excludedAttributes`.
    pub excluded_attributes: Option<String>,
}

/// Which resource type an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `/Users`
    User,
    /// `/Groups`
    Group,
}

/// A resource as returned: its JSON (already projected) and its version for the `ETag`.
#[derive(Debug, Clone)]
pub struct ScimResource {
    /// The resource's JSON.
    pub body: Value,
    /// Its version.
    pub version: i64,
    /// Its id.
    pub id: Uuid,
}

fn no_such(kind: ResourceKind, id: &str) -> Error {
    Error::not_found(
        match kind {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        },
        id,
    )
}

fn parse_id(kind: ResourceKind, id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| no_such(kind, id))
}

/// Checks `If-Match`: `*` or a list of ETags one of which is the current one.
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<()> {
    let Some(header) = if_match else { return Ok(()) };
    let current = crate::domain::scim::resource::etag(version);
    let strong = format!("\"{version}\"");
    let matches = header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current || tag == strong);
    if matches {
        Ok(())
    } else {
        Err(Error::PreconditionFailed(format!(
            "the resource is at version {current}, not {header}"
        )))
    }
}

/// The SCIM operations over a store.
#[derive(Debug, Clone)]
pub struct ScimService<S> {
    store: S,
    directory: DirectoryService<S>,
    limits: ScimLimits,
    /// The User schema and the definitions it was built from: rebuilt only when the directory
    /// service hands out other definitions (after a change, or its cache's TTL).
    user_schema: Arc<Mutex<Option<BuiltSchema>>>,
    /// The Group schema (fixed), built once.
    group_schema: Arc<OnceLock<Arc<ResourceSchema>>>,
}

/// A User schema with the definitions it was built from.
type BuiltSchema = (Arc<Vec<AttributeDefinition>>, Arc<ResourceSchema>);

impl<S> ScimService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + Clone,
{
    /// Wraps a store.
    pub fn new(store: S, limits: ScimLimits) -> Self {
        Self::with_directory(DirectoryService::new(store.clone()), store, limits)
    }

    /// A SCIM service writing through `directory`, sharing its writers' turns (the hub's admin
    /// API and SCIM server use one directory service, so their writes to one resource queue).
    pub fn with_directory(directory: DirectoryService<S>, store: S, limits: ScimLimits) -> Self {
        Self {
            directory,
            store,
            limits,
            user_schema: Arc::new(Mutex::new(None)),
            group_schema: Arc::new(OnceLock::new()),
        }
    }

    /// The advertised limits.
    pub fn limits(&self) -> ScimLimits {
        self.limits
    }

    /// The User resource type as currently defined (its Provisio extension follows the custom attributes).
    pub async fn user_schema(&self) -> Result<ResourceSchema> {
        Ok(self.cached_user_schema().await?.1.as_ref().clone())
    }

    /// The User schema built from the directory's current definitions, built again only when
    /// those are not the ones it was built from.
    async fn cached_user_schema(&self) -> Result<BuiltSchema> {
        let definitions = self.directory.attribute_definitions().await?;
        let lock = |cell: &Mutex<Option<BuiltSchema>>| {
            // A panic while holding the lock leaves only a cached value behind: still usable.
            let mut guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                Some((built_from, schema)) if Arc::ptr_eq(built_from, &definitions) => {
                    Ok((Arc::clone(built_from), Arc::clone(schema)))
                }
                _ => {
                    let schema = Arc::new(user_resource_schema(&definitions)?);
                    *guard = Some((Arc::clone(&definitions), Arc::clone(&schema)));
                    Ok((Arc::clone(&definitions), schema))
                }
            }
        };
        lock(&self.user_schema)
    }

    /// The Group schema.
    fn cached_group_schema(&self) -> Result<Arc<ResourceSchema>> {
        if let Some(schema) = self.group_schema.get() {
            return Ok(Arc::clone(schema));
        }
        let schema = Arc::new(group_resource_schema()?);
        Ok(Arc::clone(self.group_schema.get_or_init(|| schema)))
    }

    /// The resource type's schema, with the custom attribute definitions it was built from
    /// (none for groups); both cached (see [`DirectoryService::attribute_definitions`]).
    async fn schema_of(&self, kind: ResourceKind) -> Result<(Arc<ResourceSchema>, Arc<Vec<AttributeDefinition>>)> {
        match kind {
            ResourceKind::User => {
                let (definitions, schema) = self.cached_user_schema().await?;
                Ok((schema, definitions))
            }
            ResourceKind::Group => Ok((self.cached_group_schema()?, Arc::new(Vec::new()))),
        }
    }

    // ---- discovery ----

    /// `GET /ServiceProviderConfig`.
    pub fn service_provider_config(&self, base: &str) -> Value {
        service_provider_config(
            &ServiceProviderLimits {
                max_operations: self.limits.max_operations,
                max_payload_size: self.limits.max_payload_bytes,
                max_results: usize::try_from(self.limits.max_results).unwrap_or(usize::MAX),
            },
            base,
        )
    }

    /// `GET /ResourceTypes`.
    pub async fn resource_types(&self, base: &str) -> Result<Vec<Value>> {
        Ok(vec![
            resource_type_document(self.cached_user_schema().await?.1.as_ref(), base),
            resource_type_document(self.cached_group_schema()?.as_ref(), base),
        ])
    }

    /// `GET /Schemas`.
    pub async fn schemas(&self, base: &str) -> Result<Vec<Value>> {
        let definitions = self.directory.attribute_definitions().await?;
        Ok(all_schemas(&definitions)?
            .iter()
            .map(|s| schema_document(s, base))
            .collect())
    }
}

/// Groups `(owner, item)` pairs by owner, keeping their order.
fn by_owner<T>(pairs: Vec<(Uuid, T)>) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = HashMap::new();
    for (owner, item) in pairs {
        out.entry(owner).or_default().push(item);
    }
    out
}
