//! The hub's SCIM 2.0 service provider (RFC 7644), for identity providers that push users and
//! groups into the directory: discovery documents, searches, reads, creates, replaces, PATCH,
//! deletes and Bulk. Resources written here are ordinary directory users and groups (source
//! `scim`), so they reach outbound apps through the same change log. No HTTP here: the API layer
//! passes parsed parameters and the base URL, and maps errors to SCIM error bodies.

use crate::domain::admin::Actor;
use crate::domain::attribute::AttributeDefinition;
use crate::domain::error::ScimErrorType;
use crate::domain::group::Group;
use crate::domain::scim::ast::AttrPath;
use crate::domain::scim::discovery::{
    ServiceProviderLimits, all_schemas, group_resource_schema, list_response, resource_type_document, schema_document,
    service_provider_config, user_resource_schema,
};
use crate::domain::scim::filter::parse_filter;
use crate::domain::scim::members::{MemberOp, member_ops, touches_members};
use crate::domain::scim::patch::{PatchOp, PatchOperation, PatchRequest, apply_patch, parse_patch_request};
use crate::domain::scim::projection::Projection;
use crate::domain::scim::resource::{group_fields, group_resource, user_fields, user_resource};
use crate::domain::scim::schema::{GROUP_SCHEMA, ResourceSchema, USER_SCHEMA};
use crate::domain::user::{User, UserSource};
use crate::domain::values::{GroupName, profile_text};
use crate::domain::{Error, Result, now};
use crate::service::DirectoryService;
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, ScimSearch, ScimStore, UserStore};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
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

/// Whether a group write reads the current members (to compute the new resource from) and
/// whether its answer carries them.
#[derive(Debug, Clone, Copy)]
struct GroupMembers {
    read: bool,
    answer: bool,
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

/// Takes `schemas` out of a request body and checks it names `core` and only known schemas.
fn check_schemas(body: &mut Map<String, Value>, schema: &ResourceSchema) -> Result<()> {
    let listed = match body.remove("schemas") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                "'schemas' must be a list of URNs",
            ));
        }
        None => return Err(Error::scim(ScimErrorType::InvalidSyntax, "'schemas' is required")),
    };
    let mut has_core = false;
    for urn in &listed {
        let Some(urn) = urn.as_str() else {
            return Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                "'schemas' must be a list of URNs",
            ));
        };
        if urn.eq_ignore_ascii_case(&schema.core.id) {
            has_core = true;
        } else if schema.extension(urn).is_none() {
            return Err(Error::scim(
                ScimErrorType::InvalidValue,
                format!("'{urn}' is not a schema of the {} resource type", schema.name),
            ));
        }
    }
    if !has_core {
        return Err(Error::scim(
            ScimErrorType::InvalidValue,
            format!("'schemas' must include {}", schema.core.id),
        ));
    }
    Ok(())
}

/// Turns a create or replace body into the canonical resource, by adding every writable attribute
/// of the body to `base` through the PATCH engine (which checks names, types and mutability).
/// Read-only attributes in the body (`id`, `meta`, `groups`, ...) are ignored, as RFC 7644 asks.
fn canonical(body: Value, base: Value, schema: &ResourceSchema) -> Result<Value> {
    let Value::Object(mut body) = body else {
        return Err(Error::scim(
            ScimErrorType::InvalidSyntax,
            "the request body must be a JSON object",
        ));
    };
    check_schemas(&mut body, schema)?;
    for ignored in ["id", "meta", "groups", "password"] {
        if let Some(key) = body.keys().find(|k| k.eq_ignore_ascii_case(ignored)).cloned() {
            body.remove(&key);
        }
    }
    // Read-only sub-attributes (members.display, manager.displayName) are ignored as well.
    strip_read_only(&mut body, schema);
    if body.is_empty() {
        return Ok(base);
    }
    let request = PatchRequest {
        operations: vec![PatchOperation {
            op: PatchOp::Add,
            path: None,
            value: Some(Value::Object(body)),
        }],
    };
    apply_patch(&base, &request, schema)
}

