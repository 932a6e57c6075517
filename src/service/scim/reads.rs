//! SCIM reads: resources rendered from directory users and groups (a group's members only when
//! the answer carries them), `GET` by id, listings and searches with filter, sort, paging and
//! projection, and the SearchRequest body.

use super::{ListParams, ResourceKind, SEARCH_REQUEST, ScimResource, ScimService, by_owner, no_such, parse_id};
use crate::domain::error::ScimErrorType;
use crate::domain::group::Group;
use crate::domain::scim::ast::AttrPath;
use crate::domain::scim::discovery::list_response;
use crate::domain::scim::filter::parse_filter;
use crate::domain::scim::projection::Projection;
use crate::domain::scim::resource::{Reference, group_resource, user_resource};
use crate::domain::user::User;
use crate::domain::{Error, Result};
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, ScimSearch, ScimStore, UserStore};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

impl<S> ScimService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + Clone,
{
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
    pub(super) async fn group_resources_with(
        &self,
        groups: &[Group],
        base: &str,
        with_members: bool,
    ) -> Result<Vec<Value>> {
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

    pub(super) async fn load_user(&self, id: &str, base: &str) -> Result<(User, Value)> {
        let (user, _, resource) = self.load_user_with_groups(id, base).await?;
        Ok((user, resource))
    }

    /// A user, its group references (read once, so that a write can answer with them without
    /// reading them again: a user write never changes them) and its resource.
    pub(super) async fn load_user_with_groups(&self, id: &str, base: &str) -> Result<(User, Vec<Reference>, Value)> {
        let uuid = parse_id(ResourceKind::User, id)?;
        let user = self
            .store
            .get_user(uuid)
            .await?
            .ok_or_else(|| no_such(ResourceKind::User, id))?;
        let groups: Vec<Reference> = self
            .store
            .group_refs(std::slice::from_ref(&uuid))
            .await?
            .into_iter()
            .map(|(_, group)| group)
            .collect();
        let resource = user_resource(&user, &groups, base);
        Ok((user, groups, resource))
    }

    pub(super) async fn load_group(&self, id: &str, base: &str, with_members: bool) -> Result<(Group, Value)> {
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
