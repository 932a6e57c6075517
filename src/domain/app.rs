//! Apps (SCIM 2.0 destinations), their provisioning settings, policies (app x group), and what the
//! engine remembers about each account it pushed.

use super::error::{Error, Result};
use super::mapping::Mapping;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub use super::features::{Features, FeaturesPatch};

/// What happens to an account when its user loses access for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionAction {
    /// Set `active` to false (the account stays and can be reactivated).
    #[default]
    Deactivate,
    /// Delete the account.
    Delete,
    /// Leave the account as it is (only for users who leave the groups that give access).
    Nothing,
}

impl DeprovisionAction {
    /// The name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            DeprovisionAction::Deactivate => "deactivate",
            DeprovisionAction::Delete => "delete",
            DeprovisionAction::Nothing => "nothing",
        }
    }

    /// Parses `deactivate`, `delete` or `nothing`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        match value {
            "deactivate" => Ok(DeprovisionAction::Deactivate),
            "delete" => Ok(DeprovisionAction::Delete),
            "nothing" => Ok(DeprovisionAction::Nothing),
            other => Err(Error::invalid(
                field,
                format!("'{other}' is not 'deactivate', 'delete' or 'nothing'"),
            )),
        }
    }
}

/// Why a user no longer has access to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessLoss {
    /// Active in the directory, but no longer in a group with a policy for the app.
    Unassigned,
    /// Deactivated in the directory.
    Deactivated,
    /// Deleted from the directory.
    Deleted,
}

impl AccessLoss {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLoss::Unassigned => "unassigned",
            AccessLoss::Deactivated => "deactivated",
            AccessLoss::Deleted => "deleted",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "unassigned" => Ok(AccessLoss::Unassigned),
            "deactivated" => Ok(AccessLoss::Deactivated),
            "deleted" => Ok(AccessLoss::Deleted),
            other => Err(Error::Storage(format!("unknown access loss '{other}'"))),
        }
    }
}

/// Longest "delete accounts deactivated for N days" setting: ten years.
pub const MAX_DELETE_AFTER_DAYS: u32 = 3650;

/// Deprovisioning per event: what happens to a user's account when they leave the groups that
/// give access, are deactivated, or are deleted in the directory; and whether accounts that stay
/// deactivated are deleted after a number of days.
///
/// A change of these settings applies from then on: accounts already deactivated are not deleted
/// because a choice changed (only a new event for their user, or the days rule, deletes them);
/// accounts left active under `nothing` get the new `on_unassign` choice when reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deprovisioning {
    /// The user left every group that gives access: `deactivate`, `delete` or `nothing`.
    pub on_unassign: DeprovisionAction,
    /// The user was deactivated in the directory: `deactivate` or `delete`.
    pub on_deactivate: DeprovisionAction,
    /// The user was deleted from the directory: `deactivate` or `delete`.
    pub on_delete: DeprovisionAction,
    /// Delete accounts that have been deactivated this many days (`null`: never).
    pub delete_deactivated_after_days: Option<u32>,
}

impl Default for Deprovisioning {
    fn default() -> Self {
        Self::uniform(DeprovisionAction::Deactivate)
    }
}

impl Deprovisioning {
    /// The same action for every event, no deletion after days.
    pub fn uniform(action: DeprovisionAction) -> Self {
        Self {
            on_unassign: action,
            on_deactivate: action,
            on_delete: action,
            delete_deactivated_after_days: None,
        }
    }

    /// What happens on `loss`.
    pub fn action(&self, loss: AccessLoss) -> DeprovisionAction {
        match loss {
            AccessLoss::Unassigned => self.on_unassign,
            AccessLoss::Deactivated => self.on_deactivate,
            AccessLoss::Deleted => self.on_delete,
        }
    }

    /// Refuses `nothing` for deactivated and deleted users and an out-of-range number of days.
    pub fn validate(&self) -> Result<()> {
        for (field, action) in [
            ("deprovision.on_deactivate", self.on_deactivate),
            ("deprovision.on_delete", self.on_delete),
        ] {
            if action == DeprovisionAction::Nothing {
                return Err(Error::invalid(
                    field,
                    "must be 'deactivate' or 'delete': a user who lost their directory account must lose their app access",
                ));
            }
        }
        if let Some(days) = self.delete_deactivated_after_days
            && !(1..=MAX_DELETE_AFTER_DAYS).contains(&days)
        {
            return Err(Error::invalid(
                "deprovision.delete_deactivated_after_days",
                format!("must be between 1 and {MAX_DELETE_AFTER_DAYS} days, or null for never"),
            ));
        }
        Ok(())
    }

