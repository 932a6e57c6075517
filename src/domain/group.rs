//! Directory groups and their membership.

use super::user::UserSource;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A named set of users; policies grant apps to groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// Stable identifier.
    pub id: Uuid,
    /// Display name, unique regardless of case.
    pub name: String,
    /// Identifier in the system that created it.
    pub external_id: Option<String>,
    /// Where the group came from.
    pub source: UserSource,
    /// Number of members.
    pub member_count: i64,
    /// Increases with every change to the group or its membership.
    pub version: i64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it or its membership last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// What is supplied to create a group.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Display name.
    pub name: String,
    /// Identifier in the originating system.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A rename.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRename {
    /// The new display name.
    pub name: String,
}

impl Group {
    /// A new group from `input`: the name must be a valid group name, the external id valid
    /// profile text.
    pub fn create(input: NewGroup, source: UserSource, now: OffsetDateTime) -> super::Result<Group> {
        let name = super::values::GroupName::parse(&input.name)?;
        Ok(Group {
            id: Uuid::now_v7(),
            name: name.as_str().to_owned(),
            external_id: super::values::profile_text("external_id", input.external_id)?,
            source,
            member_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }
}
