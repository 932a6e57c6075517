//! SCIM writes: create, replace (PUT), PATCH and delete of users and groups, through the
//! directory service and in each resource's writers' turn. A group PATCH that only changes
//! members runs as member deltas; bodies are made canonical through the PATCH engine.

use super::{ListParams, ResourceKind, ScimResource, ScimService, check_if_match, no_such, parse_id};
use crate::domain::admin::Actor;
use crate::domain::attribute::AttributeDefinition;
use crate::domain::error::ScimErrorType;
use crate::domain::group::{Group, NewGroup};
use crate::domain::scim::members::{MemberOp, member_ops, touches_members};
use crate::domain::scim::patch::{PatchOp, PatchOperation, PatchRequest, apply_patch, parse_patch_request};
use crate::domain::scim::projection::Projection;
use crate::domain::scim::resource::{Reference, group_fields, user_fields, user_resource};
use crate::domain::scim::schema::{GROUP_SCHEMA, ResourceSchema, USER_SCHEMA};
use crate::domain::user::{User, UserSource};
use crate::domain::{Error, Result};
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, ScimStore, UserStore};
use serde_json::{Map, Value, json};

/// Whether a group write reads the current members (to compute the new resource from) and
/// whether its answer carries them.
#[derive(Debug, Clone, Copy)]
struct GroupMembers {
    read: bool,
    answer: bool,
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
    Ok(apply_patch(&base, &request, schema)?)
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

impl<S> ScimService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + Clone,
{
    /// `POST /Users` or `/Groups`: creates the resource; returns it (default projection).
    pub async fn create(&self, kind: ResourceKind, body: Value, actor: &Actor, base: &str) -> Result<ScimResource> {
        let (schema, _) = self.schema_of(kind).await?;
        let resource = canonical(body, json!({"schemas": [schema.core.id.clone()]}), &schema)?;
        match kind {
            ResourceKind::User => {
                let fields = user_fields(&resource)?;
                let user = self.directory.create_user(fields, UserSource::Scim, actor).await?;
                // A new user belongs to no group yet: nothing to read for its answer.
                Ok(user_answer(&user, &[], &schema, base))
            }
            ResourceKind::Group => {
                let fields = group_fields(&resource)?;
                let input = NewGroup {
                    name: fields.name,
                    external_id: fields.external_id,
                };
                let group = self
                    .directory
                    .create_group_with_members(input, &fields.members, UserSource::Scim, actor)
                    .await?;
                self.group_answer(&group, &schema, base, true).await
            }
        }
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
                    Ok(apply_patch(current, &request, schema)?)
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
                let (user, groups) = turns
                    .on_latest(uuid, if_match.is_some(), || async move {
                        let (user, groups, current) = self.load_user_with_groups(id, base).await?;
                        check_if_match(if_match, user.version)?;
                        let resource = compute(&current, schema)?;
                        let user = self.write_user(&user, &resource, definitions, actor).await?;
                        Ok((user, groups))
                    })
                    .await?;
                Ok(user_answer(&user, &groups, schema, base))
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
        let input = NewGroup {
            name: fields.name,
            external_id: fields.external_id,
        };
        let members = with_members.then_some(fields.members.as_slice());
        self.directory.replace_group(group, input, members, actor).await
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

/// The answer to a user write: the stored user with its group references, default projection.
fn user_answer(user: &User, groups: &[Reference], schema: &ResourceSchema, base: &str) -> ScimResource {
    ScimResource {
        body: Projection::default().apply(&user_resource(user, groups, base), schema),
        version: user.version,
        id: user.id,
    }
}
