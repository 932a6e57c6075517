//! Request extractors that turn every malformed input into the API's own error body, and the
//! bearer-token authentication of admin routes.

use super::HubState;
use super::error::ApiError;
use crate::domain::Error;
use crate::domain::admin::{Actor, Principal};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; malformed JSON is a 400, an oversized body a 413, both with the API error body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<HubState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &HubState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError(json_rejection(rejection, state.max_body_bytes))),
        }
    }
}

fn json_rejection(rejection: JsonRejection, limit: usize) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge { limit };
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::BadRequest("the body must be JSON with Content-Type: application/json".into())
        }
        JsonRejection::JsonSyntaxError(e) => {
            Error::BadRequest(format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            Error::BadRequest(format!("the body does not have the expected shape: {}", e.body_text()))
        }
        other => Error::BadRequest(other.body_text()),
    }
}

/// A query string; a malformed one is a 400 with the API error body.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError(Error::BadRequest(format!(
                "bad query string: {}",
                e.body_text()
            )))),
            Err(other) => Err(ApiError(Error::BadRequest(other.body_text()))),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, as authentication reads it (the rate limit
/// counts requests by the same reading).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Resolves `Authorization: Bearer <token>` to who the token acts for.
async fn bearer_principal(parts: &Parts, state: &HubState) -> Result<Principal, ApiError> {
    if !parts.headers.contains_key(AUTHORIZATION) {
        return Err(
            Error::Unauthenticated("an API token is required: send Authorization: Bearer <token>".into()).into(),
        );
    }
    let token = bearer_token(&parts.headers)
        .ok_or_else(|| Error::Unauthenticated("the Authorization header must be 'Bearer <token>'".into()))?;
    Ok(state.auth.authenticate(token).await?)
}

/// An authenticated caller with the administrator role: the only one that may change anything.
/// Handlers that write take this; an auditor's token gets a 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Actor);

impl FromRequestParts<HubState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, Self::Rejection> {
        let principal = bearer_principal(parts, state).await?;
        if !principal.role.can_write() {
            return Err(ApiError(Error::read_only()));
        }
        Ok(Admin(principal.actor))
    }
}

/// An authenticated caller with any role: handlers that only read take this.
#[derive(Debug, Clone)]
pub struct Reader;

impl FromRequestParts<HubState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, Self::Rejection> {
        bearer_principal(parts, state).await?;
        Ok(Reader)
    }
}

/// An authenticated administrator with the whole principal (for tokens, which act for the
/// account that issues them).
#[derive(Debug, Clone)]
pub struct AdminPrincipal(pub Principal);

impl FromRequestParts<HubState> for AdminPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, Self::Rejection> {
        let principal = bearer_principal(parts, state).await?;
        if !principal.role.can_write() {
            return Err(ApiError(Error::read_only()));
        }
        Ok(AdminPrincipal(principal))
    }
}

/// The client's address, when the server recorded it (absent for in-process test requests).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Ok(ClientAddr(addr))
    }
}
