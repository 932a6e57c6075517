//! Dispatching the change log: each new event becomes the jobs of the apps it concerns (a user's
//! apps, the apps that push a group, every member of a group a new policy names, every subject of
//! a changed app), queued in the transaction that moves the outbound cursor past it. The apps of
//! all the users and groups of a batch of events are read with one statement per few hundred.

use super::Dispatched;
use super::jobs::insert_jobs;
use super::sql::{Sql, SqlStore, WriteTx, get};
use crate::domain::app::Features;
use crate::domain::job::{NewJob, SubjectKind};
use crate::domain::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Users or groups per look-up statement.
const LOOKUP_CHUNK: usize = 400;

async fn ids(tx: &mut WriteTx, sql: Sql) -> Result<Vec<String>> {
    let rows = sql.fetch_all(tx.conn()).await?;
    rows.iter().map(|r| get(r, "id")).collect()
}

/// The apps that must reconcile each of `users`: those with a policy on one of the user's groups,
/// and those where the user has an account.
async fn apps_for_users(tx: &mut WriteTx, users: &BTreeSet<String>) -> Result<HashMap<String, Vec<String>>> {
    let mut apps: HashMap<String, Vec<String>> = HashMap::new();
    let users: Vec<&String> = users.iter().collect();
    for chunk in users.chunks(LOOKUP_CHUNK) {
        let list = || chunk.iter().map(|u| (*u).clone());
        let rows = Sql::new(
            "SELECT m.user_id AS user_id, p.app_id AS id FROM policies p JOIN group_members m ON m.group_id = p.group_id \
             WHERE m.user_id IN ",
        )
        .bind_text_list(list())
        .push(" UNION SELECT user_id AS user_id, app_id AS id FROM app_accounts WHERE user_id IN ")
        .bind_text_list(list())
        .push(" ORDER BY 1, 2")
        .fetch_all(tx.conn())
        .await?;
        for row in rows {
            apps.entry(get(&row, "user_id")?).or_default().push(get(&row, "id")?);
        }
    }
    Ok(apps)
}

/// The apps that push each of `groups` (or pushed it): with a policy on it or a record of it, and
/// group push on.
async fn apps_pushing_groups(tx: &mut WriteTx, groups: &BTreeSet<String>) -> Result<HashMap<String, Vec<String>>> {
    let mut apps: HashMap<String, Vec<String>> = HashMap::new();
    let groups: Vec<&String> = groups.iter().collect();
    for chunk in groups.chunks(LOOKUP_CHUNK) {
        let list = || chunk.iter().map(|g| (*g).clone());
        let rows = Sql::new(
            "SELECT x.group_id AS group_id, a.id AS id, a.features AS features FROM apps a JOIN \
             (SELECT app_id, group_id FROM policies WHERE group_id IN ",
        )
        .bind_text_list(list())
        .push(" UNION SELECT app_id, group_id FROM app_groups WHERE group_id IN ")
        .bind_text_list(list())
        .push(") x ON x.app_id = a.id ORDER BY 1, 2")
        .fetch_all(tx.conn())
        .await?;
        for row in rows {
            let features: String = get(&row, "features")?;
            let features: Features =
                serde_json::from_str(&features).map_err(|e| Error::Storage(format!("app features: {e}")))?;
            if features.push_groups {
                apps.entry(get(&row, "group_id")?).or_default().push(get(&row, "id")?);
            }
        }
    }
    Ok(apps)
}

/// Whether `app` pushes groups (false for an app that is gone).
pub(super) async fn app_pushes_groups(tx: &mut WriteTx, app: &str) -> Result<bool> {
    let row = Sql::new("SELECT features FROM apps WHERE id = ")
        .bind_text(app.to_owned())
        .fetch_optional(tx.conn())
        .await?;
    match row {
        Some(row) => {
            let features: String = get(&row, "features")?;
            let features: Features =
                serde_json::from_str(&features).map_err(|e| Error::Storage(format!("app features: {e}")))?;
            Ok(features.push_groups)
        }
        None => Ok(false),
    }
}

fn user_job(app: &str, user: &str, cause: &str) -> Result<NewJob> {
    Ok(NewJob {
        app_id: Uuid::parse_str(app).map_err(|e| Error::Storage(e.to_string()))?,
        subject_kind: SubjectKind::User,
        subject_id: user.to_owned(),
        run_id: None,
        cause: cause.to_owned(),
        not_before: None,
    })
}

fn group_job(app: &str, group: &str, cause: &str) -> Result<NewJob> {
    Ok(NewJob {
        subject_kind: SubjectKind::Group,
        ..user_job(app, group, cause)?
    })
}

async fn app_subjects_in(tx: &mut WriteTx, app: Uuid) -> Result<(Vec<String>, Vec<String>)> {
    let users = ids(
        tx,
        Sql::new(
            "SELECT m.user_id AS id FROM group_members m JOIN policies p ON p.group_id = m.group_id WHERE p.app_id = ",
        )
        .bind_text(app.to_string())
        .push(" UNION SELECT user_id AS id FROM app_accounts WHERE app_id = ")
        .bind_text(app.to_string()),
    )
    .await?;
    let groups = ids(
        tx,
        Sql::new("SELECT group_id AS id FROM policies WHERE app_id = ")
            .bind_text(app.to_string())
            .push(" UNION SELECT group_id AS id FROM app_groups WHERE app_id = ")
            .bind_text(app.to_string()),
    )
    .await?;
    Ok((users, groups))
}

