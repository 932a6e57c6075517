//! The provisioning settings `apps create` and `apps update` share (features one at a time,
//! deprovisioning per event), and how `apps show` prints an app with them.

use super::RemoteArgs;
use super::client::ClientError;
use super::output::{cell, print_fields, print_json};
use crate::domain::app::{App, DeprovisionAction, FeaturesPatch};
use clap::Args;
use serde_json::{Map, Value, json};

/// Feature and deprovisioning flags.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Switch a feature on (create, update, deactivate, delete, push_groups, import); repeatable.
    #[arg(long, value_name = "FEATURE")]
    enable: Vec<String>,
    /// Switch a feature off; repeatable.
    #[arg(long, value_name = "FEATURE")]
    disable: Vec<String>,
    /// `deactivate` or `delete` accounts on every event (a user leaves the groups, is
    /// deactivated, or is deleted); the per-event flags below override it.
    #[arg(long, value_name = "ACTION")]
    deprovision: Option<String>,
    /// When a user leaves the groups that give access: deactivate, delete or nothing.
    #[arg(long, value_name = "ACTION")]
    on_unassign: Option<String>,
    /// When a user is deactivated in the directory: deactivate or delete.
    #[arg(long, value_name = "ACTION")]
    on_deactivate: Option<String>,
    /// When a user is deleted from the directory: deactivate or delete.
    #[arg(long, value_name = "ACTION")]
    on_delete: Option<String>,
    /// Delete accounts that have been deactivated this many days (0: never).
    #[arg(long, value_name = "DAYS")]
    delete_deactivated_after: Option<u32>,
}

impl SettingsArgs {
    /// Adds `push_groups` to the features to switch on.
    pub fn enable_push_groups(&mut self) {
        self.enable.push("push_groups".into());
    }

    /// Adds `features` and `deprovision` to a create or update body, as changes of only what the
    /// flags name.
    pub fn apply(&self, body: &mut Map<String, Value>) -> Result<(), ClientError> {
        let mut features = FeaturesPatch::default();
        for (names, on) in [(&self.enable, true), (&self.disable, false)] {
            for name in names {
                features.set(name, on).map_err(|e| ClientError::Usage(e.to_string()))?;
            }
        }
        if !features.is_empty() {
            body.insert("features".into(), json!(features));
        }
        let mut fields = Map::new();
        if let Some(all) = &self.deprovision {
            let action =
                DeprovisionAction::parse("--deprovision", all).map_err(|e| ClientError::Usage(e.to_string()))?;
            for key in ["on_unassign", "on_deactivate", "on_delete"] {
                fields.insert(key.into(), json!(action));
            }
        }
        for (key, flag, value) in [
            ("on_unassign", "--on-unassign", &self.on_unassign),
            ("on_deactivate", "--on-deactivate", &self.on_deactivate),
            ("on_delete", "--on-delete", &self.on_delete),
        ] {
            if let Some(value) = value {
                let action = DeprovisionAction::parse(flag, value).map_err(|e| ClientError::Usage(e.to_string()))?;
                fields.insert(key.into(), json!(action));
            }
        }
        if let Some(days) = self.delete_deactivated_after {
            fields.insert("delete_deactivated_after_days".into(), json!(days));
        }
        if !fields.is_empty() {
            body.insert("deprovision".into(), Value::Object(fields));
        }
        Ok(())
    }
}

/// Prints an app: every feature with on/off, and deprovisioning per event.
pub fn show_app(remote: &RemoteArgs, app: &App) {
    if remote.json {
        print_json(app);
        return;
    }
    let on_off = |on: bool| if on { "on" } else { "off" };
    let rules = &app.deprovision;
    let mut fields = vec![
        ("id", app.id.to_string()),
        ("name", app.name.clone()),
        ("base_url", app.base_url.clone()),
        ("preset", cell(&app.preset)),
        ("enabled", app.enabled.to_string()),
    ];
    for (name, on) in app.features.named() {
        fields.push((feature_label(name), on_off(on).to_owned()));
    }
    fields.extend([
        ("on_unassign", rules.on_unassign.as_str().to_owned()),
        ("on_deactivate", rules.on_deactivate.as_str().to_owned()),
        ("on_delete", rules.on_delete.as_str().to_owned()),
        (
            "delete_deactivated_after",
            rules
                .delete_deactivated_after_days
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "never".into()),
        ),
        ("connection", app.connection_status.as_str().to_owned()),
        ("connection_message", cell(&app.connection_message)),
        ("state", app.state.as_str().to_owned()),
        ("state_reason", cell(&app.state_reason)),
        (
            "next_probe_at",
            app.next_probe_at.map(super::output::when).unwrap_or_else(|| "-".into()),
        ),
        ("flow", serde_json::to_string(&app.flow).unwrap_or_default()),
        (
            "capabilities",
            app.capabilities
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "mapping",
            format!("{} rules (provisio apps mapping {})", app.mapping.rules.len(), app.name),
        ),
        (
            "import_match_on",
            app.sync
                .import
                .match_on
                .iter()
                .map(|a| {
                    serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("import_create_users", app.sync.import.create_users.to_string()),
        (
            "import_group",
            app.sync
                .import
                .assign_group
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("reconcile", app.sync.reconcile.as_str().to_owned()),
        ("import_every", app.sync.import_every.as_str().to_owned()),
        ("reconcile_every", app.sync.reconcile_every.as_str().to_owned()),
    ]);
    print_fields(&fields);
}

fn feature_label(name: &str) -> &'static str {
    match name {
        "create" => "feature create",
        "update" => "feature update",
        "deactivate" => "feature deactivate",
        "delete" => "feature delete",
        "import" => "feature import",
        _ => "feature push_groups",
    }
}
