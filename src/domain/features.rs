//! Which provisioning actions the engine may take in an app, and changes of some of them (the
//! rest kept), as an administrator switches them one at a time.

use super::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which provisioning actions the engine may take in an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Create accounts for newly assigned users.
    #[serde(default = "yes")]
    pub create_users: bool,
    /// Push profile changes.
    #[serde(default = "yes")]
    pub update_users: bool,
    /// Deactivate accounts of users no longer assigned (when deprovisioning deactivates).
    #[serde(default = "yes")]
    pub deactivate_users: bool,
    /// Delete accounts of users no longer assigned (when deprovisioning deletes).
    #[serde(default = "yes")]
    pub delete_users: bool,
    /// Create the policy groups in the app and keep their membership.
    #[serde(default)]
    pub push_groups: bool,
    /// Import the app's accounts: link them to directory users (and create users when the
    /// import settings allow).
    #[serde(default)]
    pub import_users: bool,
}

fn yes() -> bool {
    true
}

impl Default for Features {
    fn default() -> Self {
        Self {
            create_users: true,
            update_users: true,
            deactivate_users: true,
            delete_users: true,
            push_groups: false,
            import_users: false,
        }
    }
}

impl Features {
    /// Every feature by its short name (as `apps show` lists them and `--enable` takes them).
    pub fn named(&self) -> [(&'static str, bool); 6] {
        [
            ("create", self.create_users),
            ("update", self.update_users),
            ("deactivate", self.deactivate_users),
            ("delete", self.delete_users),
            ("push_groups", self.push_groups),
            ("import", self.import_users),
        ]
    }

    /// These features with the fields that `patch` names changed and the others kept.
    pub fn merged(self, patch: &FeaturesPatch) -> Features {
        Features {
            create_users: patch.create_users.unwrap_or(self.create_users),
            update_users: patch.update_users.unwrap_or(self.update_users),
            deactivate_users: patch.deactivate_users.unwrap_or(self.deactivate_users),
            delete_users: patch.delete_users.unwrap_or(self.delete_users),
            push_groups: patch.push_groups.unwrap_or(self.push_groups),
            import_users: patch.import_users.unwrap_or(self.import_users),
        }
    }
}

/// A change to some provisioning features: the fields it names are set, the others are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeaturesPatch {
    /// Create accounts for newly assigned users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_users: Option<bool>,
    /// Push profile changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_users: Option<bool>,
    /// Deactivate accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivate_users: Option<bool>,
    /// Delete accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_users: Option<bool>,
    /// Push the policy groups and their membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_groups: Option<bool>,
    /// Import the app's accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_users: Option<bool>,
}

impl FeaturesPatch {
    /// Switches the feature called `name` on or off. Takes the short names of [`Features::named`]
    /// and the field names (`push_groups`, `delete_users`), with `-` or `_`.
    pub fn set(&mut self, name: &str, on: bool) -> Result<()> {
        let slot = match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "create" | "create_users" => &mut self.create_users,
            "update" | "update_users" => &mut self.update_users,
            "deactivate" | "deactivate_users" => &mut self.deactivate_users,
            "delete" | "delete_users" => &mut self.delete_users,
            "push_groups" | "groups" => &mut self.push_groups,
            "import" | "import_users" => &mut self.import_users,
            _ => {
                return Err(Error::invalid(
                    "features",
                    format!(
                        "'{name}' is not a feature; the features are create, update, deactivate, delete, push_groups and import"
                    ),
                ));
            }
        };
        *slot = Some(on);
        Ok(())
    }

    /// Whether the patch names no feature.
    pub fn is_empty(&self) -> bool {
        *self == FeaturesPatch::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_merge_and_set_by_name() {
        let mut patch = FeaturesPatch::default();
        patch.set("push-groups", true).unwrap();
        patch.set("delete", false).unwrap();
        assert!(patch.set("teleport", true).is_err());
        let merged = Features::default().merged(&patch);
        assert!(merged.push_groups && !merged.delete_users && merged.create_users && merged.update_users);
    }
}
