//! The built-in mappings for known apps, compiled into the binary from `presets/`.

use super::Mapping;
use crate::domain::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A built-in mapping for a known app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preset {
    /// Identifier (`monday`, `generic`).
    pub name: String,
    /// Label for people.
    pub title: String,
    /// What the preset is for and what it needs.
    pub description: String,
    /// What happens to an app account when its user loses access (`deactivate`).
    pub deprovision: String,
    /// The provisioning features an app created from the preset starts with.
    #[serde(default)]
    pub features: crate::domain::features::Features,
    /// The attribute mapping.
    pub mapping: Mapping,
}

impl Preset {
    /// Names of the custom attributes the preset's mapping reads; they must be defined before use.
    pub fn custom_attributes_used(&self) -> Vec<String> {
        self.mapping.custom_attributes_used()
    }
}

/// The preset files compiled into the binary.
const PRESET_FILES: &[(&str, &str)] = &[
    ("generic-scim.json", include_str!("../../../presets/generic-scim.json")),
    ("monday.json", include_str!("../../../presets/monday.json")),
];

/// All built-in presets; a broken preset file is a configuration error.
pub fn presets() -> Result<Vec<Preset>> {
    PRESET_FILES
        .iter()
        .map(|(file, text)| {
            let preset: Preset = serde_json::from_str(text)
                .map_err(|e| Error::Config(format!("built-in preset {file} is not valid: {e}")))?;
            preset
                .mapping
                .check(|_| true)
                .map_err(|e| Error::Config(format!("built-in preset {file} has an invalid mapping: {e}")))?;
            Ok(preset)
        })
        .collect()
}

/// The built-in preset called `name`, if there is one.
pub fn preset(name: &str) -> Result<Option<Preset>> {
    Ok(presets()?.into_iter().find(|preset| preset.name == name))
}
