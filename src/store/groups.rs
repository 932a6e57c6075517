//! SQL for groups and memberships.

use super::group_rows::{group_from_row, select_groups};
use super::sql::{SqlStore, decode_cursor, encode_cursor, like_pattern};
use super::{GroupQuery, GroupStore};
use crate::domain::admin::Actor;
use crate::domain::group::Group;
use crate::domain::scim::members::MemberOp;
use crate::domain::values::GroupName;
use crate::domain::{Page, Result};

use time::OffsetDateTime;
use uuid::Uuid;

use super::group_writes::{
    write_add_member, write_delete, write_group, write_member_changes, write_new_group, write_remove_member,
    write_rename,
};

impl GroupStore for SqlStore {
    async fn insert_group(&self, group: &Group, actor: &Actor) -> Result<()> {
        let (group, actor) = (group.clone(), actor.clone());
        self.write(move |tx| Box::pin(async move { write_new_group(tx, &group, &actor).await }))
            .await
    }

    async fn get_group(&self, id: Uuid) -> Result<Option<Group>> {
        let row = select_groups()
            .push(" WHERE g.id = ")
            .bind_text(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn get_group_by_name(&self, name: &str) -> Result<Option<Group>> {
        let row = select_groups()
            .push(" WHERE g.name_key = ")
            .bind_text(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn list_groups(&self, query: &GroupQuery) -> Result<Page<Group>> {
        let limit = query.limit.clamp(1, 1000);
        let mut sql = select_groups().push(" WHERE 1 = 1");
        if let Some(search) = query.search.as_deref().filter(|s| !s.trim().is_empty()) {
            sql = sql
                .push(" AND g.name_key LIKE ")
                .bind_text(like_pattern(search.trim()))
                .push(" ESCAPE '\\'");
        }
        if let Some(cursor) = &query.cursor {
            sql = sql.push(" AND g.name_key > ").bind_text(decode_cursor(cursor)?);
        }
        let rows = sql
            .push(" ORDER BY g.name_key LIMIT ")
            .bind_int(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if groups.len() > limit as usize {
            groups.truncate(limit as usize);
            groups.last().map(|g| encode_cursor(&g.name.to_lowercase()))
        } else {
            None
        };
        Ok(Page {
            items: groups,
            next_cursor,
        })
    }

    async fn rename_group(&self, id: Uuid, name: &GroupName, now: OffsetDateTime, actor: &Actor) -> Result<Group> {
        let (name, actor) = (name.clone(), actor.clone());
        self.write(move |tx| Box::pin(async move { write_rename(tx, id, &name, now, &actor).await }))
            .await
    }

    async fn delete_group(&self, id: Uuid, actor: &Actor) -> Result<Group> {
        let actor = actor.clone();
        self.write(move |tx| Box::pin(async move { write_delete(tx, id, &actor).await }))
            .await
    }

    async fn add_member(&self, group: Uuid, user: Uuid, now: OffsetDateTime, actor: &Actor) -> Result<bool> {
        let actor = actor.clone();
        self.write(move |tx| Box::pin(async move { write_add_member(tx, group, user, now, &actor).await }))
            .await
    }

    async fn remove_member(&self, group: Uuid, user: Uuid, now: OffsetDateTime, actor: &Actor) -> Result<bool> {
        let actor = actor.clone();
        self.write(move |tx| Box::pin(async move { write_remove_member(tx, group, user, now, &actor).await }))
            .await
    }

    async fn change_members(
        &self,
        group: Uuid,
        expected_version: Option<i64>,
        ops: &[MemberOp],
        now: OffsetDateTime,
        actor: &Actor,
    ) -> Result<Group> {
        let (ops, actor) = (ops.to_vec(), actor.clone());
        self.write(move |tx| {
            Box::pin(async move { write_member_changes(tx, group, expected_version, &ops, now, &actor).await })
        })
        .await
    }

    async fn save_group(
        &self,
        group: &Group,
        previous_version: Option<i64>,
        members: Option<&[Uuid]>,
        actor: &Actor,
    ) -> Result<Group> {
        let (group, members, actor) = (group.clone(), members.map(<[Uuid]>::to_vec), actor.clone());
        self.write(move |tx| {
            Box::pin(async move { write_group(tx, &group, previous_version, members.as_deref(), &actor).await })
        })
        .await
    }
}
