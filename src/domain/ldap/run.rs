//! Runs of an LDAP source: syncs (full or incremental, real or dry) and connection tests, queued
//! for the source runner and kept with what they counted.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

stored_enum!(
    /// What a run does.
    LdapRunKind {
        /// Reads the source and brings the directory in line with it.
        Sync => "sync",
        /// Connects, binds and counts the entries the settings find; changes nothing.
        Test => "test",
    }
);

stored_enum!(
    /// Which entries a sync compares.
    SyncMode {
        /// Every entry.
        Full => "full",
        /// Entries changed since the last sync (by the source's change marker), and every
        /// entry's presence.
        Incremental => "incremental",
    }
);

stored_enum!(
    /// Where a run is in its life.
    LdapRunStatus {
        /// Waiting for the source runner.
        Queued => "queued",
        /// Being carried out by one node under a lease.
        Running => "running",
        /// Finished; its counts say what it did.
        Done => "done",
        /// Stopped by an error (the server, the settings); nothing after the error was changed.
        Failed => "failed",
    }
);

/// What a run read and did (a dry run: what it would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LdapRunCounts {
    /// User entries read.
    pub users_read: u64,
    /// Group entries read.
    pub groups_read: u64,
    /// Users created.
    pub users_created: u64,
    /// Hub users the source took over by username.
    pub users_adopted: u64,
    /// Users updated (values, rename, move, back after being missing).
    pub users_updated: u64,
    /// Users deactivated because their entry is gone.
    pub users_deactivated: u64,
    /// Users deleted after the grace period.
    pub users_deleted: u64,
    /// Groups created or taken over.
    pub groups_created: u64,
    /// Groups renamed or moved.
    pub groups_updated: u64,
    /// Groups deleted.
    pub groups_deleted: u64,
    /// Memberships added.
    pub members_added: u64,
    /// Memberships removed.
    pub members_removed: u64,
    /// Entries refused (no username, an invalid value, a name another owns).
    pub refused: u64,
    /// Changes the directory refused while applying.
    pub failed: u64,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LdapRun {
    /// Identifier; also the correlation id of its report records.
    pub id: Uuid,
    /// The source.
    pub source_id: Uuid,
    /// Sync or test.
    pub kind: LdapRunKind,
    /// Full or incremental (tests: full).
    pub mode: SyncMode,
    /// Plans and reports without changing the directory.
    pub dry_run: bool,
    /// Where it is.
    pub status: LdapRunStatus,
    /// What queued it (`manual`, `schedule`).
    pub cause: String,
    /// What it read and did.
    pub counts: LdapRunCounts,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it started.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
}

impl LdapRun {
    /// A new queued run.
    pub fn queued(
        source_id: Uuid,
        kind: LdapRunKind,
        mode: SyncMode,
        dry_run: bool,
        cause: &str,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            source_id,
            kind,
            mode,
            dry_run,
            status: LdapRunStatus::Queued,
            cause: cause.to_owned(),
            counts: LdapRunCounts::default(),
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
        }
    }
}