fn strip_read_only(body: &mut Map<String, Value>, schema: &ResourceSchema) {
    use crate::domain::scim::schema::{AttributeDef, Mutability};
    fn strip_value(value: &mut Value, def: &AttributeDef) {
        let strip_object = |object: &mut Map<String, Value>| {
            object.retain(|k, _| def.sub(k).is_none_or(|s| s.mutability != Mutability::ReadOnly));
        };
        match value {
            Value::Object(object) => strip_object(object),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(object) = item {
                        strip_object(object);
                    }
                }
            }
            _ => {}
        }
    }
    let keys: Vec<String> = body.keys().cloned().collect();
    for key in keys {
        if let Some(ext) = schema.extension(&key) {
            if let Some(Value::Object(inner)) = body.get_mut(&key) {
                inner.retain(|k, _| {
                    ext.schema
                        .attribute(k)
                        .is_none_or(|a| a.mutability != Mutability::ReadOnly)
                });
                for (k, v) in inner.iter_mut() {
                    if let Some(def) = ext.schema.attribute(k) {
                        strip_value(v, def);
                    }
                }
            }
            continue;
        }
        let Some(def) = schema.core.attribute(&key) else {
            continue;
        };
        if def.mutability == Mutability::ReadOnly {
            body.remove(&key);
        } else if let Some(v) = body.get_mut(&key) {
            strip_value(v, def);
        }
    }
}

