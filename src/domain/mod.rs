//! Domain types and rules. Nothing here knows about HTTP or SQL.

/// Declares an enum stored and sent by snake_case name, with `as_str` and `parse` (an unknown
/// name in the store is a storage error). Defined before the modules so that each can use it.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $ty:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $ty { $($(#[$vmeta])* $variant),* }
        impl $ty {
            /// The stored name.
            pub fn as_str(self) -> &'static str { match self { $($ty::$variant => $text),* } }
            /// Parses the stored name.
            pub fn parse(value: &str) -> crate::domain::Result<Self> {
                match value {
                    $($text => Ok($ty::$variant),)*
                    other => Err(crate::domain::Error::Storage(format!("unknown {} '{other}'", stringify!($ty)))),
                }
            }
        }
    };
}

pub mod address;
pub mod admin;
pub mod app;
pub mod attribute;
pub mod change;
pub mod config_doc;
pub mod deprovisioning;
pub mod error;
pub mod features;
pub mod group;
pub mod import;
pub mod job;
pub mod ldap;
pub mod mapping;
pub mod mapping_rows;
pub mod reconcile;
pub mod scim;
pub mod target_run;
pub mod user;
pub mod values;

pub use error::{Error, Result};

/// One page of a listing, with the cursor for the next page when there is one.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The current time, truncated to the microsecond precision that the store keeps.
pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}
