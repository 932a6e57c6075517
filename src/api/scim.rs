//! `/scim/v2`: the SCIM 2.0 service provider that identity providers push into (RFC 7644).
//! Handlers are thin: they authenticate the SCIM token, read the body within the advertised limit,
//! call [`crate::service::ScimService`] and answer `application/scim+json`, with errors as
//! RFC 7644 §3.12 bodies (mapped once, in [`ScimError`]).

use super::HubState;
use super::error::status_of;
use crate::domain::Error;
use crate::domain::admin::Actor;
use crate::domain::error::ScimErrorType;
use crate::domain::scim::discovery::list_response;
use crate::domain::scim::resource::etag;
use crate::listener::body::body_timeout;
use crate::service::scim::{ListParams, ResourceKind, ScimResource};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The SCIM content type.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
/// URN of an error response.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// An error answered as a SCIM error body.
#[derive(Debug)]
pub struct ScimError(pub Error);

impl From<Error> for ScimError {
    fn from(value: Error) -> Self {
        ScimError(value)
    }
}

/// The HTTP status and `scimType` of an error on the SCIM surface.
pub fn scim_status(error: &Error) -> (StatusCode, Option<ScimErrorType>) {
    match error {
        Error::Validation { .. } => (StatusCode::BAD_REQUEST, Some(ScimErrorType::InvalidValue)),
        Error::BadRequest(_) => (StatusCode::BAD_REQUEST, Some(ScimErrorType::InvalidSyntax)),
        Error::Conflict { field: Some(field), .. } if field == "username" || field == "name" => {
            (StatusCode::CONFLICT, Some(ScimErrorType::Uniqueness))
        }
        Error::Scim { scim_type, .. } => (status_of(error), Some(*scim_type)),
        other => (status_of(other), None),
    }
}

/// The status and RFC 7644 §3.12 body of an error.
pub fn error_body(error: &Error) -> (u16, Value) {
    let (status, scim_type) = scim_status(error);
    let detail = super::error::server_error_message(error, status);
    let mut body = json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail});
    if let Some(scim_type) = scim_type {
        body["scimType"] = Value::String(scim_type.as_str().to_owned());
    }
    (status.as_u16(), body)
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let (status, body) = error_body(&self.0);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = scim_json(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        super::error::mark_storage_failure(&self.0, &mut response);
        response
    }
}

type ScimResult<T> = Result<T, ScimError>;

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    response
}

fn resource_response(status: StatusCode, resource: &ScimResource, location: bool) -> Response {
    let mut response = scim_json(status, &resource.body);
    if let Ok(value) = HeaderValue::from_str(&etag(resource.version)) {
        response.headers_mut().insert(ETAG, value);
    }
    if location
        && let Some(loc) = resource.body.pointer("/meta/location").and_then(Value::as_str)
        && let Ok(value) = HeaderValue::from_str(loc)
    {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The identity provider behind the request's SCIM token.
#[derive(Debug, Clone)]
pub struct ScimSource(pub Actor);

impl FromRequestParts<HubState> for ScimSource {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, Self::Rejection> {
        let token = super::extract::bearer_token(&parts.headers).ok_or_else(|| {
            Error::Unauthenticated("a SCIM token is required: send Authorization: Bearer <token>".into())
        })?;
        Ok(ScimSource(state.auth.authenticate_scim(token).await?))
    }
}

/// A JSON request body read within the advertised `maxPayloadSize`: a declared length above it is
/// refused before reading, and reading stops as soon as the limit is passed.
#[derive(Debug)]
pub struct ScimBody(pub Value);

impl FromRequest<HubState> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &HubState) -> Result<Self, Self::Rejection> {
        let limit = state.scim.limits().max_payload_bytes;
        let too_large = || ScimError(Error::PayloadTooLarge { limit });
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|err| match body_timeout(&err) {
                // Cut off by the listener's pause and pace rules: not a size problem.
                Some(timeout) => ScimError(Error::BadRequest(timeout.to_string())),
                None => too_large(),
            })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::scim(ScimErrorType::InvalidSyntax, format!("the body is not valid JSON: {e}")))?;
        Ok(ScimBody(value))
    }
}

/// The SCIM base URL as the client addressed it: through a trusted reverse proxy, as the proxy
/// says (the listener removes forwarded headers from anyone else).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}/scim/v2")
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn list_params(query: &HashMap<String, String>) -> ScimResult<ListParams> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let int = |name: &str| -> ScimResult<Option<i64>> {
        match get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ScimError(Error::scim(
                    ScimErrorType::InvalidValue,
                    format!("{name} must be an integer, not '{v}'"),
                ))
            }),
        }
    };
    Ok(ListParams {
        filter: get("filter"),
        sort_by: get("sortBy"),
        sort_order: get("sortOrder"),
        start_index: int("startIndex")?,
        count: int("count")?,
        attributes: get("attributes"),
        excluded_attributes: get("excludedAttributes"),
    })
}