/// The SCIM operations over a store.
#[derive(Debug, Clone)]
pub struct ScimService<S> {
    store: S,
    directory: DirectoryService<S>,
    limits: ScimLimits,
}

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
        }
    }

    /// The advertised limits.
    pub fn limits(&self) -> ScimLimits {
        self.limits
    }

    /// The User resource type as currently defined (its Provisio extension follows the custom attributes).
    pub async fn user_schema(&self) -> Result<ResourceSchema> {
        let definitions = self.store.list_attributes().await?;
        user_resource_schema(&definitions)
    }

    /// The resource type's schema, with the custom attribute definitions it was built from
    /// (none for groups), read once per request.
    async fn schema_of(&self, kind: ResourceKind) -> Result<(ResourceSchema, Vec<AttributeDefinition>)> {
        match kind {
            ResourceKind::User => {
                let definitions = self.store.list_attributes().await?;
                Ok((user_resource_schema(&definitions)?, definitions))
            }
            ResourceKind::Group => Ok((group_resource_schema()?, Vec::new())),
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
            resource_type_document(&self.user_schema().await?, base),
            resource_type_document(&group_resource_schema()?, base),
        ])
    }

    /// `GET /Schemas`.
    pub async fn schemas(&self, base: &str) -> Result<Vec<Value>> {
        let definitions = self.store.list_attributes().await?;
        Ok(all_schemas(&definitions)?
            .iter()
            .map(|s| schema_document(s, base))
            .collect())
    }

    // ---- reads ----

    /// The full SCIM resources of `users` (with `groups` from their memberships), before projection.
    pub async fn user_resources(&self, users: &[User], base: &str) -> Result<Vec<Value>> {
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let groups = by_owner(self.store.group_refs(&ids).await?);
        Ok(users
            .iter()
            .map(|u| user_resource(u, groups.get(&u.id).map(Vec::as_slice).unwrap_or(&[]), base))
            .collect())
    }

    /// The full SCIM resources of `groups` (with their `members`), before projection.
    pub async fn group_resources(&self, groups: &[Group], base: &str) -> Result<Vec<Value>> {
        self.group_resources_with(groups, base, true).await
    }

    /// The SCIM resources of `groups`, with their `members` only when `with_members` (an answer
    /// that will not carry them does not read them).
    async fn group_resources_with(&self, groups: &[Group], base: &str, with_members: bool) -> Result<Vec<Value>> {
        let members = if with_members {
            let ids: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
            by_owner(self.store.member_ids(&ids).await?)
        } else {
            HashMap::new()
        };
        Ok(groups
            .iter()
            .map(|g| group_resource(g, members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]), base))
            .collect())
    }

    async fn load_user(&self, id: &str, base: &str) -> Result<(User, Value)> {
        let uuid = parse_id(ResourceKind::User, id)?;
        let user = self
            .store
            .get_user(uuid)
            .await?
            .ok_or_else(|| no_such(ResourceKind::User, id))?;
        let resource = self.user_resources(std::slice::from_ref(&user), base).await?.pop();
        let resource = resource.ok_or_else(|| no_such(ResourceKind::User, id))?;
        Ok((user, resource))
    }

    async fn load_group(&self, id: &str, base: &str, with_members: bool) -> Result<(Group, Value)> {
        let uuid = parse_id(ResourceKind::Group, id)?;
        let group = self
            .store
            .get_group(uuid)
            .await?
            .ok_or_else(|| no_such(ResourceKind::Group, id))?;
        let resource = self
            .group_resources_with(std::slice::from_ref(&group), base, with_members)
            .await?
            .pop();
        let resource = resource.ok_or_else(|| no_such(ResourceKind::Group, id))?;
        Ok((group, resource))
    }

    /// `GET /Users/{id}` or `/Groups/{id}`, projected.
    pub async fn get(&self, kind: ResourceKind, id: &str, params: &ListParams, base: &str) -> Result<ScimResource> {
        let (schema, _) = self.schema_of(kind).await?;
        let projection = Projection::parse(
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
            &schema,
        )?;
        let (version, uuid, resource) = match kind {
            ResourceKind::User => {
                let (user, resource) = self.load_user(id, base).await?;
                (user.version, user.id, resource)
            }
            ResourceKind::Group => {
                let with_members = projection.returns("members", &schema);
                let (group, resource) = self.load_group(id, base, with_members).await?;
                (group.version, group.id, resource)
            }
        };
        Ok(ScimResource {
            body: projection.apply(&resource, &schema),
            version,
            id: uuid,
        })
    }

    /// `GET /Users` or `/Groups` (and `POST /.search`): a ListResponse.
    pub async fn list(&self, kind: ResourceKind, params: &ListParams, base: &str) -> Result<Value> {
        let (schema, _) = self.schema_of(kind).await?;
        let projection = Projection::parse(
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
            &schema,
        )?;
        let filter = match params.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_filter(text)?),
        };
        let sort_path = match params.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_sort_path(text)?),
        };
        let descending = match params.sort_order.as_deref() {
            None => false,
            Some(order) if order.eq_ignore_ascii_case("ascending") => false,
            Some(order) if order.eq_ignore_ascii_case("descending") => true,
            Some(other) => {
                return Err(Error::scim(
                    ScimErrorType::InvalidValue,
                    format!("sortOrder must be 'ascending' or 'descending', not '{other}'"),
                ));
            }
        };
        let start_index = params.start_index.unwrap_or(1).max(1);
        let count = params
            .count
            .map_or(self.limits.max_results, |c| u64::try_from(c.max(0)).unwrap_or(0))
            .min(self.limits.max_results);
        let search = ScimSearch {
            filter: filter.as_ref(),
            sort: sort_path.as_ref().map(|p| (p, descending)),
            offset: u64::try_from(start_index - 1).unwrap_or(0),
            limit: count,
        };
        let (total, resources) = match kind {
            ResourceKind::User => {
                let (total, users) = self.store.search_users(&schema, &search).await?;
                (total, self.user_resources(&users, base).await?)
            }
            ResourceKind::Group => {
                let (total, groups) = self.store.search_groups(&schema, &search).await?;
                let with_members = projection.returns("members", &schema);
                (total, self.group_resources_with(&groups, base, with_members).await?)
            }
        };
        let resources = resources.iter().map(|r| projection.apply(r, &schema)).collect();
        Ok(list_response(
            resources,
            usize::try_from(total).unwrap_or(usize::MAX),
            usize::try_from(start_index).unwrap_or(1),
        ))
    }

    /// `POST /.search` at the root: Users then Groups, paged as one list. A filter that names an
    /// attribute one resource type lacks matches no resource of that type.
    pub async fn search_all(&self, params: &ListParams, base: &str) -> Result<Value> {
        let start_index = params.start_index.unwrap_or(1).max(1);
        let count = params
            .count
            .map_or(self.limits.max_results, |c| u64::try_from(c.max(0)).unwrap_or(0))
            .min(self.limits.max_results);
        let mut offset = u64::try_from(start_index - 1).unwrap_or(0);
        let mut remaining = count;
        let mut total = 0u64;
        let mut resources = Vec::new();
        let mut failures = Vec::new();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let totals = ListParams {
                count: Some(0),
                start_index: Some(1),
                ..params.clone()
            };
            let kind_total = match self.list(kind, &totals, base).await {
                Ok(answer) => answer.get("totalResults").and_then(Value::as_u64).unwrap_or(0),
                Err(Error::Scim {
                    scim_type: ScimErrorType::InvalidFilter,
                    detail,
                }) => {
                    failures.push(detail);
                    continue;
                }
                Err(other) => return Err(other),
            };
            total += kind_total;
            if offset >= kind_total {
                offset -= kind_total;
                continue;
            }
            if remaining > 0 {
                let page = ListParams {
                    start_index: Some(i64::try_from(offset + 1).unwrap_or(i64::MAX)),
                    count: Some(i64::try_from(remaining).unwrap_or(i64::MAX)),
                    ..params.clone()
                };
                let answer = self.list(kind, &page, base).await?;
                if let Some(Value::Array(items)) = answer.get("Resources") {
                    remaining = remaining.saturating_sub(items.len() as u64);
                    resources.extend(items.iter().cloned());
                }
            }
            offset = 0;
        }
        if failures.len() == 2 {
            return Err(Error::scim(ScimErrorType::InvalidFilter, failures.join("; ")));
        }
        Ok(list_response(
            resources,
            usize::try_from(total).unwrap_or(usize::MAX),
            usize::try_from(start_index).unwrap_or(1),
        ))
    }

    /// `POST /.search` on a resource type: reads the SearchRequest body into listing parameters.
    pub fn search_params(&self, body: &Value) -> Result<ListParams> {
        let Some(object) = body.as_object() else {
            return Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                "a search request must be a JSON object",
            ));
        };
        let schemas_ok = object
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(SEARCH_REQUEST)));
        if !schemas_ok {
            return Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                format!("'schemas' must be [\"{SEARCH_REQUEST}\"]"),
            ));
        }
        let text = |key: &str| -> Result<Option<String>> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::scim(
                    ScimErrorType::InvalidSyntax,
                    format!("'{key}' must be a string"),
                )),
            }
        };
        let list = |key: &str| -> Result<Option<String>> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => {
                    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    names
                        .map(|n| Some(n.join(",")))
                        .ok_or_else(|| Error::scim(ScimErrorType::InvalidSyntax, format!("'{key}' must list strings")))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::scim(
                    ScimErrorType::InvalidSyntax,
                    format!("'{key}' must list strings"),
                )),
            }
        };
        let number = |key: &str| -> Result<Option<i64>> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| Error::scim(ScimErrorType::InvalidSyntax, format!("'{key}' must be an integer"))),
            }
        };
        Ok(ListParams {
            filter: text("filter")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
        })
    }

    /// Narrows a written resource as the request's `attributes`/`excludedAttributes` ask
    /// (RFC 7644 §3.9 allows them on POST, PUT and PATCH as well).
    pub async fn project(&self, kind: ResourceKind, params: &ListParams, resource: &mut ScimResource) -> Result<()> {
        if params.attributes.is_none() && params.excluded_attributes.is_none() {
            return Ok(());
        }
        let (schema, _) = self.schema_of(kind).await?;
        let projection = Projection::parse(
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
            &schema,
        )?;
        resource.body = projection.apply(&resource.body, &schema);
        Ok(())
    }

    // ---- writes ----

    /// `POST /Users` or `/Groups`: creates the resource; returns it (default projection).
    pub async fn create(&self, kind: ResourceKind, body: Value, actor: &Actor, base: &str) -> Result<ScimResource> {
        let (schema, _) = self.schema_of(kind).await?;
        let resource = canonical(body, json!({"schemas": [schema.core.id.clone()]}), &schema)?;
        match kind {
            ResourceKind::User => {
                let fields = user_fields(&resource)?;
                let user = self.directory.create_user(fields, UserSource::Scim, actor).await?;
                self.user_answer(&user, &schema, base).await
            }
            ResourceKind::Group => {
                let fields = group_fields(&resource)?;
                let name = GroupName::parse(&fields.name)?;
                let at = now();
                let group = Group {
                    id: Uuid::now_v7(),
                    name: name.as_str().to_owned(),
                    external_id: profile_text("external_id", fields.external_id)?,
                    source: UserSource::Scim,
                    member_count: 0,
                    version: 1,
                    created_at: at,
                    updated_at: at,
                };
                let group = self
                    .store
                    .save_group(&group, None, Some(&fields.members), actor)
                    .await?;
                self.group_answer(&group, &schema, base, true).await
            }
        }
    }

    async fn user_answer(&self, user: &User, schema: &ResourceSchema, base: &str) -> Result<ScimResource> {
        let resource = self
            .user_resources(std::slice::from_ref(user), base)
            .await?
            .pop()
            .ok_or_else(|| no_such(ResourceKind::User, &user.id.to_string()))?;
        Ok(ScimResource {
            body: Projection::default().apply(&resource, schema),
            version: user.version,
            id: user.id,
        })
    }

    async fn group_answer(
        &self,
        group: &Group,
        schema: &ResourceSchema,
        base: &str,
        with_members: bool,
    ) -> Result<ScimResource> {
        let resource = self
            .group_resources_with(std::slice::from_ref(group), base, with_members)
            .await?
            .pop()
            .ok_or_else(|| no_such(ResourceKind::Group, &group.id.to_string()))?;
        Ok(ScimResource {
            body: Projection::default().apply(&resource, schema),
            version: group.version,
            id: group.id,
        })
    }

    /// `PUT`: replaces every writable attribute (omitted ones are cleared; read-only ones ignored).
    /// With `If-Match`, a stale version is refused; without, the change applies to the latest state.
    pub async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        actor: &Actor,
        base: &str,
    ) -> Result<ScimResource> {
        let start_schema = match kind {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        };
        let members = GroupMembers {
            read: true,
            answer: true,
        };
        self.write_latest(kind, id, if_match, actor, base, members, |current, schema| {
            let start = json!({"schemas": [start_schema], "id": current["id"].clone()});
            canonical(body.clone(), start, schema)
        })
        .await
    }

    /// `PATCH`: applies the operations atomically to the latest state (or, with `If-Match`, to
    /// that version only); returns the whole resource.
    pub async fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        actor: &Actor,
        base: &str,
    ) -> Result<ScimResource> {
        self.patch_with(kind, id, body, if_match, &ListParams::default(), actor, base)
            .await
    }

    /// `PATCH` as [`Self::patch`], the answer projected by `params`. A group PATCH that only
    /// changes members is applied as member deltas (`GroupStore::change_members`), and one that
    /// does not touch members never reads them; the answer carries the members only when its
    /// projection keeps them.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch_with(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        params: &ListParams,
        actor: &Actor,
        base: &str,
    ) -> Result<ScimResource> {
        let request = parse_patch_request(body)?;
        let (schema, _) = self.schema_of(kind).await?;
        let projection = Projection::parse(
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
            &schema,
        )?;
        let answer_members = kind == ResourceKind::Group && projection.returns("members", &schema);
        let mut resource = match (kind, member_ops(&request)) {
            (ResourceKind::Group, Some(ops)) => {
                let group = self.patch_members(id, &ops, if_match, actor).await?;
                self.group_answer(&group, &schema, base, answer_members).await?
            }
            _ => {
                let members = GroupMembers {
                    read: touches_members(&request),
                    answer: answer_members,
                };
                self.write_latest(kind, id, if_match, actor, base, members, |current, schema| {
                    apply_patch(current, &request, schema)
                })
                .await?
            }
        };
        if !projection.is_default() {
            resource.body = projection.apply(&resource.body, &schema);
        }
        Ok(resource)
    }

    /// Member deltas on group `id`: with `If-Match`, on the version it names only.
    async fn patch_members(&self, id: &str, ops: &[MemberOp], if_match: Option<&str>, actor: &Actor) -> Result<Group> {
        let uuid = parse_id(ResourceKind::Group, id)?;
        let expected = match if_match {
            None => None,
            Some(header) => {
                let group = self
                    .store
                    .get_group(uuid)
                    .await?
                    .ok_or_else(|| no_such(ResourceKind::Group, id))?;
                check_if_match(Some(header), group.version)?;
                // `*` asks only that the group exists; a list of tags pins the version they name.
                (!header.split(',').any(|tag| tag.trim() == "*")).then_some(group.version)
            }
        };
        match self.directory.change_members(uuid, expected, ops, actor).await {
            Err(Error::NotFound { .. }) => Err(no_such(ResourceKind::Group, id)),
            other => other,
        }
    }

    /// Applies `compute` (the stored resource and its schema -> the resource to store) to the
    /// latest state of the user or group `id`, in its writers' turn, and answers the stored
    /// resource. With `If-Match` only that version is changed (else 412); without, a version that
    /// changed meanwhile makes it read and compute again (see `Turns::on_latest`).
    #[allow(clippy::too_many_arguments)]
    async fn write_latest(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
        actor: &Actor,
        base: &str,
        members: GroupMembers,
        compute: impl Fn(&Value, &ResourceSchema) -> Result<Value>,
    ) -> Result<ScimResource> {
        let (schema, definitions) = self.schema_of(kind).await?;
        let uuid = parse_id(kind, id)?;
        let (schema, definitions, compute) = (&schema, &definitions, &compute);
        let turns = self.directory.turns();
        match kind {
            ResourceKind::User => {
                let user = turns
                    .on_latest(uuid, if_match.is_some(), || async move {
                        let (user, current) = self.load_user(id, base).await?;
                        check_if_match(if_match, user.version)?;
                        let resource = compute(&current, schema)?;
                        self.write_user(&user, &resource, definitions, actor).await
                    })
                    .await?;
                self.user_answer(&user, schema, base).await
            }
            ResourceKind::Group => {
                let group = turns
                    .on_latest(uuid, if_match.is_some(), || async move {
                        let (group, current) = self.load_group(id, base, members.read).await?;
                        check_if_match(if_match, group.version)?;
                        let resource = compute(&current, schema)?;
                        self.write_group(&group, &resource, members.read, actor).await
                    })
                    .await?;
                self.group_answer(&group, schema, base, members.answer).await
            }
        }
    }

    async fn write_user(
        &self,
        user: &User,
        resource: &Value,
        definitions: &[AttributeDefinition],
        actor: &Actor,
    ) -> Result<User> {
        let update = user_fields(resource)?.into_replacement(definitions);
        self.directory.replace_user_with(user, update, definitions, actor).await
    }

    /// Stores `resource` over `group`; its members become the group's exact membership only
    /// when `with_members` (the resource was read with them).
    async fn write_group(&self, group: &Group, resource: &Value, with_members: bool, actor: &Actor) -> Result<Group> {
        let fields = group_fields(resource)?;
        let name = GroupName::parse(&fields.name)?;
        let next = Group {
            name: name.as_str().to_owned(),
            external_id: profile_text("external_id", fields.external_id)?,
            updated_at: now(),
            ..group.clone()
        };
        let members = with_members.then_some(fields.members.as_slice());
        self.store.save_group(&next, Some(group.version), members, actor).await
    }

    /// `DELETE`.
    pub async fn delete(&self, kind: ResourceKind, id: &str, if_match: Option<&str>, actor: &Actor) -> Result<()> {
        let uuid = parse_id(kind, id)?;
        // In this resource's turn, so that no write of this process comes between the check and
        // the deletion; a delete does not depend on the stored state, so it never needs a retry.
        self.directory
            .turns()
            .on_latest(uuid, if_match.is_some(), || async move {
                match kind {
                    ResourceKind::User => {
                        let user = self.store.get_user(uuid).await?.ok_or_else(|| no_such(kind, id))?;
                        check_if_match(if_match, user.version)?;
                        self.store.delete_user(uuid, actor).await?;
                    }
                    ResourceKind::Group => {
                        let group = self.store.get_group(uuid).await?.ok_or_else(|| no_such(kind, id))?;
                        check_if_match(if_match, group.version)?;
                        self.store.delete_group(uuid, actor).await?;
                    }
                }
                Ok(())
            })
            .await
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

/// Parses a `sortBy` attribute path (URN-qualified or not, with an optional sub-attribute).
pub fn parse_sort_path(text: &str) -> Result<AttrPath> {
    let bad = || {
        Error::scim(
            ScimErrorType::InvalidValue,
            format!("sortBy '{text}' is not an attribute path"),
        )
    };
    let (urn, rest) = match text.rfind(':') {
        Some(i) => (Some(text[..i].to_owned()), &text[i + 1..]),
        None => (None, text),
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s.to_owned())),
        None => (rest, None),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !valid(attr) || sub.as_deref().is_some_and(|s| !valid(s)) {
        return Err(bad());
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_owned(),
        sub,
    })
}

