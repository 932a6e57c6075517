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
    /// Repeated failed logins locked the account; logins are refused until `until`.
    #[error("too many failed logins: this account is locked for {minutes} more minute(s)")]
    AccountLocked {
        /// Whole minutes until the lock ends (at least 1).
        minutes: i64,
    },
    /// A token sent more requests than its rate limit allows; it may send again after the wait.
    #[error("too many requests with this token: send again in {retry_after_secs} second(s)")]
    RateLimited {
        /// Whole seconds until a request is taken again (at least 1).
        retry_after_secs: u64,
    },
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
    /// A fault of the hub itself (a broken invariant, a bug): never retried as if a target or the
    /// store were at fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// The store cannot take work now (disk full, database unreachable); the same request can
    /// succeed later without any change. Nothing of the request was stored.
    #[error("{} ({detail})", .fault.message())]
    StoreUnavailable {
        /// What keeps the store from working.
        fault: StoreFault,
        /// The database's own words, for the server log.
        detail: String,
    },
    /// A SCIM request broke a rule that RFC 7644 names with a `scimType` (bad filter, bad PATCH path, ...).
    #[error("{detail}")]
    Scim {
        /// The RFC 7644 §3.12 error type.
        scim_type: ScimErrorType,
        /// Explanation for people.
        detail: String,
    },
    /// The method is not supported on this resource (writes to SCIM discovery endpoints).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A Bulk request holds more operations than the advertised `maxOperations`.
    #[error("a Bulk request may hold at most {limit} operations")]
    TooManyOperations {
        /// The advertised maximum.
        limit: usize,
    },
    /// A write was based on a version that is no longer current: a stale `If-Match`, or the
    /// store's optimistic check finding that the resource changed since the service read it
    /// (which the service answers by applying the change again, unless `If-Match` was given).
    #[error("{0}")]
    PreconditionFailed(String),
    /// An LDAP or Active Directory server refused or failed a source's connection, bind or
    /// search; the message says which, in the administrator's words.
    #[error("{0}")]
    LdapServer(String),
    /// A configuration document (`provisio config plan|apply`) was refused: its syntax, its
    /// shape or what it says; `line` (1-based) is where.
    #[error("line {line}: {message}")]
    Document {
        /// The line of the document the refusal is about.
        line: usize,
        /// What is wrong there.
        message: String,
    },
}

/// Why the store cannot take work for now. Each clears by itself once the cause is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreFault {
    /// The disk (or the database's size limit) is full.
    Full,
    /// The database cannot write to its disk (an I/O error, or a read-only file system or server).
    Io,
    /// The database server cannot be reached, is restarting, or dropped the connection.
    Unreachable,
    /// The database stayed locked by another writer for longer than the hub waits.
    Busy,
}

impl StoreFault {
    /// What an administrator reads: the cause and what to do.
    pub fn message(self) -> &'static str {
        match self {
            StoreFault::Full => {
                "the database is full: the hub refuses writes until disk space is freed; nothing of this request was stored"
            }
            StoreFault::Io => {
                "the database cannot write to its disk: the hub refuses writes until it can; nothing of this request was stored"
            }
            StoreFault::Unreachable => {
                "the database cannot be reached: the hub retries by itself; nothing of this request was stored"
            }
            StoreFault::Busy => {
                "the database is locked by another writer for too long: retry shortly; nothing of this request was stored"
            }
        }
    }

    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFault::Full => "full",
            StoreFault::Io => "io",
            StoreFault::Unreachable => "unreachable",
            StoreFault::Busy => "busy",
        }
    }
}

/// The `scimType` values of RFC 7644 §3.12; defined by the SCIM crate, named here as well.
pub use provisio_scim::ScimErrorType;

/// The one conversion from the SCIM crate's errors, so that `?` on its results works everywhere:
/// a broken SCIM rule stays a SCIM error with the same `scimType` and words, a built-in schema
/// that does not load is a schema error.
impl From<provisio_scim::Error> for Error {
    fn from(error: provisio_scim::Error) -> Self {
        match error {
            provisio_scim::Error::Scim { scim_type, detail } => Error::Scim { scim_type, detail },
            provisio_scim::Error::Schema(message) => Error::Schema(message),
        }
    }
}

impl Error {
    /// The same failure for another caller (errors are not `Clone`): a passing store condition
    /// keeps its cause, anything else becomes a storage error with its message.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::StoreUnavailable { fault, detail } => Error::StoreUnavailable {
                fault: *fault,
                detail: detail.clone(),
            },
            other => Error::Storage(other.to_string()),
        }
    }

    /// A stable, machine-readable code for API bodies and CLI exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "validation_failed",
            Error::BadRequest(_) => "bad_request",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::AccountLocked { .. } => "account_locked",
            Error::RateLimited { .. } => "rate_limited",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Config(_) => "configuration_error",
            Error::Schema(_) => "schema_error",
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_error",
            Error::StoreUnavailable { .. } => "storage_unavailable",
            Error::Scim { scim_type, .. } => scim_type.as_str(),
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::TooManyOperations { .. } => "too_many_operations",
            Error::LdapServer(_) => "ldap_server_error",
            Error::Document { .. } => "invalid_document",
        }
    }

    /// Shorthand for a validation error on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The refusal of a change to someone whose role only reads (an auditor).
    pub fn read_only() -> Self {
        Error::Forbidden("the auditor role reads only: this needs the administrator role".into())
    }

    /// Shorthand for a conflict on `field`.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Shorthand for a SCIM error of type `scim_type`.
    pub fn scim(scim_type: ScimErrorType, detail: impl Into<String>) -> Self {
        Error::Scim {
            scim_type,
            detail: detail.into(),
        }
    }

    /// The fault when the store refused the work for a passing reason (full, unreachable).
    pub fn store_fault(&self) -> Option<StoreFault> {
        match self {
            Error::StoreUnavailable { fault, .. } => Some(*fault),
            _ => None,
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
