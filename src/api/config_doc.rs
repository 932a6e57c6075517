//! `/api/v1/config`: configuration as code. Export the hub's configuration as a TOML document,
//! plan a document (what would change) and apply it (in one transaction). Administrators only.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson};
use crate::service::config_doc::{ConfigChanges, ConfigExport, ConfigRequest};
use axum::Json;
use axum::extract::State;

/// The hub's attributes, apps, policies (with the groups they name) and LDAP sources as a TOML
/// document (no secrets).
#[utoipa::path(get, path = "/api/v1/config", tag = "config",
    responses(
        (status = 200, description = "The configuration document", body = ConfigExport),
        (status = 403, description = "Only administrators export the configuration", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn export_config(State(state): State<HubState>, _: Admin) -> ApiResult<Json<ConfigExport>> {
    Ok(Json(ConfigExport {
        document: state.config.export().await?,
    }))
}

/// What applying a document would change, object by object; nothing is changed.
#[utoipa::path(post, path = "/api/v1/config/plan", tag = "config",
    request_body = ConfigRequest,
    responses(
        (status = 200, description = "The changes an apply would make (empty: none)", body = ConfigChanges),
        (status = 422, description = "The document is refused; `error.line` is where", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn plan_config(
    State(state): State<HubState>,
    _: Admin,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> ApiResult<Json<ConfigChanges>> {
    Ok(Json(ConfigChanges {
        changes: state.config.plan(&request).await?,
    }))
}

/// Applies a document in one transaction: the changes its plan lists, or none of them.
#[utoipa::path(post, path = "/api/v1/config/apply", tag = "config",
    request_body = ConfigRequest,
    responses(
        (status = 200, description = "The changes made (empty: the hub already matched)", body = ConfigChanges),
        (status = 409, description = "A write was refused (a name taken, an attribute still holding values); nothing changed", body = ErrorBody),
        (status = 422, description = "The document is refused; `error.line` is where; nothing changed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn apply_config(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> ApiResult<Json<ConfigChanges>> {
    let changes = state.config.apply(&request, &actor).await?;
    if !changes.is_empty() {
        state.wake.changed();
    }
    Ok(Json(ConfigChanges { changes }))
}
