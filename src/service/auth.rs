//! Administrator authentication: the first-start admin, passwords (Argon2id) and API tokens
//! (shown once, stored as SHA-256).

use crate::domain::admin::{Actor, Admin, ApiToken, TokenScope};
use crate::domain::{Error, Result, now};
use crate::store::AdminStore;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The username of the administrator created on first start.
pub const FIRST_ADMIN: &str = "admin";
/// Every API token starts with this, so that secret scanners can recognise it.
pub const TOKEN_PREFIX: &str = "pvo_";
/// Shortest password an administrator may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Credentials of the first administrator, returned once by [`AuthService::bootstrap`].
#[derive(Debug)]
pub struct FirstAdmin {
    /// Its username.
    pub username: String,
    /// Its one-time password (redacted in `Debug`).
    pub password: SecretString,
}

/// A token just created: the only moment its secret is available.
#[derive(Debug)]
pub struct IssuedToken {
    /// The stored record.
    pub token: ApiToken,
    /// The secret to give to the client (redacted in `Debug`).
    pub secret: SecretString,
}

/// Authentication operations over any [`AdminStore`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    store: S,
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf)
}

/// SHA-256 of a token secret, hex-encoded, as stored.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Storage(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

impl<S: AdminStore + Clone> AuthService<S> {
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// On an empty store, creates the first administrator with a random one-time password and
    /// returns its credentials; otherwise returns `None`. Only the Argon2id hash is stored.
    pub async fn bootstrap(&self) -> Result<Option<FirstAdmin>> {
        if self.store.count_admins().await? > 0 {
            return Ok(None);
        }
        let password = random_text(18);
        let admin = Admin {
            id: Uuid::now_v7(),
            username: FIRST_ADMIN.to_owned(),
            password_hash: hash_password(&password)?,
            must_change_password: true,
            created_at: now(),
        };
        match self.store.insert_admin(&admin).await {
            Ok(()) => Ok(Some(FirstAdmin {
                username: admin.username,
                password: SecretString::from(password),
            })),
            // Another node created it first.
            Err(Error::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checks an administrator's password and issues an API token named `token_name`.
    /// While the one-time password is in use, `new_password` must be given and replaces it.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        new_password: Option<&SecretString>,
        token_name: &str,
    ) -> Result<IssuedToken> {
        let refused = || Error::Unauthenticated("wrong username or password".into());
        let admin = self.store.get_admin(username).await?.ok_or_else(refused)?;
        if !verify_password(password.expose_secret(), &admin.password_hash) {
            return Err(refused());
        }
        match new_password {
            Some(new) => {
                let new = new.expose_secret();
                if new.chars().count() < MIN_PASSWORD_LEN {
                    return Err(Error::invalid(
                        "new_password",
                        format!("must be at least {MIN_PASSWORD_LEN} characters"),
                    ));
                }
                if new == password.expose_secret() {
                    return Err(Error::invalid("new_password", "must differ from the current password"));
                }
                self.store.set_admin_password(admin.id, &hash_password(new)?).await?;
            }
            None if admin.must_change_password => {
                return Err(Error::Forbidden(
                    "the one-time password must be replaced: log in again with new_password set".into(),
                ));
            }
            None => {}
        }
        self.create_token(
            token_name,
            &Actor::Admin {
                username: admin.username,
            },
        )
        .await
    }

    /// Issues a new admin API token.
    pub async fn create_token(&self, name: &str, actor: &Actor) -> Result<IssuedToken> {
        self.issue(name, TokenScope::Api, actor).await
    }

    /// Issues a SCIM token for one identity provider; what it writes is recorded as `scim:<name>`.
    pub async fn create_scim_token(&self, name: &str, actor: &Actor) -> Result<IssuedToken> {
        self.issue(name, TokenScope::Scim, actor).await
    }

    async fn issue(&self, name: &str, scope: TokenScope, actor: &Actor) -> Result<IssuedToken> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "a token needs a name of 1 to 100 printable characters",
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_text(32));
        let token = ApiToken {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            scope,
            prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            created_by: actor.label(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_token(&token, &token_hash(&secret)).await?;
        Ok(IssuedToken {
            token,
            secret: SecretString::from(secret),
        })
    }

    /// Resolves a bearer token for the admin API to the actor it stands for.
    pub async fn authenticate(&self, bearer: &str) -> Result<Actor> {
        let token = self
            .store
            .use_token(&token_hash(bearer), now())
            .await?
            .filter(|t| t.scope == TokenScope::Api)
            .ok_or_else(|| Error::Unauthenticated("the API token is unknown or revoked".into()))?;
        Ok(Actor::Token {
            id: token.id,
            name: token.name,
        })
    }

    /// Resolves a bearer token for the SCIM server to the identity provider it was issued for.
    pub async fn authenticate_scim(&self, bearer: &str) -> Result<Actor> {
        let token = self
            .store
            .use_token(&token_hash(bearer), now())
            .await?
            .filter(|t| t.scope == TokenScope::Scim)
            .ok_or_else(|| Error::Unauthenticated("the SCIM token is unknown or revoked".into()))?;
        Ok(Actor::ScimSource {
            id: token.id,
            name: token.name,
        })
    }

    /// All tokens of `scope` (without secrets), newest first.
    pub async fn list_tokens_of(&self, scope: TokenScope) -> Result<Vec<ApiToken>> {
        let mut tokens = self.store.list_tokens().await?;
        tokens.retain(|t| t.scope == scope);
        Ok(tokens)
    }

    /// All admin API tokens (without secrets).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        self.list_tokens_of(TokenScope::Api).await
    }

    /// Revokes an admin API token.
    pub async fn revoke_token(&self, id: Uuid) -> Result<ApiToken> {
        self.revoke_of(id, TokenScope::Api).await
    }

    /// Revokes a token of `scope` (a token of another scope is not found).
    pub async fn revoke_of(&self, id: Uuid, scope: TokenScope) -> Result<ApiToken> {
        let known = self
            .store
            .list_tokens()
            .await?
            .into_iter()
            .any(|t| t.id == id && t.scope == scope);
        if !known {
            return Err(Error::not_found("token", id));
        }
        self.store.revoke_token(id, now()).await
    }
}
