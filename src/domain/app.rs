//! Apps (SCIM 2.0 destinations), their provisioning settings, policies (app x group), and what the
//! engine remembers about each account it pushed.

use super::error::{Error, Result};
use super::mapping::Mapping;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub use super::deprovisioning::{
    AccessLoss, DeprovisionAction, Deprovisioning, DeprovisioningChange, DeprovisioningFields, MAX_DELETE_AFTER_DAYS,
};
pub use super::features::{Features, FeaturesPatch};

/// The result of the last connection check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Not checked yet (a check is queued).
    Unchecked,
    /// The target answered as a SCIM server with this token.
    Ok,
    /// The check failed; `connection_message` says why.
    Failed,
}

impl ConnectionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Unchecked => "unchecked",
            ConnectionStatus::Ok => "ok",
            ConnectionStatus::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "unchecked" => Ok(ConnectionStatus::Unchecked),
            "ok" => Ok(ConnectionStatus::Ok),
            "failed" => Ok(ConnectionStatus::Failed),
            other => Err(Error::Storage(format!("unknown connection status '{other}'"))),
        }
    }
}

/// How hard the engine may drive an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowControl {
    /// Requests in flight at once, per node (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Requests per second, per node; absent: no ceiling.
    #[serde(default)]
    pub requests_per_second: Option<u32>,
}

fn default_concurrency() -> u32 {
    4
}

impl Default for FlowControl {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            requests_per_second: None,
        }
    }
}

impl FlowControl {
    /// Checks the limits.
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err(Error::invalid("flow.concurrency", "must be between 1 and 256"));
        }
        if self.requests_per_second.is_some_and(|r| r == 0 || r > 100_000) {
            return Err(Error::invalid(
                "flow.requests_per_second",
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }
}

/// Whether the engine is working on an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// Provisioning runs.
    Active,
    /// Paused by an administrator; work waits.
    Paused,
    /// Its requests kept failing: work waits, and the target is probed at growing intervals
    /// until it answers again.
    Quarantined,
}

impl AppState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Active => "active",
            AppState::Paused => "paused",
            AppState::Quarantined => "quarantined",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "active" => Ok(AppState::Active),
            "paused" => Ok(AppState::Paused),
            "quarantined" => Ok(AppState::Quarantined),
            other => Err(Error::Storage(format!("unknown app state '{other}'"))),
        }
    }
}

/// What a target said about itself (from its discovery endpoints, else assumed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capabilities {
    /// PATCH is supported (else updates use PUT).
    pub patch: bool,
    /// Filtering is supported (`userName eq` look-ups).
    pub filter: bool,
    /// Bulk is supported.
    pub bulk: bool,
    /// ETags are supported.
    pub etag: bool,
    /// Largest page the target returns, when it says.
    pub max_results: Option<i64>,
    /// Whether the target publishes `/ServiceProviderConfig`.
    pub discovery: bool,
}

/// An app: a SCIM 2.0 destination and how to provision it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    /// Stable identifier.
    pub id: Uuid,
    /// Unique name (regardless of case).
    pub name: String,
    /// Always `scim` for now: an outbound SCIM 2.0 destination.
    pub kind: String,
    /// SCIM base URL (e.g. `https://example.monday.com/scim/v2`).
    pub base_url: String,
    /// Provisioning features switched on.
    pub features: Features,
    /// What deprovisioning does, per event.
    pub deprovision: Deprovisioning,
    /// Whether the engine provisions this app at all.
    pub enabled: bool,
    /// SCIM target attribute <- source rules.
    #[schema(value_type = Object)]
    pub mapping: Mapping,
    /// The preset the app was created from.
    pub preset: Option<String>,
    /// What the target supports, from the last successful connection check.
    pub capabilities: Option<Capabilities>,
    /// Result of the last connection check.
    pub connection_status: ConnectionStatus,
    /// Why the last check failed, in words for the administrator.
    pub connection_message: Option<String>,
    /// When the connection was last checked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub connection_checked_at: Option<OffsetDateTime>,
    /// Concurrency and rate ceilings.
    pub flow: FlowControl,
    /// Import and reconciliation: the match rule, how far fixes go, the schedule.
    #[serde(default)]
    pub sync: crate::domain::target_run::SyncSettings,
    /// Active, paused or quarantined.
    pub state: AppState,
    /// Why the app is paused or quarantined.
    pub state_reason: Option<String>,
    /// When a quarantined app is probed next.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_probe_at: Option<OffsetDateTime>,
    /// Until when the target asked for no requests (429 with Retry-After).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub throttled_until: Option<OffsetDateTime>,
    /// Transient failures in a row (reset by a success).
    pub consecutive_failures: i64,
    /// Increases with every change.
    pub version: i64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// What an administrator chooses when connecting an app; the rest of an [`App`] is the engine's.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// Unique name (regardless of case), already validated.
    pub name: String,
    /// SCIM base URL, already validated.
    pub base_url: String,
    /// Provisioning features switched on.
    pub features: Features,
    /// What deprovisioning does, per event.
    pub deprovision: Deprovisioning,
    /// Whether the engine provisions the app at all.
    pub enabled: bool,
    /// SCIM target attribute <- source rules.
    pub mapping: Mapping,
    /// The preset the app is created from.
    pub preset: String,
    /// Concurrency and rate ceilings.
    pub flow: FlowControl,
}

