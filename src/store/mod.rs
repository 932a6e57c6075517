//! Storage: the small traits the services depend on, and [`SqlStore`], the one SQL implementation
//! that serves SQLite and PostgreSQL with the same queries and the same migration history.

mod account_rows;
mod admins;
mod app_rows;
mod app_writes;
mod apps;
mod attributes;
mod backup;
mod changes;
mod claims;
mod commit;
mod config_doc;
mod dashboard;
mod dispatch;
mod expiry;
mod finish;
mod group_rows;
mod group_writes;
mod groups;
mod index;
mod jobs;
mod ldap;
mod ldap_runs;
mod nodelay;
mod query;
mod queue;
mod reports;
mod run_rows;
mod schedule;
mod scim;
mod scim_filter;
mod sql;
mod target_runs;
mod tx;
mod users;

pub use backup::known_schema_version;
pub use commit::WriteBatchCounters;
pub use config_doc::{AppRewrite, ConfigStore, ConfigWrites};
pub use dashboard::HOUR_MICROS;
pub use ldap::LdapStore;
pub use ldap_runs::LdapRunStore;
pub use sql::{Backend, SqlStore, sqlite_url};

use crate::domain::admin::{Actor, Admin, ApiToken, AuditRecord, Role, Session};
use crate::domain::app::{AccountState, App, AppAccount, AppGroup, AppState, Capabilities, ConnectionStatus, Policy};
use crate::domain::attribute::AttributeDefinition;
use crate::domain::change::{ChangeEvent, ChangeOp};
use crate::domain::group::Group;
use crate::domain::job::{FinishedJob, Job, JobStatus, NewJob, Report};
use crate::domain::scim::ast::{AttrPath, Filter};
use crate::domain::scim::members::MemberOp;
use crate::domain::scim::resource::Reference;
use crate::domain::scim::schema::ResourceSchema;
use crate::domain::target_run::{ConflictStatus, ImportConflict, RunItem, RunStatus, TargetRun};
use crate::domain::user::User;
use crate::domain::values::GroupName;
use crate::domain::{Page, Result};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which users a listing returns.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Case-insensitive text matched against username, email and full name.
    pub search: Option<String>,
    /// Only active (`true`) or inactive (`false`) users.
    pub active: Option<bool>,
    /// Only members of this group.
    pub group: Option<Uuid>,
    /// Continue after this cursor (from a previous page).
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// Which groups a listing returns.
#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    /// Case-insensitive text matched against the name.
    pub search: Option<String>,
    /// Continue after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// Custom attribute definitions. Every write also appends to the change log.
