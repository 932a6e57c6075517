//! `/api/v1/apps/{app}/imports`, `/reconciliations`, `/runs`, `/conflicts`, `/schedule` and
//! `/api/v1/runs/{run}`: imports and reconciliations. A request only queues a run; the engine
//! reads the target.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, ApiQuery, Reader};
use crate::domain::target_run::{ConflictResolution, ConflictStatus, ImportConflict, RunItem, TargetRun};
use crate::service::apps::RunSchedule;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Options of an import.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Only plan: link, create and queue nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Options of a reconciliation.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Fix what the app's reconcile setting allows; without it, only report.
    #[serde(default)]
    pub apply: bool,
}

/// Which runs or items a listing returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ItemsQuery {
    /// Items after this position (0: from the first).
    #[serde(default)]
    pub after: i64,
    /// At most this many (default 500, at most 10,000).
    pub limit: Option<u32>,
}

/// Which conflicts a listing returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    /// Only conflicts in this state (`open`, `linked`, `ignored`); default all.
    pub status: Option<ConflictStatus>,
}

/// Queues an import of an app's accounts (the app's `import` feature must be on).
#[utoipa::path(post, path = "/api/v1/apps/{app}/imports", tag = "imports", request_body = ImportRequest,
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 202, description = "The run was queued; follow it at /api/v1/runs/{id}", body = TargetRun),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
        (status = 422, description = "The app's import feature is off", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn start_import(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
    ApiJson(request): ApiJson<ImportRequest>,
) -> ApiResult<(StatusCode, Json<TargetRun>)> {
    let run = state.apps.start_import(&app, request.dry_run, &actor).await?;
    state.wake.jobs_queued();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Queues a reconciliation of an app with what its target holds.
#[utoipa::path(post, path = "/api/v1/apps/{app}/reconciliations", tag = "imports", request_body = ReconcileRequest,
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 202, description = "The run was queued; follow it at /api/v1/runs/{id}", body = TargetRun),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn start_reconcile(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
    ApiJson(request): ApiJson<ReconcileRequest>,
) -> ApiResult<(StatusCode, Json<TargetRun>)> {
    let run = state.apps.start_reconcile(&app, request.apply, &actor).await?;
    state.wake.jobs_queued();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// The newest imports and reconciliations of an app, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/runs", tag = "imports",
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The runs", body = Vec<TargetRun>),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_runs(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<TargetRun>>> {
    Ok(Json(state.apps.target_runs(&app, 50).await?))
}

/// One import or reconciliation: where it is and its counts.
#[utoipa::path(get, path = "/api/v1/runs/{run}", tag = "imports",
    params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = TargetRun),
        (status = 404, description = "No run has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_run(State(state): State<HubState>, _: Reader, Path(run): Path<String>) -> ApiResult<Json<TargetRun>> {
    Ok(Json(state.apps.target_run(&run).await?))
}

/// A run's items (account outcomes, differences found), in order.
#[utoipa::path(get, path = "/api/v1/runs/{run}/items", tag = "imports",
    params(("run" = String, Path, description = "Run id"), ItemsQuery),
    responses(
        (status = 200, description = "The items", body = Vec<RunItem>),
        (status = 404, description = "No run has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn run_items(
    State(state): State<HubState>,
    _: Reader,
    Path(run): Path<String>,
    ApiQuery(query): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<Vec<RunItem>>> {
    Ok(Json(
        state
            .apps
            .target_run_items(&run, query.after, query.limit.unwrap_or(500))
            .await?,
    ))
}

/// The import conflicts of an app.
#[utoipa::path(get, path = "/api/v1/apps/{app}/conflicts", tag = "imports",
    params(("app" = String, Path, description = "App id or name"), ConflictQuery),
    responses(
        (status = 200, description = "The conflicts, oldest first", body = Vec<ImportConflict>),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_conflicts(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
    ApiQuery(query): ApiQuery<ConflictQuery>,
) -> ApiResult<Json<Vec<ImportConflict>>> {
    Ok(Json(state.apps.import_conflicts(&app, query.status).await?))
}

/// Resolves an open import conflict: links its account to a user, or ignores it.
#[utoipa::path(post, path = "/api/v1/apps/{app}/conflicts/{conflict}", tag = "imports", request_body = ConflictResolution,
    params(("app" = String, Path, description = "App id or name"), ("conflict" = String, Path, description = "Conflict id")),
    responses(
        (status = 200, description = "The conflict, resolved", body = ImportConflict),
        (status = 404, description = "No such app, conflict or user", body = ErrorBody),
        (status = 409, description = "Resolved already, or the user or account is linked already", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn resolve_conflict(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path((app, conflict)): Path<(String, String)>,
    ApiJson(resolution): ApiJson<ConflictResolution>,
) -> ApiResult<Json<ImportConflict>> {
    Ok(Json(
        state.apps.resolve_conflict(&app, &conflict, resolution, &actor).await?,
    ))
}

/// When an app's scheduled import and reconciliation are next due.
#[utoipa::path(get, path = "/api/v1/apps/{app}/schedule", tag = "imports",
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The next scheduled runs", body = RunSchedule),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn schedule(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
) -> ApiResult<Json<RunSchedule>> {
    Ok(Json(state.apps.run_schedule(&app).await?))
}
