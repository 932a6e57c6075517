//! Authentication: the first-start administrator, password log-in with throttling and temporary
//! locks, console sessions, and API and SCIM tokens (shown once, stored as SHA-256). Every login,
//! failure, lock and logout goes to the audit log. Account management is in `admins.rs`.

use crate::domain::admin::{
    Actor, Admin, ApiToken, AuditEvent, AuditRecord, LoginThrottle, Principal, Role, Session, SessionTimeouts,
    TokenScope,
};
use crate::domain::{Error, Result, now};
use crate::service::cache::{CACHE_TTL, TtlCache};
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
/// A session is marked used at most this often, to keep page views read-mostly.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(30);
/// Verified against when the username is unknown, so that the answer takes as long either way.
const UNKNOWN_USER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRmb3JwYWRkaW5n$0u5nbi6bW6fvMhZ1xLZJp6Jq7a5R4Qe5lS8m1hH0U8k";

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

/// A console session just started: the cookie's secret exists only here and in the browser.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value (redacted in `Debug`).
    pub secret: SecretString,
    /// The stored session.
    pub session: Session,
}

/// Authentication operations over any [`AdminStore`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    pub(super) store: S,
    throttle: LoginThrottle,
    timeouts: SessionTimeouts,
    /// SCIM token look-ups by token hash, for [`CACHE_TTL`]; cleared by every revocation and
    /// every administrator access change on this node (other nodes: within the TTL).
    pub(super) scim_tokens: TtlCache<String, Actor>,
}

/// Random URL-safe text from `bytes` random bytes.
pub(super) fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf)
}

/// SHA-256 of a token or session secret, hex-encoded, as stored.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Argon2id PHC string of a password.
pub(super) fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Storage(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checks a password an administrator chooses.
pub(super) fn check_new_password(new: &str, current: &str) -> Result<()> {
    if new.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "new_password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if new == current {
        return Err(Error::invalid("new_password", "must differ from the current password"));
    }
    Ok(())
}

fn refused() -> Error {
    Error::Unauthenticated("wrong username or password".into())
}

fn locked_error(until: time::OffsetDateTime, now: time::OffsetDateTime) -> Error {
    let seconds = (until - now).whole_seconds().max(1);
    Error::AccountLocked {
        minutes: (seconds + 59) / 60,
    }
}

impl<S: AdminStore + Clone> AuthService<S> {
    /// Wraps a store, with the default login throttle and session timeouts.
    pub fn new(store: S) -> Self {
        Self::with_policy(store, LoginThrottle::default(), SessionTimeouts::default())
    }

    /// Wraps a store with the given login throttle and session timeouts.
    pub fn with_policy(store: S, throttle: LoginThrottle, timeouts: SessionTimeouts) -> Self {
        Self {
            store,
            throttle,
            timeouts,
            scim_tokens: TtlCache::new(CACHE_TTL),
        }
    }

