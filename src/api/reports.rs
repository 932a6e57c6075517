//! `/api/v1/reports` and `/api/v1/users/{user}/timeline`: the provisioning report.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiQuery, Reader};
use crate::domain::Page;
use crate::domain::job::Report;
use crate::service::reports::{ReportParams, TimelineEntry};
use axum::Json;
use axum::extract::{Path, State};

/// Searches provisioning report records, newest first. No filters: everything in the time span.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(ReportParams),
    responses(
        (status = 200, description = "One page of records, newest first; `next_cursor` is absent on the last page", body = Page<Report>),
        (status = 400, description = "The search is malformed: an unknown value, app or time span", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<HubState>,
    _: Reader,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> ApiResult<Json<Page<Report>>> {
    Ok(Json(state.reports.search(&params).await?))
}

/// Everything that happened to one user across the directory and every app, oldest first.
#[utoipa::path(get, path = "/api/v1/users/{user}/timeline", tag = "reports",
    params(("user" = String, Path, description = "User id or username (also of a deleted user)")),
    responses(
        (status = 200, description = "The user's events, oldest first", body = Vec<TimelineEntry>),
        (status = 404, description = "No user, present or deleted, has this id or username", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn timeline(
    State(state): State<HubState>,
    _: Reader,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<TimelineEntry>>> {
    Ok(Json(state.reports.timeline(&user).await?))
}