    /// These settings with `change` applied.
    pub fn merged(self, change: &DeprovisioningChange) -> Result<Deprovisioning> {
        let merged = match change {
            DeprovisioningChange::All(action) => Deprovisioning {
                delete_deactivated_after_days: self.delete_deactivated_after_days,
                ..Deprovisioning::uniform(DeprovisionAction::parse("deprovision", action)?)
            },
            DeprovisioningChange::Fields(fields) => Deprovisioning {
                on_unassign: fields.on_unassign.unwrap_or(self.on_unassign),
                on_deactivate: fields.on_deactivate.unwrap_or(self.on_deactivate),
                on_delete: fields.on_delete.unwrap_or(self.on_delete),
                delete_deactivated_after_days: match fields.delete_deactivated_after_days {
                    None => self.delete_deactivated_after_days,
                    Some(0) => None,
                    Some(days) => Some(days),
                },
            },
        };
        merged.validate()?;
        Ok(merged)
    }

    /// The stored form: JSON.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; a bare `deactivate` or `delete` (stored before per-event choices
    /// existed) applies to every event.
    pub fn from_stored(text: &str) -> Result<Self> {
        match text {
            "deactivate" => Ok(Self::uniform(DeprovisionAction::Deactivate)),
            "delete" => Ok(Self::uniform(DeprovisionAction::Delete)),
            json => {
                serde_json::from_str(json).map_err(|e| Error::Storage(format!("stored deprovisioning settings: {e}")))
            }
        }
    }

    /// What a change from `before` to these settings does to accounts that exist, in words for
    /// the administrator (empty when nothing about deprovisioning changed).
    pub fn change_notices(&self, before: &Deprovisioning) -> Vec<String> {
        let mut notices = Vec::new();
        if self.on_unassign != before.on_unassign
            || self.on_deactivate != before.on_deactivate
            || self.on_delete != before.on_delete
        {
            notices.push(
                "the new choices apply when a user loses access from now on; accounts already deactivated stay deactivated and are not deleted because of this change"
                    .to_owned(),
            );
        }
        if before.on_unassign == DeprovisionAction::Nothing && self.on_unassign != DeprovisionAction::Nothing {
            notices.push(format!(
                "accounts left active under 'nothing' for users who left the groups will now be {}d",
                self.on_unassign.as_str()
            ));
        }
        if self.delete_deactivated_after_days != before.delete_deactivated_after_days {
            notices.push(match self.delete_deactivated_after_days {
                Some(days) => format!(
                    "accounts deactivated for {days} days or more, including those deactivated before this change (counted from their deactivation), will be deleted by the engine's next sweep"
                ),
                None => "accounts that stay deactivated are no longer deleted after a number of days".to_owned(),
            });
        }
        notices
    }
}

/// A change to the deprovisioning settings: one action for every event (`"delete"`), or the
/// fields to change (`{"on_unassign": "nothing", "delete_deactivated_after_days": 30}`; 0 days
/// switches the deletion after days off).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DeprovisioningChange {
    /// `deactivate` or `delete` for every event.
    All(String),
    /// Only the fields given.
    Fields(DeprovisioningFields),
}

/// The fields of a [`DeprovisioningChange`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeprovisioningFields {
    /// See [`Deprovisioning::on_unassign`].
    #[serde(default)]
    pub on_unassign: Option<DeprovisionAction>,
    /// See [`Deprovisioning::on_deactivate`].
    #[serde(default)]
    pub on_deactivate: Option<DeprovisionAction>,
    /// See [`Deprovisioning::on_delete`].
    #[serde(default)]
    pub on_delete: Option<DeprovisionAction>,
    /// Days after which deactivated accounts are deleted; 0 switches it off.
    #[serde(default)]
    pub delete_deactivated_after_days: Option<u32>,
}

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

impl App {
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
    fn deprovisioning_changes_merge_and_validate() {
        let base = Deprovisioning::default();
        let all: DeprovisioningChange = serde_json::from_str("\"delete\"").unwrap();
        assert_eq!(
            base.merged(&all).unwrap(),
            Deprovisioning::uniform(DeprovisionAction::Delete)
        );
        let some: DeprovisioningChange =
            serde_json::from_str(r#"{"on_unassign": "nothing", "delete_deactivated_after_days": 30}"#).unwrap();
        let merged = base.merged(&some).unwrap();
        assert_eq!(merged.on_unassign, DeprovisionAction::Nothing);
        assert_eq!(merged.on_delete, DeprovisionAction::Deactivate);
        assert_eq!(merged.delete_deactivated_after_days, Some(30));
        let off: DeprovisioningChange = serde_json::from_str(r#"{"delete_deactivated_after_days": 0}"#).unwrap();
        assert_eq!(merged.merged(&off).unwrap().delete_deactivated_after_days, None);
        for bad in [
            r#"{"on_delete": "nothing"}"#,
            r#"{"delete_deactivated_after_days": 5000}"#,
            "\"nothing\"",
        ] {
            let change: DeprovisioningChange = serde_json::from_str(bad).unwrap();
            assert!(base.merged(&change).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<DeprovisioningChange>(r#"{"on_leave": "delete"}"#).is_err());
        // Stored before per-event choices: one word for every event.
        assert_eq!(
            Deprovisioning::from_stored("delete").unwrap(),
            Deprovisioning::uniform(DeprovisionAction::Delete)
        );
        assert_eq!(Deprovisioning::from_stored(&merged.to_stored()).unwrap(), merged);
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
