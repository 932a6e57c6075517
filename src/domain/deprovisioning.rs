//! Deprovisioning settings: what happens to a user's account in an app when the user loses
//! access (left the groups, deactivated, deleted), per event, and changes of some of them.

use super::error::{Error, Result};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
