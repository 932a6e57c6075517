//! `/api/v1/groups`: create, rename, delete, membership.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, ApiQuery, Reader};
use crate::domain::Page;
use crate::domain::group::{Group, GroupRename, NewGroup};
use crate::domain::user::{User, UserSource};
use crate::domain::values::page_limit;
use crate::store::GroupQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Query parameters of listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Text matched (case-insensitively, anywhere) against the name.
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// The result of a membership change.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembershipChange {
    /// `true` when membership changed, `false` when it already was as asked.
    pub changed: bool,
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = NewGroup,
    responses(
        (status = 201, description = "The group was created", body = Group),
        (status = 409, description = "Another group already has this name (compared regardless of case)", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_group(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(input): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let group = state.directory.create_group(input, UserSource::Local, &actor).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Lists groups ordered by name.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(ListParams),
    responses(
        (status = 200, description = "One page of groups; `next_cursor` is absent on the last page", body = Page<Group>),
    ),
    security(("bearer" = [])))]
pub async fn list_groups(
    State(state): State<HubState>,
    _: Reader,
    ApiQuery(query): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<Group>>> {
    let page = state
        .directory
        .list_groups(&GroupQuery {
            search: query.q,
            cursor: query.cursor,
            limit: page_limit(query.limit, 100, 1000)?,
        })
        .await?;
    Ok(Json(page))
}

/// One group, by id or name.
#[utoipa::path(get, path = "/api/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id or name")),
    responses(
        (status = 200, description = "The group", body = Group),
        (status = 404, description = "No group has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_group(State(state): State<HubState>, _: Reader, Path(group): Path<String>) -> ApiResult<Json<Group>> {
    Ok(Json(state.directory.get_group(&group).await?))
}

/// Renames a group.
#[utoipa::path(patch, path = "/api/v1/groups/{group}", tag = "groups", request_body = GroupRename,
    params(("group" = String, Path, description = "Group id or name")),
    responses(
        (status = 409, description = "The name is taken, or an LDAP source owns the group and names it", body = ErrorBody),
        (status = 200, description = "The group under its new name", body = Group),
        (status = 404, description = "No group has this id or name", body = ErrorBody),
        (status = 409, description = "Another group already has this name (compared regardless of case)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn rename_group(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(group): Path<String>,
    ApiJson(input): ApiJson<GroupRename>,
) -> ApiResult<Json<Group>> {
    state.ldap.guard_group_rename(&group).await?;
    Ok(Json(state.directory.rename_group(&group, &input.name, &actor).await?))
}

/// Deletes a group and its memberships.
#[utoipa::path(delete, path = "/api/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id or name")),
    responses(
        (status = 204, description = "The group and its memberships were deleted"),
        (status = 404, description = "No group has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_group(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(group): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.delete_group(&group, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a group's members ordered by username.
#[utoipa::path(get, path = "/api/v1/groups/{group}/members", tag = "groups",
    params(("group" = String, Path, description = "Group id or name"), ListParams),
    responses(
        (status = 200, description = "One page of members; `next_cursor` is absent on the last page", body = Page<User>),
        (status = 404, description = "No group has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<HubState>,
    _: Reader,
    Path(group): Path<String>,
    ApiQuery(query): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(
        state
            .directory
            .list_members(&group, query.cursor, page_limit(query.limit, 100, 1000)?)
            .await?,
    ))
}

/// Adds a user to a group (idempotent).
#[utoipa::path(put, path = "/api/v1/groups/{group}/members/{user}", tag = "groups",
    params(("group" = String, Path, description = "Group id or name"), ("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "Whether membership changed (`false`: the user already was a member)", body = MembershipChange),
        (status = 404, description = "The group or the user does not exist", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Json<MembershipChange>> {
    let changed = state.directory.add_member(&group, &user, &actor).await?;
    Ok(Json(MembershipChange { changed }))
}

/// Removes a user from a group (idempotent).
#[utoipa::path(delete, path = "/api/v1/groups/{group}/members/{user}", tag = "groups",
    params(("group" = String, Path, description = "Group id or name"), ("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "Whether membership changed (`false`: the user was not a member)", body = MembershipChange),
        (status = 404, description = "The group or the user does not exist", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Json<MembershipChange>> {
    let changed = state.directory.remove_member(&group, &user, &actor).await?;
    Ok(Json(MembershipChange { changed }))
}