impl SqlStore {
    /// Turns up to `limit` new change-log events into jobs and moves the cursor past them, in one
    /// transaction; returns how many events it read and how many jobs they asked for.
    pub(super) async fn dispatch(&self, limit: u32) -> Result<Dispatched> {
        // A read first: no write transaction (and no wait for the writers' turn) when nothing is new.
        let pending = Sql::new(
            "SELECT 1 AS n FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound') LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if pending.is_none() {
            return Ok(Dispatched::default());
        }
        let mut tx = self.begin_write().await?;
        Sql::new("UPDATE change_cursors SET last_seq = last_seq WHERE name = 'outbound'")
            .execute(tx.conn())
            .await?;
        let cursor: i64 = match Sql::new("SELECT last_seq FROM change_cursors WHERE name = 'outbound'")
            .fetch_optional(tx.conn())
            .await?
        {
            Some(row) => get(&row, "last_seq")?,
            None => return Err(Error::Storage("the outbound change cursor is missing".into())),
        };
        let rows = Sql::new("SELECT seq, entity, entity_id, related_id, operation, data FROM change_log WHERE seq > ")
            .bind_int(cursor)
            .push(" ORDER BY seq LIMIT ")
            .bind_int(i64::from(limit.max(1)))
            .fetch_all(tx.conn())
            .await?;
        if rows.is_empty() {
            return Ok(Dispatched::default());
        }
        // The apps each user and group of these events concern, read for all of them at once.
        let mut users = BTreeSet::new();
        let mut groups = BTreeSet::new();
        for row in &rows {
            let entity: String = get(row, "entity")?;
            let entity_id: String = get(row, "entity_id")?;
            let related: Option<String> = get(row, "related_id")?;
            match entity.as_str() {
                "user" => {
                    users.insert(entity_id);
                }
                "membership" => {
                    users.extend(related);
                    groups.insert(entity_id);
                }
                "group" => {
                    groups.insert(entity_id);
                }
                _ => {}
            }
        }
        let apps_of_user = apps_for_users(&mut tx, &users).await?;
        let apps_of_group = apps_pushing_groups(&mut tx, &groups).await?;
        let none = Vec::new();
        let mut jobs = Vec::new();
        let mut last = cursor;
        for row in &rows {
            let seq: i64 = get(row, "seq")?;
            last = seq;
            let cause = format!("change:{seq}");
            let entity: String = get(row, "entity")?;
            let entity_id: String = get(row, "entity_id")?;
            let related: Option<String> = get(row, "related_id")?;
            match entity.as_str() {
                "user" => {
                    for app in apps_of_user.get(&entity_id).unwrap_or(&none) {
                        jobs.push(user_job(app, &entity_id, &cause)?);
                    }
                }
                "membership" => {
                    if let Some(user) = &related {
                        for app in apps_of_user.get(user).unwrap_or(&none) {
                            jobs.push(user_job(app, user, &cause)?);
                        }
                    }
                    for app in apps_of_group.get(&entity_id).unwrap_or(&none) {
                        jobs.push(group_job(app, &entity_id, &cause)?);
                    }
                }
                "group" => {
                    for app in apps_of_group.get(&entity_id).unwrap_or(&none) {
                        jobs.push(group_job(app, &entity_id, &cause)?);
                    }
                }
                "policy" => {
                    let data: String = get(row, "data")?;
                    let data: serde_json::Value =
                        serde_json::from_str(&data).map_err(|e| Error::Storage(e.to_string()))?;
                    let (Some(app), Some(group)) =
                        (data["policy"]["app_id"].as_str(), data["policy"]["group_id"].as_str())
                    else {
                        continue;
                    };
                    let members = ids(
                        &mut tx,
                        Sql::new("SELECT user_id AS id FROM group_members WHERE group_id = ")
                            .bind_text(group.to_owned()),
                    )
                    .await?;
                    for user in members {
                        jobs.push(user_job(app, &user, &cause)?);
                    }
                    if app_pushes_groups(&mut tx, app).await? {
                        jobs.push(group_job(app, group, &cause)?);
                    }
                }
                "app" => {
                    let operation: String = get(row, "operation")?;
                    if operation == "deleted" {
                        continue;
                    }
                    let data: String = get(row, "data")?;
                    let changed: Vec<String> = serde_json::from_str::<serde_json::Value>(&data)
                        .ok()
                        .and_then(|d| serde_json::from_value(d["changed"].clone()).ok())
                        .unwrap_or_default();
                    if operation == "updated" && !crate::domain::app::App::change_reaches_accounts(&changed) {
                        continue;
                    }
                    let app_id = Uuid::parse_str(&entity_id).map_err(|e| Error::Storage(e.to_string()))?;
                    let (users, groups) = app_subjects_in(&mut tx, app_id).await?;
                    for user in users {
                        jobs.push(user_job(&entity_id, &user, &cause)?);
                    }
                    let push_groups = Sql::new("SELECT features, connection_status FROM apps WHERE id = ")
                        .bind_text(entity_id.clone())
                        .fetch_optional(tx.conn())
                        .await?;
                    if let Some(row) = push_groups {
                        let features: String = get(&row, "features")?;
                        let status: String = get(&row, "connection_status")?;
                        let features: Features =
                            serde_json::from_str(&features).map_err(|e| Error::Storage(e.to_string()))?;
                        if features.push_groups {
                            for group in groups {
                                jobs.push(group_job(&entity_id, &group, &cause)?);
                            }
                        }
                        if status == "unchecked" {
                            jobs.push(NewJob {
                                app_id,
                                subject_kind: SubjectKind::Connection,
                                subject_id: entity_id.clone(),
                                run_id: None,
                                cause: cause.clone(),
                                not_before: None,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        insert_jobs(&mut tx, &jobs).await?;
        Sql::new("UPDATE change_cursors SET last_seq = ")
            .bind_int(last)
            .push(" WHERE name = 'outbound'")
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(Dispatched {
            events: rows.len(),
            jobs: jobs.len(),
        })
    }
}
