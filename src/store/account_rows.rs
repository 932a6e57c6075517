//! The statements that store and remove the engine's account and app group records, built for
//! the transactions of the finisher and of import and reconciliation runs.

use super::app_rows::to_json;
use super::sql::{Sql, micros};
use crate::domain::Result;
use crate::domain::app::{AccessLoss, AppAccount, AppGroup};
use uuid::Uuid;

/// The upsert of an account record.
pub(super) fn save_account_sql(account: &AppAccount) -> Sql {
    save_accounts_sql(&[account])
}

/// The upsert of many account records in one statement (each key at most once).
pub(super) fn save_accounts_sql(accounts: &[&AppAccount]) -> Sql {
    insert_accounts_sql(accounts).push(
        " ON CONFLICT (app_id, user_id) DO UPDATE SET target_id = excluded.target_id, target_username = excluded.target_username, \
               state = excluded.state, fingerprint = excluded.fingerprint, pushed = excluded.pushed, \
               deactivated_at = excluded.deactivated_at, lost_access = excluded.lost_access, updated_at = excluded.updated_at",
    )
}

/// The INSERT of many account records, to be finished with what a conflict does.
pub(super) fn insert_accounts_sql(accounts: &[&AppAccount]) -> Sql {
    let mut sql = Sql::new(
        "INSERT INTO app_accounts (app_id, user_id, target_id, target_username, state, fingerprint, pushed, deactivated_at, lost_access, updated_at) VALUES ",
    );
    for (i, account) in accounts.iter().enumerate() {
        sql = sql
            .push(if i == 0 { "(" } else { ", (" })
            .bind_text(account.app_id.to_string())
            .push(", ")
            .bind_text(account.user_id.to_string())
            .push(", ")
            .bind_text(account.target_id.clone())
            .push(", ")
            .bind_text(account.target_username.clone())
            .push(", ")
            .bind_text(account.state.as_str())
            .push(", ")
            .bind_text(account.fingerprint.clone())
            .push(", ")
            .bind_text(account.pushed.to_string())
            .push(", ")
            .bind_opt_int(account.deactivated_at.map(micros))
            .push(", ")
            .bind_opt_text(account.lost_access.map(AccessLoss::as_str))
            .push(", ")
            .bind_int(micros(account.updated_at))
            .push(")");
    }
    sql
}

/// The deletion of an account record.
pub(super) fn delete_account_sql(app: Uuid, user: Uuid) -> Sql {
    Sql::new("DELETE FROM app_accounts WHERE app_id = ")
        .bind_text(app.to_string())
        .push(" AND user_id = ")
        .bind_text(user.to_string())
}

/// The upsert of a pushed group's record.
pub(super) fn save_app_group_sql(group: &AppGroup) -> Result<Sql> {
    Ok(Sql::new("INSERT INTO app_groups (app_id, group_id, target_id, pushed_name, pushed_members, updated_at) VALUES (")
            .bind_text(group.app_id.to_string()).push(", ")
            .bind_text(group.group_id.to_string()).push(", ")
            .bind_text(group.target_id.clone()).push(", ")
            .bind_text(group.pushed_name.clone()).push(", ")
            .bind_text(to_json(&group.pushed_members)?).push(", ")
            .bind_int(micros(crate::domain::now()))
            .push(") ON CONFLICT (app_id, group_id) DO UPDATE SET target_id = excluded.target_id, pushed_name = excluded.pushed_name, \
                   pushed_members = excluded.pushed_members, updated_at = excluded.updated_at"))
}

/// The deletion of a pushed group's record.
pub(super) fn delete_app_group_sql(app: Uuid, group: Uuid) -> Sql {
    Sql::new("DELETE FROM app_groups WHERE app_id = ")
        .bind_text(app.to_string())
        .push(" AND group_id = ")
        .bind_text(group.to_string())
}
