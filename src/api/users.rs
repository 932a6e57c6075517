//! `/api/v1/users`: create, read, list and search, update, deactivate, delete.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, ApiQuery, Reader};
use crate::domain::Page;
use crate::domain::group::Group;
use crate::domain::user::{NewUser, User, UserSource, UserUpdate};
use crate::domain::values::page_limit;
use crate::store::UserQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

/// Query parameters of the user listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsers {
    /// Text matched (case-insensitively, anywhere) against username, email and full name.
    pub q: Option<String>,
    /// `true` for active users only, `false` for inactive only.
    pub active: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "The user was created", body = User),
        (status = 409, description = "Another user already has this username (compared regardless of case)", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state.directory.create_user(input, UserSource::Local, &actor).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Lists users ordered by username, with search and cursor paging.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListUsers),
    responses(
        (status = 200, description = "One page of users; `next_cursor` is absent on the last page", body = Page<User>),
    ),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<HubState>,
    _: Reader,
    ApiQuery(query): ApiQuery<ListUsers>,
) -> ApiResult<Json<Page<User>>> {
    let page = state
        .directory
        .list_users(&UserQuery {
            search: query.q,
            active: query.active,
            group: None,
            cursor: query.cursor,
            limit: page_limit(query.limit, 100, 1000)?,
        })
        .await?;
    Ok(Json(page))
}

/// One user, by id or username.
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_user(State(state): State<HubState>, _: Reader, Path(user): Path<String>) -> ApiResult<Json<User>> {
    Ok(Json(state.directory.get_user(&user).await?))
}

/// Changes a user: absent fields stay, `null` clears.
#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", request_body = UserUpdate,
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "The user after the change", body = User),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
        (status = 409, description = "Another user already has this username (compared regardless of case), or a changed field is read from an LDAP source", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(user): Path<String>,
    ApiJson(update): ApiJson<UserUpdate>,
) -> ApiResult<Json<User>> {
    state.ldap.guard_user_update(&user, &update).await?;
    Ok(Json(state.directory.update_user(&user, update, &actor).await?))
}

/// Deactivates a user (their app accounts get deprovisioned).
#[utoipa::path(post, path = "/api/v1/users/{user}/deactivate", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 409, description = "An LDAP source owns the user: its entry decides whether it is active", body = ErrorBody),
        (status = 200, description = "The user, now inactive", body = User),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn deactivate_user(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(user): Path<String>,
) -> ApiResult<Json<User>> {
    state.ldap.guard_user_active(&user, false).await?;
    Ok(Json(state.directory.set_active(&user, false, &actor).await?))
}

/// Reactivates a user.
#[utoipa::path(post, path = "/api/v1/users/{user}/activate", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 409, description = "An LDAP source owns the user: its entry decides whether it is active", body = ErrorBody),
        (status = 200, description = "The user, now active", body = User),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn activate_user(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(user): Path<String>,
) -> ApiResult<Json<User>> {
    state.ldap.guard_user_active(&user, true).await?;
    Ok(Json(state.directory.set_active(&user, true, &actor).await?))
}

/// Deletes a user and their memberships.
#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 204, description = "The user and their memberships were deleted"),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(user): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.delete_user(&user, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The groups a user belongs to.
#[utoipa::path(get, path = "/api/v1/users/{user}/groups", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "The groups the user belongs to", body = Vec<Group>),
        (status = 404, description = "No user has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn user_groups(
    State(state): State<HubState>,
    _: Reader,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(state.directory.groups_of_user(&user).await?))
}