impl App {
    /// A newly connected app: active, version 1, its connection not yet checked (a check is
    /// queued with it).
    pub fn connect(settings: AppSettings, at: OffsetDateTime) -> App {
        let AppSettings {
            name,
            base_url,
            features,
            deprovision,
            enabled,
            mapping,
            preset,
            flow,
        } = settings;
        App {
            id: Uuid::now_v7(),
            name,
            kind: "scim".into(),
            base_url,
            features,
            deprovision,
            enabled,
            mapping,
            preset: Some(preset),
            capabilities: None,
            connection_status: ConnectionStatus::Unchecked,
            connection_message: Some(CHECK_QUEUED.into()),
            connection_checked_at: None,
            flow,
            sync: Default::default(),
            state: AppState::Active,
            state_reason: None,
            next_probe_at: None,
            throttled_until: None,
            consecutive_failures: 0,
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    /// Marks the connection as not checked since its base URL or token changed (a check is
    /// queued with the change).
    pub fn connection_changed(&mut self) {
        self.connection_status = ConnectionStatus::Unchecked;
        self.connection_message = Some(CHECK_QUEUED.into());
    }

    /// Whether a change of these settings (the names `AppStore::update_app` records) can change
    /// what the app's accounts and groups should hold, so that every one of them is reconciled.
    /// Import and reconciliation settings (`sync`) alone never do: reconciling every account on
    /// such a change would also race the runs they configure.
    pub fn change_reaches_accounts(changed: &[String]) -> bool {
        changed.is_empty() || changed.iter().any(|field| field != "sync")
    }
}

/// A policy: members of `group` get an account in `app`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    /// Stable identifier.
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// The app.
    pub app_id: Uuid,
    /// The group.
    pub group_id: Uuid,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The state of an account the engine manages in an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Exists and active, matching what was pushed.
    Active,
    /// Exists with `active=false`.
    Deactivated,
    /// Deleted from the target.
    Deleted,
}

impl AccountState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Deactivated => "deactivated",
            AccountState::Deleted => "deleted",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "active" => Ok(AccountState::Active),
            "deactivated" => Ok(AccountState::Deactivated),
            "deleted" => Ok(AccountState::Deleted),
            other => Err(Error::Storage(format!("unknown account state '{other}'"))),
        }
    }
}

/// What the engine remembers about one user's account in one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppAccount {
    /// The app.
    pub app_id: Uuid,
    /// The directory user.
    pub user_id: Uuid,
    /// The resource id in the target.
    pub target_id: String,
    /// The userName it has there.
    pub target_username: String,
    /// Its state.
    pub state: AccountState,
    /// Fingerprint of the last pushed resource.
    pub fingerprint: String,
    /// The last pushed resource.
    #[schema(value_type = Object)]
    pub pushed: Value,
    /// When the account was deactivated (while it is).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deactivated_at: Option<OffsetDateTime>,
    /// Why its user lost access (while the account is deactivated).
    pub lost_access: Option<AccessLoss>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// What the engine remembers about one group pushed to one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppGroup {
    /// The app.
    pub app_id: Uuid,
    /// The directory group.
    pub group_id: Uuid,
    /// The group's id in the target.
    pub target_id: String,
    /// The displayName last pushed.
    pub pushed_name: String,
    /// Target ids of the members last pushed, sorted.
    pub pushed_members: Vec<String>,
}

