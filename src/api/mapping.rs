//! `/api/v1/apps/{app}/mapping`: an app's attribute mapping as rows, and single-rule changes,
//! each validated like a whole mapping (a bad rule is refused with the reason and changes nothing).

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, ApiQuery, Reader};
use crate::domain::app::App;
use crate::domain::mapping::MappingRule;
use crate::domain::mapping_rows::MappingRow;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

/// The rule to remove.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    /// The SCIM attribute path of the rule (e.g. `emails[type eq "work"].value`), URL-encoded.
    pub target: String,
}

/// The app's mapping, one row per rule.
#[utoipa::path(get, path = "/api/v1/apps/{app}/mapping", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The mapping, one row per rule", body = Vec<MappingRow>),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn mapping_rows(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<MappingRow>>> {
    Ok(Json(state.apps.mapping_rows(&app).await?))
}

/// Sets the rule for one target attribute: replaces the rule for the same attribute or adds it.
#[utoipa::path(put, path = "/api/v1/apps/{app}/mapping/rules", tag = "apps", request_body = MappingRule,
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app with its new mapping", body = App),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
        (status = 422, description = "The rule is invalid; the mapping is unchanged", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn set_rule(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
    ApiJson(rule): ApiJson<MappingRule>,
) -> ApiResult<Json<App>> {
    Ok(Json(state.apps.set_mapping_rule(&app, rule, &actor).await?))
}

/// Removes the rule for one target attribute (`?target=...`).
#[utoipa::path(delete, path = "/api/v1/apps/{app}/mapping/rules", tag = "apps",
    params(("app" = String, Path, description = "App id or name"), RuleTarget),
    responses(
        (status = 200, description = "The app with its new mapping", body = App),
        (status = 404, description = "The app does not exist or has no rule for this target", body = ErrorBody),
        (status = 422, description = "The target path is malformed, or the mapping would be invalid without it (`userName` must stay mapped)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_rule(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
    ApiQuery(rule): ApiQuery<RuleTarget>,
) -> ApiResult<Json<App>> {
    Ok(Json(state.apps.remove_mapping_rule(&app, &rule.target, &actor).await?))
}
