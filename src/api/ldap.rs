//! `/api/v1/ldap-sources` and `/api/v1/ldap-runs/{run}`: LDAP and Active Directory sources, their
//! syncs and connection tests. A request only queues a run; the source runner reads the server.

use super::HubState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Admin, ApiJson, Reader};
use crate::domain::job::Report;
use crate::domain::ldap::run::{LdapRun, SyncMode};
use crate::domain::ldap::{LdapSource, LdapSourceUpdate, NewLdapSource};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Options of a sync.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// `full` (default) or `incremental` (entries changed since the last sync; needs the
    /// source's change marker).
    #[serde(default)]
    pub mode: Option<SyncMode>,
    /// Only plan: the run's report records say what a sync would do; nothing changes.
    #[serde(default)]
    pub dry_run: bool,
}

/// Creates an LDAP source (settings checked, bind password stored encrypted).
#[utoipa::path(post, path = "/api/v1/ldap-sources", tag = "ldap", request_body = NewLdapSource,
    responses(
        (status = 201, description = "The source", body = LdapSource),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A setting is wrong (the field says which)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_ldap_source(
    State(state): State<HubState>,
    _: Admin,
    ApiJson(input): ApiJson<NewLdapSource>,
) -> ApiResult<(StatusCode, Json<LdapSource>)> {
    Ok((StatusCode::CREATED, Json(state.ldap.create_source(input).await?)))
}

/// Every LDAP source.
#[utoipa::path(get, path = "/api/v1/ldap-sources", tag = "ldap",
    responses((status = 200, description = "The sources", body = Vec<LdapSource>)),
    security(("bearer" = [])))]
pub async fn list_ldap_sources(State(state): State<HubState>, _: Reader) -> ApiResult<Json<Vec<LdapSource>>> {
    Ok(Json(state.ldap.list_sources().await?))
}

/// One LDAP source.
#[utoipa::path(get, path = "/api/v1/ldap-sources/{source}", tag = "ldap",
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 200, description = "The source", body = LdapSource),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_ldap_source(
    State(state): State<HubState>,
    _: Reader,
    Path(source): Path<String>,
) -> ApiResult<Json<LdapSource>> {
    Ok(Json(state.ldap.get_source(&source).await?))
}

/// Changes a source's name, bind password or settings (only those given).
#[utoipa::path(patch, path = "/api/v1/ldap-sources/{source}", tag = "ldap", request_body = LdapSourceUpdate,
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 200, description = "The source", body = LdapSource),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
        (status = 422, description = "A setting is wrong", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_ldap_source(
    State(state): State<HubState>,
    _: Admin,
    Path(source): Path<String>,
    ApiJson(update): ApiJson<LdapSourceUpdate>,
) -> ApiResult<Json<LdapSource>> {
    Ok(Json(state.ldap.update_source(&source, update).await?))
}

/// Deletes a source; its users and groups stay, owned by nobody.
#[utoipa::path(delete, path = "/api/v1/ldap-sources/{source}", tag = "ldap",
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 200, description = "The deleted source", body = LdapSource),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_ldap_source(
    State(state): State<HubState>,
    _: Admin,
    Path(source): Path<String>,
) -> ApiResult<Json<LdapSource>> {
    Ok(Json(state.ldap.delete_source(&source).await?))
}

/// Queues a sync of a source.
#[utoipa::path(post, path = "/api/v1/ldap-sources/{source}/syncs", tag = "ldap", request_body = SyncRequest,
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 202, description = "The run was queued; follow it at /api/v1/ldap-runs/{id}", body = LdapRun),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
        (status = 422, description = "An incremental sync without a change marker", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn start_ldap_sync(
    State(state): State<HubState>,
    _: Admin,
    Path(source): Path<String>,
    ApiJson(request): ApiJson<SyncRequest>,
) -> ApiResult<(StatusCode, Json<LdapRun>)> {
    let mode = request.mode.unwrap_or(SyncMode::Full);
    let run = state.ldap.queue_sync(&source, mode, request.dry_run).await?;
    state.wake.ldap_queued();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Queues a connection test: connect, bind, and count the users and groups the settings find.
#[utoipa::path(post, path = "/api/v1/ldap-sources/{source}/test", tag = "ldap",
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 202, description = "The test was queued; follow it at /api/v1/ldap-runs/{id}", body = LdapRun),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn test_ldap_source(
    State(state): State<HubState>,
    _: Admin,
    Path(source): Path<String>,
) -> ApiResult<(StatusCode, Json<LdapRun>)> {
    let run = state.ldap.queue_test(&source).await?;
    state.wake.ldap_queued();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// A source's newest runs, newest first.
#[utoipa::path(get, path = "/api/v1/ldap-sources/{source}/runs", tag = "ldap",
    params(("source" = String, Path, description = "Source id or name")),
    responses(
        (status = 200, description = "The runs", body = Vec<LdapRun>),
        (status = 404, description = "No source has this id or name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_ldap_runs(
    State(state): State<HubState>,
    _: Reader,
    Path(source): Path<String>,
) -> ApiResult<Json<Vec<LdapRun>>> {
    Ok(Json(state.ldap.list_runs(&source, 50).await?))
}

/// One run: where it is, its counts and its error.
#[utoipa::path(get, path = "/api/v1/ldap-runs/{run}", tag = "ldap",
    params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = LdapRun),
        (status = 404, description = "No run has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_ldap_run(
    State(state): State<HubState>,
    _: Reader,
    Path(run): Path<String>,
) -> ApiResult<Json<LdapRun>> {
    Ok(Json(state.ldap.get_run(&run).await?))
}

/// A run's report records: each change it made (a dry run: would make) and each entry it refused.
#[utoipa::path(get, path = "/api/v1/ldap-runs/{run}/reports", tag = "ldap",
    params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The records", body = Vec<Report>),
        (status = 404, description = "No run has this id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ldap_run_reports(
    State(state): State<HubState>,
    _: Reader,
    Path(run): Path<String>,
) -> ApiResult<Json<Vec<Report>>> {
    Ok(Json(state.ldap.run_reports(&run).await?))
}
