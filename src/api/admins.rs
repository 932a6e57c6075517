//! `/api/v1/admins` and `/api/v1/audit`: administrator accounts (create with a one-time password,
//! reset it, change role, disable, enable) and the audit log of logins and account changes.
//! Administrators only.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{AdminPrincipal, ApiJson, ApiQuery};
use crate::domain::admin::{AdminAccount, AuditRecord, Role};
use crate::service::admins::AccountWithPassword;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// A new administrator account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    /// Login name.
    pub username: String,
    /// What it may do (default `administrator`).
    #[serde(default)]
    pub role: Option<Role>,
}

/// A change to an administrator account: any of its fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminChange {
    /// The new role.
    #[serde(default)]
    pub role: Option<Role>,
    /// `true` disables the account (its sessions end, its tokens stop), `false` enables it.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// An account with its one-time password, shown in this answer only.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminWithPassword {
    /// The account.
    #[serde(flatten)]
    pub account: AdminAccount,
    /// The one-time password; it must be replaced at the first log-in.
    pub one_time_password: String,
}

impl From<AccountWithPassword> for AdminWithPassword {
    fn from(value: AccountWithPassword) -> Self {
        Self {
            one_time_password: value.password.expose_secret().to_owned(),
            account: value.account,
        }
    }
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many lines (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Creates an administrator account with a one-time password.
#[utoipa::path(post, path = "/api/v1/admins", tag = "admins", request_body = NewAdmin,
    responses((status = 201, description = "Created; the one-time password is in this answer only", body = AdminWithPassword),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 422, description = "The username is not valid", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_admin(
    State(state): State<HubState>,
    AdminPrincipal(by): AdminPrincipal,
    ApiJson(input): ApiJson<NewAdmin>,
) -> ApiResult<(StatusCode, Json<AdminWithPassword>)> {
    let role = input.role.unwrap_or(Role::Administrator);
    let created = state.auth.create_admin(&input.username, role, &by).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Lists administrator accounts.
#[utoipa::path(get, path = "/api/v1/admins", tag = "admins",
    responses((status = 200, description = "Every administrator account, by username", body = Vec<AdminAccount>)),
    security(("bearer" = [])))]
pub async fn list_admins(State(state): State<HubState>, _: AdminPrincipal) -> ApiResult<Json<Vec<AdminAccount>>> {
    Ok(Json(state.auth.list_admins().await?))
}

/// Changes an administrator's role or disables or enables the account.
#[utoipa::path(patch, path = "/api/v1/admins/{username}", tag = "admins", request_body = AdminChange,
    params(("username" = String, Path, description = "Administrator username")),
    responses((status = 200, description = "The account after the change", body = AdminAccount),
        (status = 404, description = "No such administrator", body = ErrorBody),
        (status = 409, description = "The change would leave no enabled administrator, or disable yourself", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_admin(
    State(state): State<HubState>,
    AdminPrincipal(by): AdminPrincipal,
    Path(username): Path<String>,
    ApiJson(input): ApiJson<AdminChange>,
) -> ApiResult<Json<AdminAccount>> {
    let mut account = state.auth.admin(&username).await?;
    if let Some(role) = input.role {
        account = state.auth.set_role(&username, role, &by).await?;
    }
    if let Some(disabled) = input.disabled {
        account = state.auth.set_disabled(&username, disabled, &by).await?;
    }
    Ok(Json(account))
}

/// Replaces an administrator's password with a one-time password and ends their sessions.
#[utoipa::path(post, path = "/api/v1/admins/{username}/reset-password", tag = "admins",
    params(("username" = String, Path, description = "Administrator username")),
    responses((status = 200, description = "The one-time password, in this answer only", body = AdminWithPassword),
        (status = 404, description = "No such administrator", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<HubState>,
    AdminPrincipal(by): AdminPrincipal,
    Path(username): Path<String>,
) -> ApiResult<Json<AdminWithPassword>> {
    Ok(Json(state.auth.reset_password(&username, &by).await?.into()))
}

/// The audit log: logins, failures, locks, logouts and account changes, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admins", params(AuditQuery),
    responses((status = 200, description = "Audit lines, newest first", body = Vec<AuditRecord>)),
    security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<HubState>,
    _: AdminPrincipal,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    Ok(Json(state.auth.audit_log(query.limit.unwrap_or(100), None).await?))
}
