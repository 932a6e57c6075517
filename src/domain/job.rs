//! Work items of the durable queue and the provisioning report records they produce.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

stored_enum!(
    /// What a job reconciles.
    SubjectKind {
        /// One user's account in the app.
        User => "user",
        /// One group pushed to the app.
        Group => "group",
        /// The app's connection (a connection check).
        Connection => "connection",
        /// An import of the app's accounts (the subject id is the run's id).
        Import => "import",
        /// A reconciliation of the app with its target (the subject id is the run's id).
        Reconcile => "reconcile",
    }
);

stored_enum!(
    /// Where a job is in its life.
    JobStatus {
        /// Waiting to run (possibly not before a retry time).
        Pending => "pending",
        /// Claimed by a worker under a lease.
        Running => "running",
        /// Finished.
        Done => "done",
        /// Failed permanently or exhausted its retries: a dead letter the admin can retry or discard.
        Failed => "failed",
    }
);

stored_enum!(
    /// What a provisioning action did.
    Operation {
        /// Created an account.
        Create => "create",
        /// Updated an account.
        Update => "update",
        /// Set an account inactive.
        Deactivate => "deactivate",
        /// Set an account active again.
        Reactivate => "reactivate",
        /// Deleted an account.
        Delete => "delete",
        /// Linked an existing account.
        Adopt => "adopt",
        /// Looked an account or group up.
        Lookup => "lookup",
        /// Created a group.
        GroupCreate => "group_create",
        /// Renamed a group or replaced it.
        GroupUpdate => "group_update",
        /// Deleted a group.
        GroupDelete => "group_delete",
        /// Added members to a group.
        MembershipAdd => "membership_add",
        /// Removed members from a group.
        MembershipRemove => "membership_remove",
        /// Checked the connection.
        TestConnection => "test_connection",
        /// Decided nothing needed doing.
        Skip => "skip",
        /// Linked an account an import found to a directory user.
        Link => "link",
        /// Created a directory user from an imported account.
        Import => "import",
        /// Found an account an import could not link on its own.
        Conflict => "conflict",
        /// Found a difference between the hub's state and the target's.
        Drift => "drift",
    }
);

stored_enum!(
    /// How a provisioning action ended.
    Outcome {
        /// It worked.
        Success => "success",
        /// It failed permanently.
        Failure => "failure",
        /// It failed and will be retried.
        Retrying => "retrying",
        /// Nothing was sent.
        Skipped => "skipped",
        /// Planned by a dry run, not sent.
        DryRun => "dry_run",
    }
);

/// A queued work item.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Identifier; also the correlation id of its report records.
    pub id: String,
    /// The app.
    pub app_id: Uuid,
    /// What kind of subject.
    pub subject_kind: SubjectKind,
    /// The subject's id (user or group id; the app id for connection checks).
    pub subject_id: String,
    /// State.
    pub status: JobStatus,
    /// How many times it has run.
    pub attempts: i64,
    /// Links the report records of all attempts.
    pub correlation_id: String,
    /// The full synchronisation it belongs to, if any.
    pub run_id: Option<String>,
    /// What caused it (`change:42`, `sync:<run>`, `manual`, `app-updated`).
    pub cause: String,
    /// The last error, for retries and dead letters.
    pub last_error: Option<String>,
    /// Not to run before this time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_before: OffsetDateTime,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The app.
    pub app_id: Uuid,
    /// What kind of subject.
    pub subject_kind: SubjectKind,
    /// The subject's id.
    pub subject_id: String,
    /// The full synchronisation it belongs to.
    pub run_id: Option<String>,
    /// What caused it.
    pub cause: String,
    /// Not to run before this time (default: now).
    pub not_before: Option<OffsetDateTime>,
}