fn query_map(parts: &axum::extract::RawQuery) -> ScimResult<HashMap<String, String>> {
    let axum::extract::RawQuery(Some(raw)) = parts else {
        return Ok(HashMap::new());
    };
    serde_urlencoded_pairs(raw)
}

fn serde_urlencoded_pairs(raw: &str) -> ScimResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            crate::domain::address::percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                ScimError(Error::scim(
                    ScimErrorType::InvalidSyntax,
                    "the query string is not valid percent-encoded UTF-8",
                ))
            })
        };
        out.insert(decode(key)?, decode(value)?);
    }
    Ok(out)
}

async fn list(
    kind: ResourceKind,
    state: HubState,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> ScimResult<Response> {
    let params = list_params(&query_map(&query)?)?;
    let body = state.scim.list(kind, &params, &base_url(&headers)).await?;
    Ok(scim_json(StatusCode::OK, &body))
}

async fn search(kind: ResourceKind, state: HubState, headers: HeaderMap, body: Value) -> ScimResult<Response> {
    let params = state.scim.search_params(&body)?;
    let body = state.scim.list(kind, &params, &base_url(&headers)).await?;
    Ok(scim_json(StatusCode::OK, &body))
}

async fn read(
    kind: ResourceKind,
    id: String,
    state: HubState,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> ScimResult<Response> {
    let params = list_params(&query_map(&query)?)?;
    let resource = state.scim.get(kind, &id, &params, &base_url(&headers)).await?;
    if let Some(tags) = header_text(&headers, IF_NONE_MATCH) {
        let current = etag(resource.version);
        if tags.split(',').map(str::trim).any(|t| t == "*" || t == current) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(value) = HeaderValue::from_str(&current) {
                response.headers_mut().insert(ETAG, value);
            }
            return Ok(response);
        }
    }
    Ok(resource_response(StatusCode::OK, &resource, false))
}

macro_rules! resource_handlers {
    ($kind:expr, $list:ident, $create:ident, $search:ident, $get:ident, $put:ident, $patch:ident, $delete:ident) => {
        async fn $list(
            State(state): State<HubState>,
            _: ScimSource,
            headers: HeaderMap,
            query: axum::extract::RawQuery,
        ) -> ScimResult<Response> {
            list($kind, state, headers, query).await
        }

        async fn $create(
            State(state): State<HubState>,
            ScimSource(actor): ScimSource,
            headers: HeaderMap,
            query: axum::extract::RawQuery,
            ScimBody(body): ScimBody,
        ) -> ScimResult<Response> {
            let params = list_params(&query_map(&query)?)?;
            let mut resource = state
                .scim
                .create($kind, body, &actor, &base_url(&headers))
                .await?;
            state.scim.project($kind, &params, &mut resource).await?;
            Ok(resource_response(StatusCode::CREATED, &resource, true))
        }

        async fn $search(
            State(state): State<HubState>,
            _: ScimSource,
            headers: HeaderMap,
            ScimBody(body): ScimBody,
        ) -> ScimResult<Response> {
            search($kind, state, headers, body).await
        }

        async fn $get(
            State(state): State<HubState>,
            _: ScimSource,
            Path(id): Path<String>,
            headers: HeaderMap,
            query: axum::extract::RawQuery,
        ) -> ScimResult<Response> {
            read($kind, id, state, headers, query).await
        }

        async fn $put(
            State(state): State<HubState>,
            ScimSource(actor): ScimSource,
            Path(id): Path<String>,
            headers: HeaderMap,
            query: axum::extract::RawQuery,
            ScimBody(body): ScimBody,
        ) -> ScimResult<Response> {
            let params = list_params(&query_map(&query)?)?;
            let if_match = header_text(&headers, IF_MATCH);
            let mut resource = state
                .scim
                .replace($kind, &id, body, if_match, &actor, &base_url(&headers))
                .await?;
            state.scim.project($kind, &params, &mut resource).await?;
            Ok(resource_response(StatusCode::OK, &resource, false))
        }

        async fn $patch(
            State(state): State<HubState>,
            ScimSource(actor): ScimSource,
            Path(id): Path<String>,
            headers: HeaderMap,
            query: axum::extract::RawQuery,
            ScimBody(body): ScimBody,
        ) -> ScimResult<Response> {
            let params = list_params(&query_map(&query)?)?;
            let if_match = header_text(&headers, IF_MATCH);
            let resource = state
                .scim
                .patch_with($kind, &id, &body, if_match, &params, &actor, &base_url(&headers))
                .await?;
            Ok(resource_response(StatusCode::OK, &resource, false))
        }

        async fn $delete(
            State(state): State<HubState>,
            ScimSource(actor): ScimSource,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> ScimResult<Response> {
            let if_match = header_text(&headers, IF_MATCH);
            state.scim.delete($kind, &id, if_match, &actor).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    };
}

resource_handlers!(
    ResourceKind::User,
    list_users,
    create_user,
    search_users,
    get_user,
    replace_user,
    patch_user,
    delete_user
);
resource_handlers!(
    ResourceKind::Group,
    list_groups,
    create_group,
    search_groups,
    get_group,
    replace_group,
    patch_group,
    delete_group
);

async fn search_everything(
    State(state): State<HubState>,
    _: ScimSource,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let params = state.scim.search_params(&body)?;
    let body = state.scim.search_all(&params, &base_url(&headers)).await?;
    Ok(scim_json(StatusCode::OK, &body))
}

async fn service_provider_config(State(state): State<HubState>, _: ScimSource, headers: HeaderMap) -> Response {
    scim_json(StatusCode::OK, &state.scim.service_provider_config(&base_url(&headers)))
}

async fn resource_types(State(state): State<HubState>, _: ScimSource, headers: HeaderMap) -> ScimResult<Response> {
    let types = state.scim.resource_types(&base_url(&headers)).await?;
    let total = types.len();
    Ok(scim_json(StatusCode::OK, &list_response(types, total, 1)))
}

async fn resource_type(
    State(state): State<HubState>,
    _: ScimSource,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let types = state.scim.resource_types(&base_url(&headers)).await?;
    Ok(scim_json(StatusCode::OK, &find_by_id(types, &id, "ResourceType")?))
}

async fn schemas(State(state): State<HubState>, _: ScimSource, headers: HeaderMap) -> ScimResult<Response> {
    let schemas = state.scim.schemas(&base_url(&headers)).await?;
    let total = schemas.len();
    Ok(scim_json(StatusCode::OK, &list_response(schemas, total, 1)))
}

async fn schema(
    State(state): State<HubState>,
    _: ScimSource,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let schemas = state.scim.schemas(&base_url(&headers)).await?;
    Ok(scim_json(StatusCode::OK, &find_by_id(schemas, &id, "Schema")?))
}

/// The discovery document whose `id` is `id` (regardless of case).
fn find_by_id(documents: Vec<Value>, id: &str, kind: &'static str) -> ScimResult<Value> {
    documents
        .into_iter()
        .find(|d| {
            d.get("id")
                .and_then(Value::as_str)
                .is_some_and(|i| i.eq_ignore_ascii_case(id))
        })
        .ok_or_else(|| ScimError(Error::not_found(kind, id)))
}

async fn bulk(
    State(state): State<HubState>,
    ScimSource(actor): ScimSource,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let answer = state
        .scim
        .bulk(&body, &actor, &base_url(&headers), &|e: &Error| error_body(e))
        .await?;
    Ok(scim_json(StatusCode::OK, &answer))
}

async fn method_not_allowed() -> ScimError {
    ScimError(Error::MethodNotAllowed(
        "this endpoint does not support that method (discovery endpoints are read-only)".into(),
    ))
}

async fn not_found(request: Request<Body>) -> ScimError {
    ScimError(Error::not_found("SCIM endpoint", request.uri().path()))
}

fn read_only(router: MethodRouter<HubState>) -> MethodRouter<HubState> {
    router.fallback(method_not_allowed)
}

/// The `/scim/v2` routes.
pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/Users", get(list_users).post(create_user).fallback(method_not_allowed))
        .route("/Users/.search", post(search_users).fallback(method_not_allowed))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups",
            get(list_groups).post(create_group).fallback(method_not_allowed),
        )
        .route("/Groups/.search", post(search_groups).fallback(method_not_allowed))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group)
                .fallback(method_not_allowed),
        )
        .route("/ServiceProviderConfig", read_only(get(service_provider_config)))
        .route("/ResourceTypes", read_only(get(resource_types)))
        .route("/ResourceTypes/{id}", read_only(get(resource_type)))
        .route("/Schemas", read_only(get(schemas)))
        .route("/Schemas/{id}", read_only(get(schema)))
        .route("/Bulk", post(bulk).fallback(method_not_allowed))
        .route("/.search", post(search_everything).fallback(method_not_allowed))
        .fallback(not_found)
}
