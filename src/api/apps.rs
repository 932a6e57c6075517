//! `/api/v1/apps`, `/api/v1/policies`, `/api/v1/presets`, `/api/v1/jobs`, `/api/v1/sync-runs`:
//! connecting apps and driving provisioning. Anything that contacts a target is queued.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, ApiQuery, Reader};
use crate::domain::app::{App, AppAccount, Policy};
use crate::domain::job::Job;
use crate::domain::mapping::Preset;
use crate::service::apps::{AppUpdate, AppUpdated, JobView, NewApp, NewPolicy, PlanLine, PolicyView, SyncRun};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A queued job.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedJob {
    /// Follow it at `/api/v1/jobs/{job_id}`.
    pub job_id: String,
}

/// Options of a synchronisation.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Only compute the plan; contact nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to a synchronisation request: a plan (dry run) or a queued run.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncAnswer {
    /// The plan, for a dry run.
    pub plan: Option<Vec<PlanLine>>,
    /// The queued run, otherwise.
    pub run: Option<SyncRun>,
}

/// Query of the policy listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuery {
    /// Only the policies of this app (id or name).
    pub app: Option<String>,
}

/// Connects an app; its connection is checked in the background.
#[utoipa::path(post, path = "/api/v1/apps", tag = "apps", request_body = NewApp,
    responses(
        (status = 201, description = "The app was created; its connection check is queued", body = App),
        (status = 409, description = "An app with this name already exists", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_app(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(input): ApiJson<NewApp>,
) -> ApiResult<(StatusCode, Json<App>)> {
    Ok((StatusCode::CREATED, Json(state.apps.create_app(input, &actor).await?)))
}

/// Lists apps.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps",
    responses(
        (status = 200, description = "Every app", body = Vec<App>),
    ),
    security(("bearer" = [])))]
pub async fn list_apps(State(state): State<HubState>, _: Reader) -> ApiResult<Json<Vec<App>>> {
    Ok(Json(state.apps.list_apps().await?))
}

/// One app, by id or name (never its token).
#[utoipa::path(get, path = "/api/v1/apps/{app}", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app", body = App),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_app(State(state): State<HubState>, _: Reader, Path(app): Path<String>) -> ApiResult<Json<App>> {
    Ok(Json(state.apps.get_app(&app).await?))
}

/// Changes an app: only the fields given (features and deprovisioning field by field). The answer
/// is the app, with `notices` saying what a deprovisioning change does to existing accounts.
#[utoipa::path(patch, path = "/api/v1/apps/{app}", tag = "apps", request_body = AppUpdate, params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app after the change, with notices about existing accounts", body = AppUpdated),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
        (status = 409, description = "Another app has this name, or the app was changed meanwhile", body = ErrorBody),
        (status = 422, description = "The input is invalid; `error.field` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_app(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
    ApiJson(update): ApiJson<AppUpdate>,
) -> ApiResult<Json<AppUpdated>> {
    Ok(Json(state.apps.update_app_explained(&app, update, &actor).await?))
}

/// Removes an app from the hub.
#[utoipa::path(delete, path = "/api/v1/apps/{app}", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 204, description = "The app was removed; its accounts in the target are left as they are"),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(app): Path<String>,
) -> ApiResult<StatusCode> {
    state.apps.delete_app(&app, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a connection check.
#[utoipa::path(post, path = "/api/v1/apps/{app}/test", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 202, description = "The connection check was queued", body = QueuedJob),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn test_app(
    State(state): State<HubState>,
    _: Admin,
    Path(app): Path<String>,
) -> ApiResult<(StatusCode, Json<QueuedJob>)> {
    let job_id = state.apps.test_connection(&app).await?;
    state.wake.jobs_queued();
    Ok((StatusCode::ACCEPTED, Json(QueuedJob { job_id })))
}

/// The SCIM resource a user would be sent.
#[utoipa::path(get, path = "/api/v1/apps/{app}/preview/{user}", tag = "apps",
    params(("app" = String, Path, description = "App id or name"), ("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, description = "The SCIM User resource the app would receive", body = Object),
        (status = 404, description = "The app or the user does not exist", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<HubState>,
    _: Reader,
    Path((app, user)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(state.apps.preview(&app, &user).await?))
}

/// The accounts the engine manages in an app.
#[utoipa::path(get, path = "/api/v1/apps/{app}/accounts", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The accounts the engine manages in the app", body = Vec<AppAccount>),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn accounts(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<AppAccount>>> {
    Ok(Json(state.apps.accounts(&app).await?))
}

/// Queues one user's provisioning now.
#[utoipa::path(post, path = "/api/v1/apps/{app}/provision/{user}", tag = "apps",
    params(("app" = String, Path, description = "App id or name"), ("user" = String, Path, description = "User id or username")),
    responses(
        (status = 202, description = "The user's provisioning was queued", body = QueuedJob),
        (status = 404, description = "The app or the user does not exist", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn provision(
    State(state): State<HubState>,
    _: Admin,
    Path((app, user)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<QueuedJob>)> {
    let job_id = state.apps.provision_now(&app, &user).await?;
    state.wake.jobs_queued();
    Ok((StatusCode::ACCEPTED, Json(QueuedJob { job_id })))
}

/// Plans (dry run) or queues a full reconciliation of an app.
#[utoipa::path(post, path = "/api/v1/apps/{app}/sync", tag = "apps", request_body = SyncRequest, params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "Dry run: the plan; nothing was contacted", body = SyncAnswer),
        (status = 202, description = "The reconciliation run was queued", body = SyncAnswer),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn sync(
    State(state): State<HubState>,
    _: Admin,
    Path(app): Path<String>,
    ApiJson(request): ApiJson<SyncRequest>,
) -> ApiResult<(StatusCode, Json<SyncAnswer>)> {
    if request.dry_run {
        let plan = state.apps.dry_run(&app).await?;
        return Ok((
            StatusCode::OK,
            Json(SyncAnswer {
                plan: Some(plan),
                run: None,
            }),
        ));
    }
    let run = state.apps.sync(&app).await?;
    state.wake.jobs_queued();
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncAnswer {
            plan: None,
            run: Some(run),
        }),
    ))
}

/// Progress of a full reconciliation.
#[utoipa::path(get, path = "/api/v1/sync-runs/{run}", tag = "apps", params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run's progress", body = SyncRun),
        (status = 404, description = "No run has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn sync_run(State(state): State<HubState>, _: Reader, Path(run): Path<String>) -> ApiResult<Json<SyncRun>> {
    Ok(Json(state.apps.sync_progress(&run).await?))
}

/// A job and what it did.
#[utoipa::path(get, path = "/api/v1/jobs/{job}", tag = "apps", params(("job" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job and what it did", body = JobView),
        (status = 404, description = "No job has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn job(State(state): State<HubState>, _: Reader, Path(job): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.apps.job(&job).await?))
}

/// The built-in presets.
#[utoipa::path(get, path = "/api/v1/presets", tag = "apps",
    responses(
        (status = 200, description = "Every built-in preset", body = Vec<Preset>),
    ),
    security(("bearer" = [])))]
