//! `/api/v1/changes`: the directory change log, in sequence order.

use super::HubState;
use super::error::ApiResult;
use super::extract::{ApiQuery, Reader};
use crate::domain::change::ChangeEvent;
use crate::domain::values::page_limit;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

/// Query parameters of the change log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesParams {
    /// Return events with a sequence number greater than this (default 0).
    pub after: Option<i64>,
    /// At most this many events, 1 to 10000 (default 100).
    pub limit: Option<u32>,
}

/// Change-log events after a sequence number, oldest first.
#[utoipa::path(get, path = "/api/v1/changes", tag = "changes", params(ChangesParams),
    responses(
        (status = 200, description = "The events after `after`, oldest first; empty when there are none", body = Vec<ChangeEvent>),
    ),
    security(("bearer" = [])))]
pub async fn list_changes(
    State(state): State<HubState>,
    _: Reader,
    ApiQuery(query): ApiQuery<ChangesParams>,
) -> ApiResult<Json<Vec<ChangeEvent>>> {
    Ok(Json(
        state
            .directory
            .changes_after(query.after.unwrap_or(0), page_limit(query.limit, 100, 10_000)?)
            .await?,
    ))
}