    /// How long console sessions last.
    pub fn timeouts(&self) -> SessionTimeouts {
        self.timeouts
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
            role: Role::Administrator,
            disabled_at: None,
            failed_logins: 0,
            locked_until: None,
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

    /// Appends a line to the audit log.
    pub(super) async fn audit(
        &self,
        event: AuditEvent,
        username: &str,
        actor: &str,
        remote_addr: Option<&str>,
        detail: impl Into<String>,
    ) -> Result<()> {
        self.store
            .insert_audit(&AuditRecord {
                id: Uuid::now_v7(),
                occurred_at: now(),
                event,
                username: username.chars().take(256).collect(),
                actor: actor.chars().take(300).collect(),
                remote_addr: remote_addr.map(str::to_owned),
                detail: detail.into(),
            })
            .await
    }

    /// Checks an administrator's password. A failure is answered after a delay that grows with
    /// each failure in a row, and enough of them lock the account for a while; a locked or
    /// disabled account is refused even with the right password. Every outcome but success is
    /// written to the audit log here (the caller records the success, saying what it opened).
    pub async fn check_password(&self, username: &str, password: &SecretString, remote: Option<&str>) -> Result<Admin> {
        let started = now();
        let Some(mut admin) = self.store.get_admin(username).await? else {
            verify_password(password.expose_secret(), UNKNOWN_USER_HASH);
            self.audit(AuditEvent::LoginFailed, username, username, remote, "unknown username")
                .await?;
            tokio::time::sleep(self.throttle.first_delay).await;
            return Err(refused());
        };
        if let Some(until) = admin.locked_until {
            if until > started {
                self.audit(
                    AuditEvent::LoginFailed,
                    &admin.username,
                    username,
                    remote,
                    "account locked",
                )
                .await?;
                return Err(locked_error(until, started));
            }
            // The lock has run out: the count starts again.
            self.store.set_login_lock(admin.id, 0, None).await?;
            admin.failed_logins = 0;
            admin.locked_until = None;
        }
        if !verify_password(password.expose_secret(), &admin.password_hash) {
            let failures = self.store.count_failed_login(admin.id).await?;
            let outcome = self.throttle.failed(failures - 1, started);
            self.audit(
                AuditEvent::LoginFailed,
                &admin.username,
                username,
                remote,
                format!("wrong password ({failures} in a row)"),
            )
            .await?;
            if let Some(until) = outcome.locks_until {
                self.store.set_login_lock(admin.id, failures, Some(until)).await?;
                self.audit(
                    AuditEvent::AccountLocked,
                    &admin.username,
                    username,
                    remote,
                    format!(
                        "locked for {} minutes after {failures} failed logins",
                        self.throttle.lock_for.whole_minutes()
                    ),
                )
                .await?;
                tokio::time::sleep(outcome.delay).await;
                return Err(locked_error(until, started));
            }
            tokio::time::sleep(outcome.delay).await;
            return Err(refused());
        }
        if admin.disabled_at.is_some() {
            self.audit(
                AuditEvent::LoginFailed,
                &admin.username,
                username,
                remote,
                "account disabled",
            )
            .await?;
            return Err(Error::Forbidden("this administrator account is disabled".into()));
        }
        if admin.failed_logins > 0 {
            self.store.set_login_lock(admin.id, 0, None).await?;
            admin.failed_logins = 0;
        }
        Ok(admin)
    }

    /// Checks an administrator's password and issues an API token named `token_name` that acts
    /// for them (with their role). While a one-time password is in use, `new_password` must be
    /// given and replaces it.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        new_password: Option<&SecretString>,
        token_name: &str,
        remote: Option<&str>,
    ) -> Result<IssuedToken> {
        let admin = self.check_password(username, password, remote).await?;
        match new_password {
            Some(new) => {
                self.replace_own_password(&admin, password, new, remote, "changed at API log-in")
                    .await?;
            }
            None if admin.must_change_password => {
                return Err(Error::Forbidden(
                    "the one-time password must be replaced: log in again with new_password set".into(),
                ));
            }
            None => {}
        }
        let issued = self.create_token(token_name, &Principal::of_admin(&admin)).await?;
        self.audit(
            AuditEvent::LoginSucceeded,
            &admin.username,
            &admin.username,
            remote,
            format!("API token '{}' issued", issued.token.name),
        )
        .await?;
        Ok(issued)
    }

    /// Starts a console session for an administrator whose password was just checked.
    pub async fn start_session(&self, admin: &Admin, remote: Option<&str>) -> Result<NewSession> {
        let secret = random_text(32);
        let csrf_token = random_text(32);
        let at = now();
        self.store
            .insert_session(&token_hash(&secret), admin.id, &csrf_token, at, remote)
            .await?;
        self.audit(
            AuditEvent::LoginSucceeded,
            &admin.username,
            &admin.username,
            remote,
            "console session",
        )
        .await?;
        Ok(NewSession {
            secret: SecretString::from(secret),
            session: Session {
                admin: admin.clone(),
                csrf_token,
                created_at: at,
                last_seen_at: at,
            },
        })
    }

    /// The live session behind a cookie secret: `None` when unknown, timed out (idle or
    /// absolute; it is then removed) or when its administrator is disabled.
    pub async fn session(&self, secret: &str) -> Result<Option<Session>> {
        let hash = token_hash(secret);
        let Some(session) = self.store.get_session(&hash).await? else {
            return Ok(None);
        };
        let at = now();
        if self.timeouts.expired(session.created_at, session.last_seen_at, at) {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        if session.admin.disabled_at.is_some() {
            return Ok(None);
        }
        if at - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_session(&hash, at).await?;
        }
        Ok(Some(session))
    }

    /// Ends a console session (logout).
    pub async fn end_session(&self, secret: &str, remote: Option<&str>) -> Result<()> {
        let hash = token_hash(secret);
        if let Some(session) = self.store.get_session(&hash).await? {
            self.store.delete_session(&hash).await?;
            let name = session.admin.username;
            self.audit(AuditEvent::LoggedOut, &name, &name, remote, "console session ended")
                .await?;
        }
        Ok(())
    }

