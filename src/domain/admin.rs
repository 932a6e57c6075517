//! Administrators and their roles, API tokens, console sessions, the failed-login rules, the audit
//! log's events, and the identity (actor) every change is attributed to.

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
    /// An import from an app: users it created and group memberships it gave.
    Import {
        /// The app's name.
        app: String,
    },
    /// A sync of an LDAP or Active Directory source.
    Ldap {
        /// The source's name.
        source: String,
    },
}

impl Actor {
    /// How the actor appears in the change log.
    pub fn label(&self) -> String {
        match self {
            Actor::Token { name, .. } => format!("token:{name}"),
            Actor::Admin { username } => format!("admin:{username}"),
            Actor::ScimSource { name, .. } => format!("scim:{name}"),
            Actor::System => "system".to_owned(),
            Actor::Import { app } => format!("import:{app}"),
            Actor::Ldap { source } => format!("ldap:{source}"),
        }
    }
}

/// What an administrator (and every token and session of theirs) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads and changes everything.
    Administrator,
    /// Reads users, groups, apps, policies and reports; changes nothing and sees no secret.
    Auditor,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name as an administrator types it.
    pub fn parse(value: &str) -> crate::domain::Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "administrator" | "admin" => Ok(Role::Administrator),
            "auditor" => Ok(Role::Auditor),
            _ => Err(crate::domain::Error::invalid(
                "role",
                "must be 'administrator' or 'auditor'",
            )),
        }
    }

    /// Whether this role may change anything.
    pub fn can_write(self) -> bool {
        self == Role::Administrator
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
    /// Set while a one-time password (first start, reset) is still in use.
    pub must_change_password: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// What it may do.
    pub role: Role,
    /// When it was disabled; a disabled administrator cannot log in and their tokens open nothing.
    pub disabled_at: Option<OffsetDateTime>,
    /// Failed logins since the last successful one.
    pub failed_logins: i64,
    /// Until when logins are refused after repeated failures.
    pub locked_until: Option<OffsetDateTime>,
}

/// An administrator account as the API and the console show it: no password hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminAccount {
    /// Stable identifier.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// Whether a one-time password must still be replaced.
    pub must_change_password: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it was disabled.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<OffsetDateTime>,
    /// Until when logins are refused after repeated failures.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<OffsetDateTime>,
}

impl From<&Admin> for AdminAccount {
    fn from(admin: &Admin) -> Self {
        Self {
            id: admin.id,
            username: admin.username.clone(),
            role: admin.role,
            must_change_password: admin.must_change_password,
            created_at: admin.created_at,
            disabled_at: admin.disabled_at,
            locked_until: admin.locked_until,
        }
    }
}

/// Who is behind an authenticated request: the actor recorded for its changes, its role, and the
/// administrator account it acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded in the change log.
    pub actor: Actor,
    /// What it may do.
    pub role: Role,
    /// The administrator account behind it; none for the server itself and its own tokens.
    pub admin_id: Option<Uuid>,
}

impl Principal {
    /// The hub itself (offline commands, bootstrap): an administrator without an account.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            role: Role::Administrator,
            admin_id: None,
        }
    }

    /// An administrator account acting in person (console session, password log-in).
    pub fn of_admin(admin: &Admin) -> Self {
        Self {
            actor: Actor::Admin {
                username: admin.username.clone(),
            },
            role: admin.role,
            admin_id: Some(admin.id),
        }
    }
}

/// How failed logins are slowed down and then locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failed logins in a row after which the account is locked.
    pub lock_after: i64,
    /// How long a lock lasts.
    pub lock_for: time::Duration,
    /// The delay before answering the first failure; it doubles with each further one.
    pub first_delay: std::time::Duration,
    /// The longest delay.
    pub max_delay: std::time::Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            lock_after: 5,
            lock_for: time::Duration::minutes(15),
            first_delay: std::time::Duration::from_millis(250),
            max_delay: std::time::Duration::from_secs(4),
        }
    }
}

/// What one more failed login leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedLogin {
    /// Failures in a row, this one included.
    pub failures: i64,
    /// How long to wait before answering.
    pub delay: std::time::Duration,
    /// Set when this failure locks the account: until when.
    pub locks_until: Option<OffsetDateTime>,
}

impl LoginThrottle {
    /// The consequence of a failed login after `previous` failures in a row.
    pub fn failed(&self, previous: i64, now: OffsetDateTime) -> FailedLogin {
        let failures = previous.saturating_add(1).max(1);
        let doublings = u32::try_from(failures - 1).unwrap_or(u32::MAX).min(16);
        let delay = self.first_delay.saturating_mul(1u32 << doublings).min(self.max_delay);
        let locks_until = (failures >= self.lock_after).then(|| now + self.lock_for);
        FailedLogin {
            failures,
            delay,
            locks_until,
        }
    }
}

