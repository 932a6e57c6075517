//! Writing the SCIM search index (`scim_index`): the rows of one user or group rewritten inside
//! the write transaction that stores it, and removed with it. Users, groups and the SCIM store
//! all write through here; the queries over the index live in `scim.rs`.

use super::sql::{Sql, WriteTx};
use crate::domain::Result;
use crate::domain::group::Group;
use crate::domain::scim::discovery::{group_resource_schema, user_resource_schema};
use crate::domain::scim::index::{IndexEntry, entries};
use crate::domain::scim::resource::{group_resource, user_resource};
use crate::domain::user::User;
use uuid::Uuid;

/// Index rows are inserted this many per statement (sqlx's SQLite driver slows with many binds).
const INDEX_CHUNK: usize = 20;

/// Whether a user or group was stored before this write (its old rows go first) or is inserted by
/// it (it has none yet).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Stored before: its old rows go first.
    Before,
    /// Inserted in this transaction: it has none yet.
    New,
}

async fn write_index(tx: &mut WriteTx, id: Uuid, rows: &[IndexEntry], stored: Stored) -> Result<()> {
    if stored == Stored::Before {
        Sql::new("DELETE FROM scim_index WHERE resource_id = ")
            .bind_text(id.to_string())
            .execute(tx.conn())
            .await?;
    }
    let id = id.to_string();
    let rows: Vec<(&str, &IndexEntry)> = rows.iter().map(|row| (id.as_str(), row)).collect();
    insert_index_rows(tx, rows).await
}

/// Inserts index rows of any number of resources, [`INDEX_CHUNK`] to a statement.
async fn insert_index_rows(tx: &mut WriteTx, rows: Vec<(&str, &IndexEntry)>) -> Result<()> {
    // Rows with text, numbers and dateTimes go in separate statements, each binding one kind in
    // every row: PostgreSQL's driver declares a NULL number differently from a number, and a
    // prepared statement keeps the types it was first declared with.
    let kind = |r: &IndexEntry| match (r.num, r.tim) {
        (Some(_), _) => 1,
        (None, Some(_)) => 2,
        (None, None) => 0,
    };
    let mut by_kind: [Vec<(&str, &IndexEntry)>; 3] = Default::default();
    for (id, row) in rows {
        by_kind[kind(row)].push((id, row));
    }
    for (wanted, group) in by_kind.iter().enumerate() {
        for chunk_rows in group.chunks(INDEX_CHUNK) {
            let mut sql = Sql::new("INSERT INTO scim_index (resource_id, attr, elem, sub, txt, num, tim) VALUES ");
            for (i, (id, row)) in chunk_rows.iter().enumerate() {
                if i > 0 {
                    sql = sql.push(", ");
                }
                sql = sql
                    .push("(")
                    .bind_text((*id).to_owned())
                    .push(", ")
                    .bind_text(row.attr.clone())
                    .push(", ")
                    .bind_int(row.elem)
                    .push(", ")
                    .bind_text(row.sub.clone())
                    .push(", ");
                sql = match wanted {
                    1 => sql.push("NULL, ").bind_opt_float(row.num).push(", NULL)"),
                    2 => sql.push("NULL, NULL, ").bind_opt_int(row.tim).push(")"),
                    _ => sql.bind_opt_text(row.txt.clone()).push(", NULL, NULL)"),
                };
            }
            sql.execute(tx.conn()).await?;
        }
    }
    Ok(())
}

/// The user resource schema a write transaction indexes with, read once per transaction.
async fn user_schema(tx: &mut WriteTx) -> Result<crate::domain::scim::schema::ResourceSchema> {
    if let Some(schema) = tx.user_schema.take() {
        return Ok(schema);
    }
    let rows = super::attributes::select_attributes()
        .push(" ORDER BY name")
        .fetch_all(tx.conn())
        .await?;
    let definitions = rows
        .iter()
        .map(super::attributes::attribute_from_row)
        .collect::<Result<Vec<_>>>()?;
    user_resource_schema(&definitions)
}

/// Rewrites the index rows of `user` inside the write transaction that stores it.
pub(super) async fn index_user(tx: &mut WriteTx, user: &User, stored: Stored) -> Result<()> {
    let schema = user_schema(tx).await?;
    let resource = user_resource(user, &[], "");
    let rows = entries(&resource, &schema, &["groups"]);
    tx.user_schema = Some(schema);
    write_index(tx, user.id, &rows, stored).await
}

/// Writes the index rows of `users`, all inserted by this transaction, in shared statements.
pub(super) async fn index_new_users(tx: &mut WriteTx, users: &[User]) -> Result<()> {
    let schema = user_schema(tx).await?;
    let ids: Vec<String> = users.iter().map(|user| user.id.to_string()).collect();
    let rows: Vec<Vec<IndexEntry>> = users
        .iter()
        .map(|user| entries(&user_resource(user, &[], ""), &schema, &["groups"]))
        .collect();
    tx.user_schema = Some(schema);
    let mut all: Vec<(&str, &IndexEntry)> = Vec::new();
    for (id, rows) in ids.iter().zip(&rows) {
        all.extend(rows.iter().map(|row| (id.as_str(), row)));
    }
    insert_index_rows(tx, all).await
}

/// Rewrites the index rows of `group` inside the write transaction that stores it.
pub(super) async fn index_group(tx: &mut WriteTx, group: &Group, stored: Stored) -> Result<()> {
    let schema = group_resource_schema()?;
    let resource = group_resource(group, &[], "");
    write_index(tx, group.id, &entries(&resource, &schema, &["members"]), stored).await
}

/// Removes the index rows of a deleted resource.
pub(super) async fn unindex(tx: &mut WriteTx, id: Uuid) -> Result<()> {
    Sql::new("DELETE FROM scim_index WHERE resource_id = ")
        .bind_text(id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}
