//! The one mapping from [`Error`] to an HTTP response. Bodies look like
//! `{"error": {"code": "validation_failed", "message": "...", "field": "email"}}`.

use crate::domain::Error;
use crate::domain::error::{ScimErrorType, StoreFault};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The error envelope of every API error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`validation_failed`, `not_found`, `conflict`, ...).
    pub code: String,
    /// Explanation for people.
    pub message: String,
    /// The input field concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line of a refused configuration document (1-based), when that is the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// The HTTP status of an error.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Validation { .. } | Error::Document { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::AccountLocked { .. } | Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Scim {
            scim_type: ScimErrorType::Uniqueness,
            ..
        } => StatusCode::CONFLICT,
        Error::Scim { .. } => StatusCode::BAD_REQUEST,
        Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::TooManyOperations { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::LdapServer(_) => StatusCode::BAD_GATEWAY,
        Error::Config(_) | Error::Schema(_) | Error::Storage(_) | Error::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Seconds a client is asked to wait (`Retry-After`) when the store refuses work for a passing reason.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

/// Marks a response whose request failed in the store, so that the metrics middleware can count
/// it and track the store's health without every handler doing so.
#[derive(Debug, Clone)]
pub struct StorageFailure {
    /// The passing cause, or `None` for another storage error.
    pub fault: Option<StoreFault>,
    /// The database's own words.
    pub detail: String,
}

/// The message an error response shows. A passing store condition names its cause (it is logged
/// once per outage by the store's health tracker, not per request); other server errors are
/// logged here and answered without detail; client errors say what was wrong.
pub(crate) fn server_error_message(error: &Error, status: StatusCode) -> String {
    if error.store_fault().is_some() {
        // Logged once per outage by the store's health tracker, not once per request.
        error
            .store_fault()
            .map(StoreFault::message)
            .unwrap_or_default()
            .to_owned()
    } else if status.is_server_error() {
        tracing::error!(error = %error, "request failed");
        "the hub could not complete the request; the server log has the details".to_owned()
    } else {
        error.to_string()
    }
}

/// Adds `Retry-After` and the [`StorageFailure`] marker to a response for a storage error, and
/// `Retry-After` to one for a rate limit.
pub(crate) fn mark_storage_failure(error: &Error, response: &mut Response) {
    if let Error::RateLimited { retry_after_secs } = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        return;
    }
    let fault = error.store_fault();
    match error {
        Error::StoreUnavailable { detail, .. } | Error::Storage(detail) => {
            response.extensions_mut().insert(StorageFailure {
                fault,
                detail: detail.clone(),
            });
        }
        _ => return,
    }
    if fault.is_some() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(STORE_RETRY_AFTER_SECS));
    }
}

/// Wraps [`Error`] so that handlers can return it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(value: Error) -> Self {
        ApiError(value)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = server_error_message(&self.0, status);
        let field = match &self.0 {
            Error::Validation { field, .. } => Some(field.clone()),
            Error::Conflict { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0.code().to_owned(),
                message,
                field,
                line: match &self.0 {
                    Error::Document { line, .. } => Some(*line),
                    _ => None,
                },
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        mark_storage_failure(&self.0, &mut response);
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