/// One operation of a Bulk request, as read.
#[derive(Debug, Clone)]
struct BulkOperation {
    method: String,
    bulk_id: Option<String>,
    path: String,
    data: Option<Value>,
    version: Option<String>,
}

fn bulk_operations(body: &Value, max: usize) -> Result<(Vec<BulkOperation>, Option<usize>)> {
    let bad = |detail: String| Error::scim(ScimErrorType::InvalidSyntax, detail);
    let Some(object) = body.as_object() else {
        return Err(bad("a Bulk request must be a JSON object".into()));
    };
    let schemas_ok = object
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(BULK_REQUEST)));
    if !schemas_ok {
        return Err(bad(format!("'schemas' must be [\"{BULK_REQUEST}\"]")));
    }
    let fail_on_errors = match object.get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("'failOnErrors' must be a positive integer".into()))?,
        ),
    };
    let operations = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| bad("'Operations' must be a list".into()))?;
    if operations.len() > max {
        return Err(Error::TooManyOperations { limit: max });
    }
    let mut out = Vec::with_capacity(operations.len());
    for (i, op) in operations.iter().enumerate() {
        let field = |name: &str| op.get(name).and_then(Value::as_str).map(str::to_owned);
        let method = field("method").ok_or_else(|| bad(format!("operation {i} has no 'method'")))?;
        let path = field("path").ok_or_else(|| bad(format!("operation {i} has no 'path'")))?;
        out.push(BulkOperation {
            method: method.to_ascii_uppercase(),
            bulk_id: field("bulkId"),
            path,
            data: op.get("data").cloned(),
            version: field("version"),
        });
    }
    Ok((out, fail_on_errors))
}