/// Validates a SCIM base URL: http or https, a host, no query or fragment. Returns it without a trailing `/`.
pub fn validate_base_url(value: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::invalid(
            "base_url",
            format!("'{value}' is not a usable SCIM base URL: {why}"),
        ))
    };
    let Some((scheme, rest)) = value.split_once("://") else {
        return bad("it must start with https:// (or http://)");
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return bad("only http and https are supported");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_name = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    if host_name.is_empty() || host_name.starts_with(':') {
        return bad("it has no host");
    }
    if host.contains('@') {
        return bad("credentials belong in the bearer token, not the URL");
    }
    if rest.contains('?') || rest.contains('#') {
        return bad("it must not have a query or fragment");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces");
    }
    if let Some((_, port)) = host_name.rsplit_once(':')
        && !host_name.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return bad("the port is not a number");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// What an app's connection says while its check is queued.
const CHECK_QUEUED: &str = "a connection check is queued";

/// Validates a secret an administrator sends for a connection (an app's bearer token, a bind
/// password): 1 to 8192 printable characters.
pub fn validate_secret(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > 8192 || value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must be 1 to 8192 printable characters"));
    }
    Ok(())
}

/// Validates an app or policy name.
pub fn validate_name(field: &str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must be 1 to 100 printable characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_of_what_is_pushed_reconcile_every_account() {
        let names = |fields: &[&str]| fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
        assert!(!App::change_reaches_accounts(&names(&["sync"])));
        assert!(App::change_reaches_accounts(&names(&["sync", "mapping"])));
        assert!(App::change_reaches_accounts(&names(&["features"])));
        assert!(
            App::change_reaches_accounts(&[]),
            "an event without its fields reconciles, as before"
        );
    }

    #[test]
    fn a_connected_app_is_active_at_version_one_with_its_check_queued() {
        let settings = AppSettings {
            name: "Monday".into(),
            base_url: "https://api.monday.com/scim/v2".into(),
            features: Features::default(),
            deprovision: Deprovisioning::uniform(DeprovisionAction::Delete),
            enabled: false,
            mapping: Mapping::default(),
            preset: "monday".into(),
            flow: FlowControl::default(),
        };
        let at = crate::domain::now();
        let mut app = App::connect(settings, at);
        assert_eq!((app.name.as_str(), app.preset.as_deref()), ("Monday", Some("monday")));
        assert_eq!(app.deprovision, Deprovisioning::uniform(DeprovisionAction::Delete));
        assert!(!app.enabled);
        assert_eq!(
            (app.state, app.version, app.consecutive_failures),
            (AppState::Active, 1, 0)
        );
        assert_eq!(app.connection_status, ConnectionStatus::Unchecked);
        assert_eq!(app.connection_message.as_deref(), Some(CHECK_QUEUED));
        assert_eq!((app.created_at, app.updated_at), (at, at));
        app.connection_status = ConnectionStatus::Ok;
        app.connection_message = None;
        app.connection_changed();
        assert_eq!(app.connection_status, ConnectionStatus::Unchecked);
        assert_eq!(app.connection_message.as_deref(), Some(CHECK_QUEUED));
    }

    #[test]
    fn secrets_are_1_to_8192_printable_characters() {
        assert!(validate_secret("token", "s3cr3t token").is_ok());
        assert!(validate_secret("token", &"x".repeat(8192)).is_ok());
        for bad in [
            String::new(),
            "   ".into(),
            "x".repeat(8193),
            "line\nbreak".into(),
            "tab\there".into(),
        ] {
            let err = validate_secret("secrets.app_tokens.Monday", &bad).unwrap_err();
            assert!(
                matches!(&err, Error::Validation { field, .. } if field == "secrets.app_tokens.Monday"),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            validate_base_url("https://api.monday.com/scim/v2/").unwrap(),
            "https://api.monday.com/scim/v2"
        );
        assert!(validate_base_url("http://127.0.0.1:8080/v2").is_ok());
        for bad in [
            "api.monday.com",
            "ftp://x/y",
            "https://",
            "https://u:p@host/v2",
            "https://h/v2?x=1",
            "https://h:port/v2",
            "https://h /v2",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
    }
}
