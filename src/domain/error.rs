//! The one error type of Provisio: every layer returns it, the HTTP layer maps it to a status once.

/// Everything that can go wrong in a Provisio operation, phrased for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value broke a rule of the directory; `field` names the offending input.
    #[error("{field}: {message}")]
    Validation {
        /// The input field (e.g. `email`, `attributes.title`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request itself could not be understood (malformed JSON, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist.
    #[error("{kind} '{id}' was not found")]
    NotFound {
        /// What kind of thing (user, group, attribute, token).
        kind: &'static str,
        /// The identifier that was looked up.
        id: String,
    },
    /// The change clashes with what is already stored (duplicate name, concurrent edit, in use).
    #[error("{message}")]
    Conflict {
        /// The input field the clash is about, when there is one.
        field: Option<String>,
        /// What clashes.
        message: String,
    },
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// Credentials were valid but the action is not allowed yet (e.g. the one-time password must be changed).
    #[error("{0}")]
    Forbidden(String),
    /// The request body exceeds the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The configuration is incomplete or contradictory.
    #[error("configuration error: {0}")]
    Config(String),
    /// The database schema is newer than this binary or otherwise unusable.
    #[error("database schema error: {0}")]
    Schema(String),
    /// The database failed; the message never contains secrets.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    /// A stable, machine-readable code for API bodies and CLI exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "validation_failed",
            Error::BadRequest(_) => "bad_request",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Config(_) => "configuration_error",
            Error::Schema(_) => "schema_error",
            Error::Storage(_) => "storage_error",
        }
    }

    /// Shorthand for a validation error on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a conflict on `field`.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Shorthand for a missing thing.
    pub fn not_found(kind: &'static str, id: impl std::fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// The result type used throughout Provisio.
pub type Result<T, E = Error> = std::result::Result<T, E>;