    /// Changes an administrator's own password (checking the current one, with the login
    /// throttle); clears the one-time flag.
    pub async fn change_password(
        &self,
        username: &str,
        current: &SecretString,
        new: &SecretString,
        remote: Option<&str>,
    ) -> Result<Admin> {
        let admin = self
            .check_password(username, current, remote)
            .await
            .map_err(|e| match e {
                Error::Unauthenticated(_) => Error::invalid("current_password", "is not the current password"),
                other => other,
            })?;
        self.replace_own_password(&admin, current, new, remote, "changed by its owner")
            .await?;
        self.store
            .get_admin_by_id(admin.id)
            .await?
            .ok_or_else(|| Error::not_found("administrator", &admin.username))
    }

    /// Sets the password an administrator chose (after checking it against the rules and the
    /// current one), clears the one-time flag, and records it in the audit log.
    async fn replace_own_password(
        &self,
        admin: &Admin,
        current: &SecretString,
        new: &SecretString,
        remote: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        check_new_password(new.expose_secret(), current.expose_secret())?;
        self.store
            .set_admin_password(admin.id, &hash_password(new.expose_secret())?, false)
            .await?;
        self.audit(
            AuditEvent::PasswordChanged,
            &admin.username,
            &admin.username,
            remote,
            detail,
        )
        .await
    }

    /// Issues a new admin API token acting for `owner` (with their role).
    pub async fn create_token(&self, name: &str, owner: &Principal) -> Result<IssuedToken> {
        self.issue(name, TokenScope::Api, owner).await
    }

    /// Issues a SCIM token for one identity provider; what it writes is recorded as `scim:<name>`.
    pub async fn create_scim_token(&self, name: &str, by: &Principal) -> Result<IssuedToken> {
        self.issue(name, TokenScope::Scim, by).await
    }

    async fn issue(&self, name: &str, scope: TokenScope, by: &Principal) -> Result<IssuedToken> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "a token needs a name of 1 to 100 printable characters",
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_text(32));
        let owner = match (scope, by.admin_id) {
            (TokenScope::Api, Some(id)) => self.store.get_admin_by_id(id).await?.map(|a| (a.id, a.username)),
            _ => None,
        };
        let token = ApiToken {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            scope,
            prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            created_by: by.actor.label(),
            owner: owner.as_ref().map(|(_, name)| name.clone()),
            role: if scope == TokenScope::Api {
                by.role
            } else {
                Role::Administrator
            },
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store
            .insert_token(&token, &token_hash(&secret), owner.map(|(id, _)| id))
            .await?;
        Ok(IssuedToken {
            token,
            secret: SecretString::from(secret),
        })
    }

    /// Resolves a bearer token for the admin API to who it acts for and their role. Tokens of a
    /// disabled administrator are refused.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let token = self
            .store
            .use_token(&token_hash(bearer), now())
            .await?
            .filter(|t| t.scope == TokenScope::Api)
            .ok_or_else(|| Error::Unauthenticated("the API token is unknown or revoked".into()))?;
        let admin_id = match &token.owner {
            Some(owner) => self.store.get_admin(owner).await?.map(|a| a.id),
            None => None,
        };
        Ok(Principal {
            actor: Actor::Token {
                id: token.id,
                name: token.name,
            },
            role: token.role,
            admin_id,
        })
    }

    /// Resolves a bearer token for the SCIM server to the identity provider it was issued for.
    /// A token seen within [`CACHE_TTL`] is not looked up again; a revocation on this node
    /// clears the cache, so the revoked token is refused from the next request on.
    pub async fn authenticate_scim(&self, bearer: &str) -> Result<Actor> {
        let hash = token_hash(bearer);
        if let Some(actor) = self.scim_tokens.get(&hash) {
            return Ok(actor);
        }
        let generation = self.scim_tokens.generation();
        let token = self
            .store
            .use_token(&hash, now())
            .await?
            .filter(|t| t.scope == TokenScope::Scim)
            .ok_or_else(|| Error::Unauthenticated("the SCIM token is unknown or revoked".into()))?;
        let actor = Actor::ScimSource {
            id: token.id,
            name: token.name,
        };
        self.scim_tokens.insert(hash, actor.clone(), generation);
        Ok(actor)
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
        let revoked = self.store.revoke_token(id, now()).await;
        self.scim_tokens.clear();
        revoked
    }
}