/// One provisioning action, as recorded for the provisioning report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// Identifier.
    pub id: Uuid,
    /// When the action started.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// How long it took.
    pub duration_ms: i64,
    /// The app.
    pub app_id: Uuid,
    /// The app's name at the time.
    pub app_name: String,
    /// User or group.
    pub subject_kind: SubjectKind,
    /// The directory id of the user or group.
    pub subject_id: String,
    /// The user's username (or the group's name).
    pub username: Option<String>,
    /// The user's email.
    pub email: Option<String>,
    /// The resource id in the target.
    pub target_id: Option<String>,
    /// What was done.
    pub operation: Operation,
    /// How it ended.
    pub outcome: Outcome,
    /// Which attempt of the job this was (1 = first).
    pub attempt: i64,
    /// HTTP method sent.
    pub http_method: Option<String>,
    /// HTTP path sent (relative to the base URL).
    pub http_path: Option<String>,
    /// HTTP status received.
    pub http_status: Option<i64>,
    /// Attributes pushed: name -> {old, new}.
    #[schema(value_type = Option<Object>)]
    pub diff: Option<Value>,
    /// What happened, in words (the target's error detail on failure).
    pub message: Option<String>,
    /// The request body sent, redacted and truncated (absent when bodies are not kept).
    pub request_body: Option<String>,
    /// The response body received, redacted and truncated.
    pub response_body: Option<String>,
    /// Links all attempts of one work item.
    pub correlation_id: String,
    /// What caused the work item (`change:42` is the change-log event, `sync:<run>`, `manual`).
    pub cause: String,
}

/// Longest body text a report record keeps.
pub const MAX_REPORT_BODY: usize = 2048;

/// Whether an attribute name looks like a secret (password, token, ...): its values never reach a report record.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "authorization",
        "credential",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|k| key.contains(k))
}

fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if is_secret_key(k) {
                            Value::String("[redacted]".into())
                        } else {
                            redact(v)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// A body as a report keeps it: secret-looking attributes (passwords, tokens, ...) replaced, and
/// cut to [`MAX_REPORT_BODY`] characters.
pub fn report_body(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let text = redact(value).to_string();
    if text.chars().count() <= MAX_REPORT_BODY {
        return Some(text);
    }
    let cut: String = text.chars().take(MAX_REPORT_BODY).collect();
    Some(format!("{cut}...(truncated)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_redacted_and_truncated() {
        let body = json!({"userName": "a", "password": "hunter2", "x": [{"apiToken": "t0ken"}]});
        let kept = report_body(&body).unwrap();
        assert!(!kept.contains("hunter2") && !kept.contains("t0ken") && kept.contains("userName"));
        let long = json!({"v": "x".repeat(5000)});
        let kept = report_body(&long).unwrap();
        assert!(kept.ends_with("...(truncated)") && kept.len() < 2100);
        assert_eq!(report_body(&Value::Null), None);
    }
}

/// How a claimed job ends, as the queue records it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    /// Finished.
    Done,
    /// Back to the queue until `not_before`; `count_attempt` says whether the run spent an attempt.
    Retry {
        /// When it may run again.
        not_before: OffsetDateTime,
        /// What failed.
        error: String,
        /// Whether the run counts against the job's attempts.
        count_attempt: bool,
    },
    /// A dead letter.
    Failed {
        /// What failed.
        error: String,
    },
}

/// One write a job leaves to the transaction that finishes it, in the order the job made it.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Stores (inserts or replaces) what the engine remembers of a user's account.
    SaveAccount(crate::domain::app::AppAccount),
    /// Forgets a user's account in an app.
    DeleteAccount {
        /// The app.
        app_id: Uuid,
        /// The user.
        user_id: Uuid,
    },
    /// Stores what was pushed of a group.
    SaveGroup(crate::domain::app::AppGroup),
    /// Forgets a pushed group.
    DeleteGroup {
        /// The app.
        app_id: Uuid,
        /// The group.
        group_id: Uuid,
    },
    /// The user's account in the app changed (created, deleted, (de)activated): when the app pushes
    /// groups, the groups its policies give the user are queued, so their members follow.
    UserAccountChanged {
        /// The app.
        app_id: Uuid,
        /// The user.
        user_id: Uuid,
    },
}

/// A job run, ready to be recorded: its end, the writes it left and its report rows. The queue
/// stores all of it in one transaction (with other finished jobs), and only then is the job
/// acknowledged.
#[derive(Debug, Clone)]
pub struct FinishedJob {
    /// The job as claimed.
    pub job: Job,
    /// The lease owner that ran it.
    pub owner: String,
    /// How it ended.
    pub end: JobEnd,
    /// The writes it left, in order.
    pub effects: Vec<Effect>,
    /// The report rows of its actions.
    pub reports: Vec<Report>,
}