/// A console session as stored (the cookie's secret is stored only as its SHA-256).
#[derive(Debug, Clone)]
pub struct Session {
    /// The administrator logged in.
    pub admin: Admin,
    /// The token every state-changing request of this session must carry.
    pub csrf_token: String,
    /// When the session began (for the absolute timeout).
    pub created_at: OffsetDateTime,
    /// When it was last used (for the idle timeout).
    pub last_seen_at: OffsetDateTime,
}

/// How long console sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    /// A session unused this long has ended.
    pub idle: time::Duration,
    /// A session this old has ended, however busy.
    pub absolute: time::Duration,
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        Self {
            idle: time::Duration::minutes(30),
            absolute: time::Duration::hours(12),
        }
    }
}

impl SessionTimeouts {
    /// Whether a session begun at `created_at` and last used at `last_seen_at` has ended at `now`.
    pub fn expired(&self, created_at: OffsetDateTime, last_seen_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - last_seen_at >= self.idle || now - created_at >= self.absolute
    }
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// A successful login (console or API).
    LoginSucceeded,
    /// A refused login: unknown user, wrong password, disabled or locked account.
    LoginFailed,
    /// Repeated failures locked an account.
    AccountLocked,
    /// A console session ended by logout.
    LoggedOut,
    /// A one-time password was replaced, or a password changed.
    PasswordChanged,
    /// An administrator account was created.
    AdminCreated,
    /// An administrator's password was reset to a one-time password.
    PasswordReset,
    /// An administrator account was disabled.
    AdminDisabled,
    /// An administrator account was enabled again.
    AdminEnabled,
    /// An administrator's role changed.
    RoleChanged,
}

impl AuditEvent {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::AccountLocked => "account_locked",
            AuditEvent::LoggedOut => "logged_out",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::AdminCreated => "admin_created",
            AuditEvent::PasswordReset => "password_reset",
            AuditEvent::AdminDisabled => "admin_disabled",
            AuditEvent::AdminEnabled => "admin_enabled",
            AuditEvent::RoleChanged => "role_changed",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> crate::domain::Result<Self> {
        [
            AuditEvent::LoginSucceeded,
            AuditEvent::LoginFailed,
            AuditEvent::AccountLocked,
            AuditEvent::LoggedOut,
            AuditEvent::PasswordChanged,
            AuditEvent::AdminCreated,
            AuditEvent::PasswordReset,
            AuditEvent::AdminDisabled,
            AuditEvent::AdminEnabled,
            AuditEvent::RoleChanged,
        ]
        .into_iter()
        .find(|e| e.as_str() == value)
        .ok_or_else(|| crate::domain::Error::Storage(format!("unknown audit event '{value}' in the store")))
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Stable identifier.
    pub id: Uuid,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    /// What happened.
    pub event: AuditEvent,
    /// The account it happened to (as typed, for unknown ones).
    pub username: String,
    /// Who did it (`admin:<name>` for account changes; the username itself for logins).
    pub actor: String,
    /// The client's address, when known.
    pub remote_addr: Option<String>,
    /// Plain-words detail ("wrong password", "locked until ...").
    pub detail: String,
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
    /// The administrator it acts for (its role is theirs); none for tokens the server issued itself.
    pub owner: Option<String>,
    /// What it may do: its owner's role.
    pub role: Role,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failed_logins_wait_longer_each_time_then_lock() {
        let throttle = LoginThrottle::default();
        let at = time::macros::datetime!(2026-01-01 00:00 UTC);
        let delays: Vec<Duration> = (0..6).map(|n| throttle.failed(n, at).delay).collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 4000].map(Duration::from_millis).to_vec()
        );
        assert_eq!(throttle.failed(3, at).locks_until, None);
        assert_eq!(
            throttle.failed(4, at).locks_until,
            Some(at + time::Duration::minutes(15))
        );
        assert_eq!(throttle.failed(4, at).failures, 5);
        assert_eq!(throttle.failed(i64::MAX, at).delay, throttle.max_delay);
    }

    #[test]
    fn sessions_end_when_idle_or_too_old() {
        let timeouts = SessionTimeouts::default();
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        assert!(!timeouts.expired(start, start, start + time::Duration::minutes(29)));
        assert!(timeouts.expired(start, start, start + time::Duration::minutes(30)));
        let busy = start + time::Duration::hours(12);
        assert!(timeouts.expired(start, busy, busy));
    }

    #[test]
    fn roles_parse_as_typed_and_only_administrators_write() {
        assert_eq!(Role::parse(" Auditor ").ok(), Some(Role::Auditor));
        assert_eq!(Role::parse("admin").ok(), Some(Role::Administrator));
        assert!(Role::parse("root").is_err());
        assert!(Role::Administrator.can_write() && !Role::Auditor.can_write());
        for event in [
            AuditEvent::LoginFailed,
            AuditEvent::AccountLocked,
            AuditEvent::RoleChanged,
        ] {
            assert_eq!(AuditEvent::parse(event.as_str()).ok(), Some(event));
        }
    }
}