pub async fn list_presets(State(state): State<HubState>, _: Reader) -> ApiResult<Json<Vec<Preset>>> {
    Ok(Json(state.apps.presets()?))
}

/// Which dead letters to act on.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSelection {
    /// One job id; absent: all of the app's dead letters.
    #[serde(default)]
    pub job: Option<String>,
}

/// How many jobs an action touched.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Affected {
    /// The count.
    pub affected: u64,
}

/// Pauses an app: nothing is sent to it until it is resumed; work waits in the queue.
#[utoipa::path(post, path = "/api/v1/apps/{app}/pause", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app, now paused", body = App),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn pause(State(state): State<HubState>, _: Admin, Path(app): Path<String>) -> ApiResult<Json<App>> {
    Ok(Json(state.apps.pause(&app).await?))
}

/// Resumes a paused or quarantined app.
#[utoipa::path(post, path = "/api/v1/apps/{app}/resume", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app, now active", body = App),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn resume(State(state): State<HubState>, _: Admin, Path(app): Path<String>) -> ApiResult<Json<App>> {
    let app = state.apps.resume(&app).await?;
    state.wake.jobs_queued();
    Ok(Json(app))
}

/// Jobs of an app that failed permanently or exhausted their retries, with their last error.
#[utoipa::path(get, path = "/api/v1/apps/{app}/dead-letters", tag = "apps", params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "The app's dead letters", body = Vec<Job>),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<HubState>,
    _: Reader,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(state.apps.dead_letters(&app).await?))
}

/// Queues dead letters again: one (`job`) or all of the app.
#[utoipa::path(post, path = "/api/v1/apps/{app}/dead-letters/retry", tag = "apps", request_body = DeadLetterSelection,
    params(("app" = String, Path, description = "App id or name")),
    responses(
        (status = 200, description = "How many jobs were queued again", body = Affected),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_dead_letters(
    State(state): State<HubState>,
    _: Admin,
    Path(app): Path<String>,
    ApiJson(selection): ApiJson<DeadLetterSelection>,
) -> ApiResult<Json<Affected>> {
    let affected = state.apps.retry_dead_letters(&app, selection.job.as_deref()).await?;
    state.wake.jobs_queued();
    Ok(Json(Affected { affected }))
}

/// Discards dead letters: one (`job`) or all of the app.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/dead-letters", tag = "apps",
    params(("app" = String, Path, description = "App id or name"), DeadLetterSelection),
    responses(
        (status = 200, description = "How many jobs were discarded", body = Affected),
        (status = 404, description = "No app has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn discard_dead_letters(
    State(state): State<HubState>,
    _: Admin,
    Path(app): Path<String>,
    ApiQuery(selection): ApiQuery<DeadLetterSelection>,
) -> ApiResult<Json<Affected>> {
    Ok(Json(Affected {
        affected: state.apps.discard_dead_letters(&app, selection.job.as_deref()).await?,
    }))
}

/// Links a group to an app: its active members get accounts there.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = NewPolicy,
    responses(
        (status = 201, description = "The policy was created", body = Policy),
        (status = 404, description = "The app or the group does not exist", body = ErrorBody),
        (status = 409, description = "The group already has a policy for this app", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_policy(
    State(state): State<HubState>,
    Admin(actor): Admin,
    ApiJson(input): ApiJson<NewPolicy>,
) -> ApiResult<(StatusCode, Json<Policy>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.apps.create_policy(input, &actor).await?),
    ))
}

/// Lists policies.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(PolicyQuery),
    responses(
        (status = 200, description = "The policies, of one app when `app` is given", body = Vec<PolicyView>),
    ),
    security(("bearer" = [])))]
pub async fn list_policies(
    State(state): State<HubState>,
    _: Reader,
    ApiQuery(query): ApiQuery<PolicyQuery>,
) -> ApiResult<Json<Vec<PolicyView>>> {
    Ok(Json(state.apps.list_policies(query.app.as_deref()).await?))
}

/// Removes a policy, by id or name.
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path, description = "Policy id or name")),
    responses(
        (status = 200, description = "The removed policy", body = Policy),
        (status = 404, description = "No policy has this id or name", body = ErrorBody),
        (status = 409, description = "Several policies have this name: delete one by its id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_policy(
    State(state): State<HubState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(state.apps.delete_policy(&id, &actor).await?))
}
