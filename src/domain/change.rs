//! The change log: one event per directory change, written in the same transaction as the change.
//! Later stages (the sync engine, reports) read it in sequence order and never miss an event.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// What kind of directory object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A user.
    User,
    /// A group (its own attributes).
    Group,
    /// A user's membership in a group.
    Membership,
    /// A custom attribute definition.
    Attribute,
    /// An app (its settings or mapping).
    App,
    /// A policy linking an app and a group.
    Policy,
}

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Created.
    Created,
    /// Attributes changed.
    Updated,
    /// A user was deactivated.
    Deactivated,
    /// A user was reactivated.
    Reactivated,
    /// Deleted.
    Deleted,
    /// A user joined a group.
    Added,
    /// A user left a group.
    Removed,
}

macro_rules! str_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
            /// Parses the stored name.
            pub fn parse(value: &str) -> Option<Self> {
                match value { $($text => Some($ty::$variant),)* _ => None }
            }
        }
    };
}

str_enum!(EntityKind {
    User => "user", Group => "group", Membership => "membership", Attribute => "attribute", App => "app", Policy => "policy",
});
str_enum!(ChangeOp {
    Created => "created", Updated => "updated", Deactivated => "deactivated", Reactivated => "reactivated",
    Deleted => "deleted", Added => "added", Removed => "removed",
});

/// A change about to be recorded.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// The kind of object.
    pub entity: EntityKind,
    /// Its identifier (for memberships: the group id).
    pub entity_id: String,
    /// The user a membership change is about.
    pub related_id: Option<String>,
    /// What happened.
    pub operation: ChangeOp,
    /// Who did it.
    pub actor: String,
    /// Details: the changed field names and the object's state after the change (before it, for deletions).
    pub data: Value,
}

/// A recorded change with its place in the sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeEvent {
    /// Position in the log: strictly increasing, without gaps, in commit order.
    pub seq: i64,
    /// When the change was committed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    /// Kind of object.
    pub entity: EntityKind,
    /// Object id (the group for memberships).
    pub entity_id: String,
    /// The user of a membership change.
    pub related_id: Option<String>,
    /// What happened.
    pub operation: ChangeOp,
    /// Who did it.
    pub actor: String,
    /// Details.
    #[schema(value_type = Object)]
    pub data: Value,
}