/// Every `bulkId:X` reference in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.push(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn substitute(value: &mut Value, created: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| created.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, created)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, created)),
        _ => {}
    }
}

impl<S> ScimService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + Clone,
{
    /// `POST /Bulk` (RFC 7644 §3.7): runs the operations, an operation that references another's
    /// `bulkId` (also one further down the list) after it, and stops once `failOnErrors` errors
    /// happened. `error_body` renders a failed operation's status and SCIM error body.
    pub async fn bulk(
        &self,
        body: &Value,
        actor: &Actor,
        base: &str,
        error_body: &(dyn Fn(&Error) -> (u16, Value) + Sync),
    ) -> Result<Value> {
        let (operations, fail_on_errors) = bulk_operations(body, self.limits.max_operations)?;
        let declared: Vec<String> = operations.iter().filter_map(|o| o.bulk_id.clone()).collect();
        let mut created: HashMap<String, String> = HashMap::new();
        let mut failed_ids: Vec<String> = Vec::new();
        let mut results: Vec<Option<Value>> = vec![None; operations.len()];
        let mut errors = 0usize;
        let mut pending: Vec<usize> = (0..operations.len()).collect();
        'passes: while !pending.is_empty() {
            let mut progressed = false;
            let mut still = Vec::new();
            for index in pending {
                let op = &operations[index];
                let mut refs = Vec::new();
                references(&Value::String(op.path.clone()), &mut refs);
                if let Some(data) = &op.data {
                    references(data, &mut refs);
                }
                let waiting = refs.iter().any(|r| {
                    !created.contains_key(r)
                        && !failed_ids.contains(r)
                        && declared.contains(r)
                        && op.bulk_id.as_ref() != Some(r)
                });
                if waiting {
                    still.push(index);
                    continue;
                }
                progressed = true;
                let outcome = match refs.iter().find(|r| !created.contains_key(*r)) {
                    Some(missing) => Err(Error::Conflict {
                        field: None,
                        message: format!("bulkId '{missing}' does not name an operation that succeeded"),
                    }),
                    None => self.bulk_one(op, &created, actor, base).await,
                };
                let mut result = json!({"method": op.method});
                if let Some(bulk_id) = &op.bulk_id {
                    result["bulkId"] = Value::String(bulk_id.clone());
                }
                match outcome {
                    Ok((status, resource)) => {
                        if let Some(resource) = resource {
                            if let (Some(bulk_id), "POST") = (&op.bulk_id, op.method.as_str()) {
                                created.insert(bulk_id.clone(), resource.id.to_string());
                            }
                            result["version"] = Value::String(crate::domain::scim::resource::etag(resource.version));
                            if let Some(location) = resource.body.pointer("/meta/location") {
                                result["location"] = location.clone();
                            }
                        }
                        result["status"] = Value::String(status.to_string());
                    }
                    Err(error) => {
                        if let Some(bulk_id) = &op.bulk_id {
                            failed_ids.push(bulk_id.clone());
                        }
                        let (status, body) = error_body(&error);
                        result["status"] = Value::String(status.to_string());
                        result["response"] = body;
                        errors += 1;
                    }
                }
                results[index] = Some(result);
                if fail_on_errors.is_some_and(|limit| errors >= limit) {
                    break 'passes;
                }
            }
            if !progressed {
                // The rest only wait on each other: a circular reference.
                for index in still {
                    let op = &operations[index];
                    let error = Error::Conflict {
                        field: None,
                        message: "the operation's bulkId references form a cycle".into(),
                    };
                    let (status, body) = error_body(&error);
                    let mut result = json!({"method": op.method, "status": status.to_string(), "response": body});
                    if let Some(bulk_id) = &op.bulk_id {
                        result["bulkId"] = Value::String(bulk_id.clone());
                    }
                    results[index] = Some(result);
                }
                break;
            }
            pending = still;
        }
        Ok(json!({
            "schemas": [BULK_RESPONSE],
            "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
        }))
    }

    async fn bulk_one(
        &self,
        op: &BulkOperation,
        created: &HashMap<String, String>,
        actor: &Actor,
        base: &str,
    ) -> Result<(u16, Option<ScimResource>)> {
        let mut path = Value::String(op.path.clone());
        substitute(&mut path, created);
        let path = path.as_str().unwrap_or_default().trim_matches('/').to_owned();
        let (kind, id) = match path.split_once('/') {
            Some((kind, id)) => (kind, Some(id.to_owned())),
            None => (path.as_str(), None),
        };
        let kind = match kind {
            "Users" => ResourceKind::User,
            "Groups" => ResourceKind::Group,
            other => {
                return Err(Error::scim(
                    ScimErrorType::InvalidPath,
                    format!("'/{other}' is not a resource endpoint"),
                ));
            }
        };
        let id = id.map(|i| created.get(i.trim_start_matches("bulkId:")).cloned().unwrap_or(i));
        let mut data = op.data.clone();
        if let Some(data) = &mut data {
            substitute(data, created);
        }
        let need_data = || {
            data.clone()
                .ok_or_else(|| Error::scim(ScimErrorType::InvalidSyntax, "the operation needs 'data'"))
        };
        let need_id = || {
            id.clone()
                .ok_or_else(|| Error::scim(ScimErrorType::InvalidPath, "the path needs a resource id"))
        };
        let version = op.version.as_deref();
        match op.method.as_str() {
            "POST" => {
                if id.is_some() {
                    return Err(Error::scim(
                        ScimErrorType::InvalidPath,
                        "POST goes to /Users or /Groups",
                    ));
                }
                if op.bulk_id.is_none() {
                    return Err(Error::scim(
                        ScimErrorType::InvalidSyntax,
                        "a POST operation needs a 'bulkId'",
                    ));
                }
                let resource = self.create(kind, need_data()?, actor, base).await?;
                Ok((201, Some(resource)))
            }
            "PUT" => {
                let resource = self
                    .replace(kind, &need_id()?, need_data()?, version, actor, base)
                    .await?;
                Ok((200, Some(resource)))
            }
            "PATCH" => {
                let resource = self
                    .patch(kind, &need_id()?, &need_data()?, version, actor, base)
                    .await?;
                Ok((200, Some(resource)))
            }
            "DELETE" => {
                self.delete(kind, &need_id()?, version, actor).await?;
                Ok((204, None))
            }
            other => Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                format!("'{other}' is not a Bulk method (POST, PUT, PATCH or DELETE)"),
            )),
        }
    }
}
