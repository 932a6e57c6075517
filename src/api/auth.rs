//! `/api/v1/auth/login` and `/api/v1/tokens`: administrator log-in and API token management.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, AdminPrincipal, ApiJson, ClientAddr};
use crate::domain::admin::{ApiToken, TokenScope};
use crate::service::auth::IssuedToken;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Password log-in.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Administrator username.
    pub username: String,
    /// Current password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Replaces the password (required while the one-time password is in use).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub new_password: Option<SecretString>,
    /// Name of the API token to issue (default `login`).
    #[serde(default)]
    pub token_name: Option<String>,
}

/// A token request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label to recognise the token by.
    pub name: String,
}

/// A newly issued token: the secret is shown here once and never again.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedTokenBody {
    /// The stored record.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The bearer token.
    pub secret: String,
}

impl From<IssuedToken> for IssuedTokenBody {
    fn from(value: IssuedToken) -> Self {
        Self {
            secret: value.secret.expose_secret().to_owned(),
            token: value.token,
        }
    }
}

/// Exchanges an administrator's password for an API token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 201, description = "A new API token; its secret is shown only in this answer", body = IssuedTokenBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "The one-time password must be replaced: log in again with `new_password`", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<HubState>,
    ClientAddr(remote): ClientAddr,
    ApiJson(input): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<IssuedTokenBody>)> {
    let name = input.token_name.unwrap_or_else(|| "login".to_owned());
    let issued = state
        .auth
        .login(
            &input.username,
            &input.password,
            input.new_password.as_ref(),
            &name,
            remote.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// Issues a new API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = NewToken,
    responses(
        (status = 201, description = "The new API token; its secret is shown only in this answer", body = IssuedTokenBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<HubState>,
    AdminPrincipal(principal): AdminPrincipal,
    ApiJson(input): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedTokenBody>)> {
    let issued = state.auth.create_token(&input.name, &principal).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// Lists API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth",
    responses(
        (status = 200, description = "Every API token, without secrets", body = Vec<ApiToken>),
    ),
    security(("bearer" = [])))]
pub async fn list_tokens(State(state): State<HubState>, _: Admin) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.auth.list_tokens().await?))
}

/// Revokes an API token; it authenticates nothing afterwards.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "The revoked token", body = ApiToken),
        (status = 404, description = "No API token has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<HubState>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let id = Uuid::parse_str(&id).map_err(|_| crate::domain::Error::not_found("token", &id))?;
    Ok(Json(state.auth.revoke_token(id).await?))
}

/// Issues a SCIM token for an identity provider (its secret is shown only in this answer).
#[utoipa::path(post, path = "/api/v1/scim-tokens", tag = "auth", request_body = NewToken,
    responses(
        (status = 201, description = "The new SCIM token; its secret is shown only in this answer", body = IssuedTokenBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_scim_token(
    State(state): State<HubState>,
    AdminPrincipal(principal): AdminPrincipal,
    ApiJson(input): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedTokenBody>)> {
    let issued = state.auth.create_scim_token(&input.name, &principal).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// Lists SCIM tokens (never their secrets), newest first.
#[utoipa::path(get, path = "/api/v1/scim-tokens", tag = "auth",
    responses(
        (status = 200, description = "Every SCIM token, newest first, without secrets", body = Vec<ApiToken>),
    ),
    security(("bearer" = [])))]
pub async fn list_scim_tokens(State(state): State<HubState>, _: Admin) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.auth.list_tokens_of(TokenScope::Scim).await?))
}

/// Revokes a SCIM token: the identity provider using it is refused from then on.
#[utoipa::path(delete, path = "/api/v1/scim-tokens/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "The revoked token", body = ApiToken),
        (status = 404, description = "No SCIM token has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_scim_token(
    State(state): State<HubState>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let id = Uuid::parse_str(&id).map_err(|_| crate::domain::Error::not_found("token", &id))?;
    Ok(Json(state.auth.revoke_of(id, TokenScope::Scim).await?))
}