pub trait AttributeStore: Send + Sync {
    /// All definitions, by name.
    fn list_attributes(&self) -> impl Future<Output = Result<Vec<AttributeDefinition>>> + Send;
    /// One definition.
    fn get_attribute(&self, name: &str) -> impl Future<Output = Result<Option<AttributeDefinition>>> + Send;
    /// Stores a new definition; refuses a duplicate name, or a required one while users lack a value.
    fn create_attribute(&self, def: &AttributeDefinition, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// Replaces a definition; refuses to make it required while users lack a value,
    /// or to change its type while users hold values.
    fn update_attribute(&self, def: &AttributeDefinition, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// Removes a definition that no user holds a value for.
    fn delete_attribute(&self, name: &str, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
}

/// Directory users. Every write also appends to the change log in the same transaction.
pub trait UserStore: Send + Sync {
    /// Stores a new user; refuses a username taken regardless of case.
    fn insert_user(&self, user: &User, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// Stores new users in one write, sharing its statements: all of them, or none when one is
    /// refused (a username taken, by a stored user or by another of `users`).
    fn insert_users(&self, users: Vec<User>, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// One user by id.
    fn get_user(&self, id: Uuid) -> impl Future<Output = Result<Option<User>>> + Send;
    /// The users among `ids` that exist, in no particular order (two statements, however many).
    fn get_users(&self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<User>>> + Send;
    /// One user by username, regardless of case.
    fn get_user_by_username(&self, username: &str) -> impl Future<Output = Result<Option<User>>> + Send;
    /// A page of users ordered by username.
    fn list_users(&self, query: &UserQuery) -> impl Future<Output = Result<Page<User>>> + Send;
    /// Replaces a user whose stored version is still `previous_version` (else
    /// [`Error::PreconditionFailed`](crate::domain::Error::PreconditionFailed), also when it is gone).
    fn update_user(
        &self,
        user: &User,
        previous_version: i64,
        operation: ChangeOp,
        changed: &[String],
        actor: &Actor,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a user and their memberships; returns what was deleted.
    fn delete_user(&self, id: Uuid, actor: &Actor) -> impl Future<Output = Result<User>> + Send;
    /// The groups a user belongs to.
    fn groups_of_user(&self, id: Uuid) -> impl Future<Output = Result<Vec<Group>>> + Send;
}

/// Directory groups and memberships. Every write also appends to the change log.
pub trait GroupStore: Send + Sync {
    /// Stores a new group; refuses a name taken regardless of case.
    fn insert_group(&self, group: &Group, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// One group by id.
    fn get_group(&self, id: Uuid) -> impl Future<Output = Result<Option<Group>>> + Send;
    /// One group by name, regardless of case.
    fn get_group_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Group>>> + Send;
    /// A page of groups ordered by name.
    fn list_groups(&self, query: &GroupQuery) -> impl Future<Output = Result<Page<Group>>> + Send;
    /// Renames a group.
    fn rename_group(
        &self,
        id: Uuid,
        name: &GroupName,
        now: OffsetDateTime,
        actor: &Actor,
    ) -> impl Future<Output = Result<Group>> + Send;
    /// Deletes a group and its memberships; returns what was deleted.
    fn delete_group(&self, id: Uuid, actor: &Actor) -> impl Future<Output = Result<Group>> + Send;
    /// Adds a member; `false` when they already were one (nothing recorded then).
    fn add_member(
        &self,
        group: Uuid,
        user: Uuid,
        now: OffsetDateTime,
        actor: &Actor,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Removes a member; `false` when they were not one (nothing recorded then).
    fn remove_member(
        &self,
        group: Uuid,
        user: Uuid,
        now: OffsetDateTime,
        actor: &Actor,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Creates (`previous_version` = `None`) or replaces a group, and when `members` is given makes
    /// them its exact membership, all in one transaction with one change event per change.
    /// A replaced group must still have `previous_version` (else
    /// [`Error::PreconditionFailed`](crate::domain::Error::PreconditionFailed)).
    fn save_group(
        &self,
        group: &Group,
        previous_version: Option<i64>,
        members: Option<&[Uuid]>,
        actor: &Actor,
    ) -> impl Future<Output = Result<Group>> + Send;
    /// Applies membership operations in one transaction: reads only the memberships they name
    /// (every one for a replace), writes only the rows that change, one change event per changed
    /// membership, and a new version when something changed. With `expected_version`, a group at
    /// another version is refused ([`Error::PreconditionFailed`](crate::domain::Error::PreconditionFailed));
    /// a new member must be a user (a SCIM `invalidValue` otherwise). Returns the group as stored.
    fn change_members(
        &self,
        group: Uuid,
        expected_version: Option<i64>,
        ops: &[MemberOp],
        now: OffsetDateTime,
        actor: &Actor,
    ) -> impl Future<Output = Result<Group>> + Send;
}

/// A SCIM search: filter, sort and the page wanted.
#[derive(Debug, Clone, Copy)]
pub struct ScimSearch<'a> {
    /// Only resources matching this filter.
    pub filter: Option<&'a Filter>,
    /// Sort by this attribute, descending when `true`; by id otherwise.
    pub sort: Option<(&'a AttrPath, bool)>,
    /// Resources to skip (`startIndex - 1`).
    pub offset: u64,
    /// Most resources to return (`count`); 0 asks for the total only.
    pub limit: u64,
}

/// What the SCIM server needs beyond the directory stores: filtered, sorted searches evaluated in
/// the database, membership references, and the index of resources stored before it existed.
pub trait ScimStore: Send + Sync {
    /// The total number of users matching, and the requested page of them.
    fn search_users(
        &self,
        schema: &ResourceSchema,
        search: &ScimSearch<'_>,
    ) -> impl Future<Output = Result<(u64, Vec<User>)>> + Send;
    /// The total number of groups matching, and the requested page of them.
    fn search_groups(
        &self,
        schema: &ResourceSchema,
        search: &ScimSearch<'_>,
    ) -> impl Future<Output = Result<(u64, Vec<Group>)>> + Send;
    /// `(user, group)` pairs: the groups of each of `users`.
    fn group_refs(&self, users: &[Uuid]) -> impl Future<Output = Result<Vec<(Uuid, Reference)>>> + Send;
    /// `(group, user)` id pairs: the members of each of `groups`, in the order they were added.
    fn member_ids(&self, groups: &[Uuid]) -> impl Future<Output = Result<Vec<(Uuid, Uuid)>>> + Send;
    /// Builds the search index of users and groups stored before it existed; returns how many.
    fn reindex_missing(&self) -> impl Future<Output = Result<u64>> + Send;
}

/// Reading the change log.
pub trait ChangeLogStore: Send + Sync {
    /// Events with `seq > after`, oldest first, at most `limit`.
    fn changes_after(&self, after: i64, limit: u32) -> impl Future<Output = Result<Vec<ChangeEvent>>> + Send;
    /// Events about one object (as the changed object or the member of a membership), oldest first.
    fn changes_about(&self, id: &str, limit: u32) -> impl Future<Output = Result<Vec<ChangeEvent>>> + Send;
}

/// Administrators and API tokens.
pub trait AdminStore: Send + Sync {
    /// How many administrators exist.
    fn count_admins(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Stores an administrator; refuses a username taken regardless of case.
    fn insert_admin(&self, admin: &Admin) -> impl Future<Output = Result<()>> + Send;
    /// One administrator by username, regardless of case.
    fn get_admin(&self, username: &str) -> impl Future<Output = Result<Option<Admin>>> + Send;
    /// One administrator by id.
    fn get_admin_by_id(&self, id: Uuid) -> impl Future<Output = Result<Option<Admin>>> + Send;
    /// Every administrator, by username.
    fn list_admins(&self) -> impl Future<Output = Result<Vec<Admin>>> + Send;
    /// Replaces an administrator's password hash and sets whether it is a one-time password.
    fn set_admin_password(
        &self,
        id: Uuid,
        password_hash: &str,
        must_change: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets an administrator's role and when it was disabled (`None`: enabled).
    fn set_admin_access(
        &self,
        id: Uuid,
        role: Role,
        disabled_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Counts one more failed login (atomically) and returns the failures in a row.
    fn count_failed_login(&self, id: Uuid) -> impl Future<Output = Result<i64>> + Send;
    /// Sets the failed-login state: the count and until when logins are refused.
    fn set_login_lock(
        &self,
        id: Uuid,
        failed_logins: i64,
        locked_until: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores a token by the SHA-256 of its secret, acting for administrator `owner` if given.
    fn insert_token(
        &self,
        token: &ApiToken,
        token_hash: &str,
        owner: Option<Uuid>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The unrevoked token with this hash whose owner (if any) is not disabled, marking it used
    /// at `now`.
    fn use_token(&self, token_hash: &str, now: OffsetDateTime)
    -> impl Future<Output = Result<Option<ApiToken>>> + Send;
    /// All tokens, newest first.
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<ApiToken>>> + Send;
    /// Revokes a token; returns it.
    fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> impl Future<Output = Result<ApiToken>> + Send;
    /// Stores a new console session by the SHA-256 of its cookie secret.
    fn insert_session(
        &self,
        id_hash: &str,
        admin_id: Uuid,
        csrf_token: &str,
        now: OffsetDateTime,
        remote_addr: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The session with this hash, with its administrator.
    fn get_session(&self, id_hash: &str) -> impl Future<Output = Result<Option<Session>>> + Send;
    /// Records that a session was used at `now`.
    fn touch_session(&self, id_hash: &str, now: OffsetDateTime) -> impl Future<Output = Result<()>> + Send;
    /// Ends one session.
    fn delete_session(&self, id_hash: &str) -> impl Future<Output = Result<()>> + Send;
    /// Ends every session of an administrator.
    fn delete_sessions_of(&self, admin_id: Uuid) -> impl Future<Output = Result<()>> + Send;
    /// Appends a line to the audit log.
    fn insert_audit(&self, record: &AuditRecord) -> impl Future<Output = Result<()>> + Send;
    /// The newest `limit` audit lines, newest first, older than `before` when given.
    fn list_audit(
        &self,
        limit: i64,
        before: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<Vec<AuditRecord>>> + Send;
}

/// An app as stored: its settings and its encrypted bearer token.
#[derive(Debug, Clone)]
pub struct StoredApp {
    /// The settings.
    pub app: App,
    /// The bearer token, encrypted with the hub's secret key (bound to the app id).
    pub token_ciphertext: String,
}

/// Apps, policies, and what the engine remembers about accounts and groups in each app.
/// App and policy writes append to the change log.
pub trait AppStore: Send + Sync {
    /// Stores a new app; refuses a name taken regardless of case.
    fn insert_app(&self, app: &StoredApp, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// Replaces an app whose stored version is still `previous_version`.
    fn update_app(
        &self,
        app: &StoredApp,
        previous_version: i64,
        changed: &[String],
        actor: &Actor,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes an app with its policies and account records.
    fn delete_app(&self, id: Uuid, actor: &Actor) -> impl Future<Output = Result<App>> + Send;
    /// One app by id.
    fn get_app(&self, id: Uuid) -> impl Future<Output = Result<Option<StoredApp>>> + Send;
    /// One app by name, regardless of case.
    fn get_app_by_name(&self, name: &str) -> impl Future<Output = Result<Option<StoredApp>>> + Send;
    /// All apps by name.
    fn list_apps(&self) -> impl Future<Output = Result<Vec<App>>> + Send;
    /// All apps by name, with their encrypted tokens.
    fn list_stored_apps(&self) -> impl Future<Output = Result<Vec<StoredApp>>> + Send;
    /// Records the result of a connection check (not a configuration change: no change-log event).
    fn set_connection(
        &self,
        id: Uuid,
        status: ConnectionStatus,
        message: Option<&str>,
        capabilities: Option<&Capabilities>,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores a policy; refuses a second policy for the same app and group.
    fn insert_policy(&self, policy: &Policy, actor: &Actor) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a policy; returns it.
    fn delete_policy(&self, id: Uuid, actor: &Actor) -> impl Future<Output = Result<Policy>> + Send;
    /// Policies, of one app or all.
    fn list_policies(&self, app: Option<Uuid>) -> impl Future<Output = Result<Vec<Policy>>> + Send;
    /// Whether `user` is active and a member of a group with a policy for `app`.
    fn is_assigned(&self, app: Uuid, user: Uuid) -> impl Future<Output = Result<bool>> + Send;
    /// Those of `users` that are assigned to `app` (see [`AppStore::is_assigned`]).
    fn assigned_among(&self, app: Uuid, users: &[Uuid]) -> impl Future<Output = Result<Vec<Uuid>>> + Send;
    /// The groups of `user` that have a policy for `app`.
    fn policy_groups_of_user(&self, app: Uuid, user: Uuid) -> impl Future<Output = Result<Vec<Uuid>>> + Send;
    /// Whether `group` has a policy for `app`.
    fn has_policy(&self, app: Uuid, group: Uuid) -> impl Future<Output = Result<bool>> + Send;
    /// The account record of `user` in `app`.
    fn get_account(&self, app: Uuid, user: Uuid) -> impl Future<Output = Result<Option<AppAccount>>> + Send;
    /// The account records in `app` of those of `users` that have one.
    fn get_accounts(&self, app: Uuid, users: &[Uuid]) -> impl Future<Output = Result<Vec<AppAccount>>> + Send;
    /// Inserts or replaces an account record.
    fn save_account(&self, account: &AppAccount) -> impl Future<Output = Result<()>> + Send;
    /// Forgets an account record.
    fn delete_account(&self, app: Uuid, user: Uuid) -> impl Future<Output = Result<()>> + Send;
    /// Every account record of an app.
    fn list_accounts(&self, app: Uuid) -> impl Future<Output = Result<Vec<AppAccount>>> + Send;
    /// The record of a group pushed to an app.
    fn get_app_group(&self, app: Uuid, group: Uuid) -> impl Future<Output = Result<Option<AppGroup>>> + Send;
    /// Inserts or replaces a pushed-group record.
    fn save_app_group(&self, group: &AppGroup) -> impl Future<Output = Result<()>> + Send;
    /// Forgets a pushed-group record.
    fn delete_app_group(&self, app: Uuid, group: Uuid) -> impl Future<Output = Result<()>> + Send;
    /// Target ids of the active accounts, in `app`, of the members of `group`, sorted.
    fn member_target_ids(&self, app: Uuid, group: Uuid) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Every user and group a full synchronisation of `app` must visit.
    fn app_subjects(&self, app: Uuid) -> impl Future<Output = Result<(Vec<Uuid>, Vec<Uuid>)>> + Send;
    /// Counts a job's outcome against the app: a success resets the run of transient failures; the
    /// `threshold`-th failure in a row quarantines an active app (returns `true` then).
    fn record_outcome(
        &self,
        app: Uuid,
        transient_failure: bool,
        threshold: i64,
        reason: &str,
        next_probe_at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Holds every request to the app until `until` (the target asked, with 429 and Retry-After).
    fn throttle(&self, app: Uuid, until: OffsetDateTime) -> impl Future<Output = Result<()>> + Send;
    /// Sets the app's state (active, paused, quarantined) with its reason and next probe time;
    /// returning to active clears the failure count.
    fn set_app_state(
        &self,
        app: Uuid,
        state: AppState,
        reason: Option<&str>,
        next_probe_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// How many account records each app has, by app id (apps without accounts are left out).
    fn count_accounts(&self) -> impl Future<Output = Result<Vec<(Uuid, i64)>>> + Send;
}

/// What one dispatch of the change log did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Change-log events consumed (the cursor moved past them).
    pub events: usize,
    /// Jobs those events asked for (a job still pending for the same subject takes a new one in).
    pub jobs: usize,
}

/// The durable work queue.
pub trait QueueStore: Send + Sync {
    /// Turns new change-log events into jobs, advancing the stored cursor in the same transaction.
    fn dispatch_changes(&self, limit: u32) -> impl Future<Output = Result<Dispatched>> + Send;
    /// Queues a job unless one is already pending for the same subject; returns the pending job's id.
    fn enqueue(&self, job: &NewJob) -> impl Future<Output = Result<String>> + Send;
    /// Claims runnable jobs (pending, due, their app able to take work, no other job of the same
    /// subject running) under a lease until `lease_until`, in one transaction: at most
    /// `limits.total`, and per app at most its free slots. Returns each job with its app's flow
    /// limits.
    fn claim_batch(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: &ClaimLimits,
    ) -> impl Future<Output = Result<Vec<(Job, crate::domain::app::FlowControl)>>> + Send;
    /// Records finished jobs (their ends, the writes they left, their report rows) in one
    /// transaction. The outer error fails the whole batch; otherwise each job has its result.
    fn finish_jobs(&self, finished: &[&FinishedJob]) -> impl Future<Output = Result<Vec<Result<()>>>> + Send;
    /// Queues the jobs of one full synchronisation in one transaction; a subject that already
    /// has a pending job keeps it, and that job joins the run. Returns how many subjects the run
    /// covers.
    fn enqueue_run(&self, jobs: &[NewJob]) -> impl Future<Output = Result<u64>> + Send;
    /// User jobs of an app that wait or run.
    fn queued_user_jobs(&self, app: Uuid) -> impl Future<Output = Result<u64>> + Send;
    /// Returns running jobs whose lease ran out (their worker died) to the queue; returns how many.
    fn requeue_expired(&self, now: OffsetDateTime) -> impl Future<Output = Result<u64>> + Send;
    /// Queues a user job for every account deactivated at least as many days before `now` as
    /// its app's `delete_deactivated_after_days` (apps that may delete users); returns how many.
    fn queue_expired_deactivations(&self, now: OffsetDateTime) -> impl Future<Output = Result<usize>> + Send;
    /// One job.
    fn get_job(&self, id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Puts failed jobs (one, or all of an app) back in the queue to run now; returns how many.
    fn retry_failed(&self, app: Uuid, job: Option<&str>) -> impl Future<Output = Result<u64>> + Send;
    /// Removes failed jobs (one, or all of an app); returns how many.
    fn discard_failed(&self, app: Uuid, job: Option<&str>) -> impl Future<Output = Result<u64>> + Send;
    /// Jobs of an app with a status, oldest first.
    fn list_jobs(
        &self,
        app: Uuid,
        status: crate::domain::job::JobStatus,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Job>>> + Send;
    /// Counts of a run's jobs: (total, done, failed).
    fn run_progress(&self, run_id: &str) -> impl Future<Output = Result<(i64, i64, i64)>> + Send;
}

/// How many jobs one claim may take: in all, and per app (its free slots on this node).
#[derive(Debug, Clone, Default)]
pub struct ClaimLimits {
    /// Most jobs in all.
    pub total: usize,
    /// Free slots of the apps this node knows.
    pub free: Vec<(Uuid, usize)>,
    /// Free slots of any other app.
    pub default_free: usize,
}

/// How a report search matches an end user.
#[derive(Debug, Clone)]
pub struct UserMatch {
    /// Username, email (both regardless of case), directory id or target id.
    pub value: String,
    /// Match identifiers that start with `value` instead of equal ones.
    pub prefix: bool,
}

/// Which report records a search returns (newest first).
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// The end user.
    pub user: Option<UserMatch>,
    /// Only this app.
    pub app_id: Option<Uuid>,
    /// Records that started at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Records that started before this time.
    pub to: Option<OffsetDateTime>,
    /// Only this outcome.
    pub outcome: Option<crate::domain::job::Outcome>,
    /// Only this operation.
    pub operation: Option<crate::domain::job::Operation>,
    /// Only users, groups or connection checks.
    pub subject_kind: Option<crate::domain::job::SubjectKind>,
    /// Continue after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// The provisioning report.
pub trait ReportStore: Send + Sync {
    /// Appends a record.
    fn insert_report(&self, report: &Report) -> impl Future<Output = Result<()>> + Send;
    /// Appends many records in one transaction.
    fn insert_reports(&self, reports: &[Report]) -> impl Future<Output = Result<()>> + Send;
    /// The records of one work item, oldest first.
    fn reports_for_correlation(&self, correlation_id: &str) -> impl Future<Output = Result<Vec<Report>>> + Send;
    /// A page of records matching `query`, newest first.
    fn search_reports(&self, query: &ReportQuery) -> impl Future<Output = Result<Page<Report>>> + Send;
    /// Deletes at most `batch` records older than `cutoff`; returns how many.
    fn delete_reports_before(&self, cutoff: OffsetDateTime, batch: u32) -> impl Future<Output = Result<u64>> + Send;
    /// The records about one user or group, oldest first.
    fn reports_for_subject(&self, subject_id: &str, limit: u32) -> impl Future<Output = Result<Vec<Report>>> + Send;
    /// One record by id.
    fn get_report(&self, id: Uuid) -> impl Future<Output = Result<Option<Report>>> + Send;
    /// How many records of each outcome started in each hour from `from_hour` up to `to_hour`
    /// (whole hours since the epoch, UTC); hours without records are left out. One aggregate query.
    fn count_reports_by_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> impl Future<Output = Result<Vec<OutcomeCount>>> + Send;
    /// How many account records each app has in each state.
    fn account_counts(&self) -> impl Future<Output = Result<Vec<(Uuid, AccountState, i64)>>> + Send;
    /// How many jobs each app has pending, running and failed (dead letters).
    fn job_counts(&self) -> impl Future<Output = Result<Vec<(Uuid, JobStatus, i64)>>> + Send;
}

/// How many report records with one outcome started in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeCount {
    /// The hour: whole hours since the epoch (UTC).
    pub hour: i64,
    /// The outcome.
    pub outcome: crate::domain::job::Outcome,
    /// How many records.
    pub count: i64,
}

/// Imports and reconciliations: their runs and items, the links an import makes, the import
/// conflict queue and the schedule.
pub trait TargetRunStore: Send + Sync {
    /// Stores a new run and queues the job that carries it out, in one transaction.
    fn queue_target_run(&self, run: &TargetRun) -> impl Future<Output = Result<()>> + Send;
    /// One run.
    fn get_target_run(&self, id: Uuid) -> impl Future<Output = Result<Option<TargetRun>>> + Send;
    /// The newest runs of an app, newest first.
    fn list_target_runs(&self, app: Uuid, limit: u32) -> impl Future<Output = Result<Vec<TargetRun>>> + Send;
    /// Marks a run running from `now`; the items of an earlier attempt (one whose node died) go.
    fn start_target_run(&self, id: Uuid, now: OffsetDateTime) -> impl Future<Output = Result<()>> + Send;
    /// Stores, in one transaction, a part of a run: its items, the account records of the
    /// accounts it links (a user who has an account record by then keeps it; the answer says, per
    /// link, whether it was stored, and the item of one that was not says so), the conflicts it
    /// found (resolved ones stay resolved) and its report rows.
    fn record_run_progress(
        &self,
        run: Uuid,
        items: &[RunItem],
        links: &[AppAccount],
        conflicts: &[ImportConflict],
        reports: &[Report],
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;
    /// Records where a run is: its status, what it read and counted, its error and warning.
    #[allow(clippy::too_many_arguments)]
    fn record_target_run(
        &self,
        id: Uuid,
        status: RunStatus,
        accounts_read: i64,
        counts: &BTreeMap<String, i64>,
        error: Option<&str>,
        warning: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Items of a run after position `after`, in order.
    fn run_items(&self, run: Uuid, after: i64, limit: u32) -> impl Future<Output = Result<Vec<RunItem>>> + Send;
    /// The import conflicts of an app, oldest first, of one status or all.
    fn list_conflicts(
        &self,
        app: Uuid,
        status: Option<ConflictStatus>,
    ) -> impl Future<Output = Result<Vec<ImportConflict>>> + Send;
    /// One import conflict.
    fn get_conflict(&self, id: Uuid) -> impl Future<Output = Result<Option<ImportConflict>>> + Send;
    /// Resolves an open conflict: links its account (`link`, refused when the user or the
    /// account is linked already) or ignores it, in one transaction.
    fn resolve_conflict(
        &self,
        conflict: &ImportConflict,
        link: Option<&AppAccount>,
        by: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Target ids of the accounts of an app an administrator chose to ignore.
    fn ignored_targets(&self, app: Uuid) -> impl Future<Output = Result<HashSet<String>>> + Send;
    /// Queues the imports and reconciliations whose time has come and sets the next times; of
    /// several nodes only one queues each run. Returns the runs queued.
    fn queue_due_runs(&self, now: OffsetDateTime) -> impl Future<Output = Result<Vec<TargetRun>>> + Send;
    /// Extends the lease of a running job to `until` (a long import or reconciliation keeps its
    /// job while it works); `false` when the job is no longer running.
    fn renew_lease(&self, job: &str, until: OffsetDateTime) -> impl Future<Output = Result<bool>> + Send;
    /// Every account record of an app, lean: user, target id and state (not what was pushed).
    fn account_links(&self, app: Uuid) -> impl Future<Output = Result<Vec<(Uuid, String, AccountState)>>> + Send;
    /// The users an app's policies assign: active members of its policy groups.
    fn assigned_user_ids(&self, app: Uuid) -> impl Future<Output = Result<HashSet<Uuid>>> + Send;
    /// Every pushed-group record of an app.
    fn list_app_groups(&self, app: Uuid) -> impl Future<Output = Result<Vec<AppGroup>>> + Send;
    /// Stores what a reconciliation fixes, in one transaction: account and pushed-group records
    /// set to what the target holds (or forgotten, when it holds nothing), and the jobs that
    /// push the hub's state back.
    fn record_fixes(
        &self,
        accounts: &[AppAccount],
        forget_accounts: &[(Uuid, Uuid)],
        groups: &[AppGroup],
        forget_groups: &[(Uuid, Uuid)],
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<()>> + Send;
    /// When an app's next scheduled import and reconciliation are due (`None`: not scheduled yet).
    fn next_runs(
        &self,
        app: Uuid,
    ) -> impl Future<Output = Result<(Option<OffsetDateTime>, Option<OffsetDateTime>)>> + Send;
}
