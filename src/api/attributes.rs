//! `/api/v1/attributes`: custom profile attribute definitions.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, Reader};
use crate::domain::attribute::AttributeDefinition;
use crate::service::directory::{AttributeUpdate, NewAttribute};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// Defines a custom attribute.
#[utoipa::path(post, path = "/api/v1/attributes", tag = "attributes", request_body = NewAttribute,
    responses(
        (status = 201, description = "The attribute was defined", body = AttributeDefinition),
        (status = 409, description = "An attribute with this name already exists", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_attribute(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(input): ApiJson<NewAttribute>,
) -> ApiResult<(StatusCode, Json<AttributeDefinition>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.directory.create_attribute(input, &actor).await?),
    ))
}

/// Lists custom attribute definitions.
#[utoipa::path(get, path = "/api/v1/attributes", tag = "attributes",
    responses(
        (status = 200, description = "Every custom attribute definition", body = Vec<AttributeDefinition>),
    ),
    security(("bearer" = [])))]
pub async fn list_attributes(State(state): State<HubState>, _: Reader) -> ApiResult<Json<Vec<AttributeDefinition>>> {
    Ok(Json(state.directory.list_attributes().await?))
}

/// One custom attribute definition.
#[utoipa::path(get, path = "/api/v1/attributes/{name}", tag = "attributes",
    params(("name" = String, Path, description = "Attribute name")),
    responses(
        (status = 200, description = "The attribute definition", body = AttributeDefinition),
        (status = 404, description = "No attribute has this name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_attribute(
    State(state): State<HubState>,
    _: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<AttributeDefinition>> {
    Ok(Json(state.directory.get_attribute(&name).await?))
}

/// Changes a custom attribute definition.
#[utoipa::path(patch, path = "/api/v1/attributes/{name}", tag = "attributes", request_body = AttributeUpdate,
    params(("name" = String, Path, description = "Attribute name")),
    responses(
        (status = 200, description = "The definition after the change", body = AttributeDefinition),
        (status = 404, description = "No attribute has this name", body = ErrorBody),
        (status = 409, description = "Refused while users hold values: a type change, or making it required while some users lack a value", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_attribute(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(name): Path<String>,
    ApiJson(update): ApiJson<AttributeUpdate>,
) -> ApiResult<Json<AttributeDefinition>> {
    Ok(Json(state.directory.update_attribute(&name, update, &actor).await?))
}

/// Deletes a custom attribute definition that no user holds a value for.
#[utoipa::path(delete, path = "/api/v1/attributes/{name}", tag = "attributes",
    params(("name" = String, Path, description = "Attribute name")),
    responses(
        (status = 204, description = "The definition was deleted"),
        (status = 404, description = "No attribute has this name", body = ErrorBody),
        (status = 409, description = "Users still hold values for this attribute", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_attribute(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.delete_attribute(&name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
