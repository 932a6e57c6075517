//! Administrators, API tokens and the identity (actor) every change is attributed to.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who performs an operation; recorded in the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An administrator through an API token.
    Token {
        /// Token id.
        id: Uuid,
        /// Token name.
        name: String,
    },
    /// An administrator who logged in with a password.
    Admin {
        /// Admin username.
        username: String,
    },
    /// An identity provider pushing over SCIM with a SCIM token.
    ScimSource {
        /// Token id.
        id: Uuid,
        /// Token name: the source (`okta`, `entra`).
        name: String,
    },
    /// The hub itself (bootstrap, maintenance, offline commands).
    System,
}

impl Actor {
    /// How the actor appears in the change log.
    pub fn label(&self) -> String {
        match self {
            Actor::Token { name, .. } => format!("token:{name}"),
            Actor::Admin { username } => format!("admin:{username}"),
            Actor::ScimSource { name, .. } => format!("scim:{name}"),
            Actor::System => "system".to_owned(),
        }
    }
}

/// An administrator account.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Stable identifier.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Set while the one-time bootstrap password is still in use.
    pub must_change_password: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// The admin REST API (`/api/v1`).
    Api,
    /// The SCIM server (`/scim/v2`), for one identity provider.
    Scim,
}

impl TokenScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Api => "api",
            TokenScope::Scim => "scim",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> crate::domain::Result<Self> {
        match value {
            "api" => Ok(TokenScope::Api),
            "scim" => Ok(TokenScope::Scim),
            other => Err(crate::domain::Error::Storage(format!(
                "unknown token scope '{other}' in the store"
            ))),
        }
    }
}

/// A stored API token (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// Stable identifier.
    pub id: Uuid,
    /// Label given at creation.
    pub name: String,
    /// What it opens.
    pub scope: TokenScope,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it was last used to authenticate.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked; revoked tokens authenticate nothing.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}
