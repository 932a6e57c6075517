//! The crate's one error type: a broken SCIM rule with the RFC 7644 §3.12 `scimType` it carries,
//! or a built-in schema that failed to load. The hub converts it once into its own error
//! (`From<provisio_scim::Error> for provisio::domain::Error`), where it gets its HTTP status.

/// What went wrong in a SCIM operation of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A SCIM request broke a rule that RFC 7644 names with a `scimType` (bad filter, bad PATCH path, ...).
    #[error("{detail}")]
    Scim {
        /// The RFC 7644 §3.12 error type.
        scim_type: ScimErrorType,
        /// Explanation for people; shown to clients as the SCIM error's `detail`.
        detail: String,
    },
    /// A schema shipped as data (`schemas/*.json`) does not load: a fault of the build, which the
    /// unit tests rule out, reported rather than panicking.
    #[error("{0}")]
    Schema(String),
}

impl Error {
    /// Shorthand for a SCIM error of type `scim_type`.
    pub fn scim(scim_type: ScimErrorType, detail: impl Into<String>) -> Self {
        Error::Scim {
            scim_type,
            detail: detail.into(),
        }
    }

    /// The RFC 7644 `scimType`, when the error has one.
    pub fn scim_type(&self) -> Option<ScimErrorType> {
        match self {
            Error::Scim { scim_type, .. } => Some(*scim_type),
            Error::Schema(_) => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `scimType` values of RFC 7644 §3.12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimErrorType {
    /// The filter syntax was invalid or the attribute and comparison combination is not supported.
    InvalidFilter,
    /// The filter yields more results than the server is willing to return.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The modification is incompatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The PATCH path was invalid or not supported.
    InvalidPath,
    /// The PATCH path did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing or a value was not compatible with the attribute.
    InvalidValue,
    /// The SCIM protocol version is not supported.
    InvalidVers,
    /// Personal information was put in the request URI.
    Sensitive,
}

impl ScimErrorType {
    /// The `scimType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimErrorType::InvalidFilter => "invalidFilter",
            ScimErrorType::TooMany => "tooMany",
            ScimErrorType::Uniqueness => "uniqueness",
            ScimErrorType::Mutability => "mutability",
            ScimErrorType::InvalidSyntax => "invalidSyntax",
            ScimErrorType::InvalidPath => "invalidPath",
            ScimErrorType::NoTarget => "noTarget",
            ScimErrorType::InvalidValue => "invalidValue",
            ScimErrorType::InvalidVers => "invalidVers",
            ScimErrorType::Sensitive => "sensitive",
        }
    }
}
