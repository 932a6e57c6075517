//! The SCIM store: searches of users and groups (translated by `scim_filter.rs`, loaded with
//! the users' and groups' own queries), membership references for rendering resources, and the
//! index of resources stored before the index existed (written by `index.rs`).

use super::group_rows::{group_from_row, select_groups};
use super::index::{Stored, index_group, index_user};
use super::scim_filter::Kind;
use super::sql::{Sql, SqlStore, get, get_uuid};
use super::users::{select_users, user_from_row};
use super::{ScimSearch, ScimStore};
use crate::domain::Result;
use crate::domain::group::Group;
use crate::domain::scim::resource::Reference;
use crate::domain::scim::schema::ResourceSchema;
use crate::domain::user::User;
use uuid::Uuid;

impl ScimStore for SqlStore {
    async fn search_users(&self, schema: &ResourceSchema, search: &ScimSearch<'_>) -> Result<(u64, Vec<User>)> {
        let (total, ids) = self.search_ids(Kind::Users, schema, search).await?;
        if ids.is_empty() {
            return Ok((total, Vec::new()));
        }
        let mut users = super::UserStore::get_users(self, &ids).await?;
        users.sort_by_key(|u| ids.iter().position(|id| *id == u.id));
        Ok((total, users))
    }

    async fn search_groups(&self, schema: &ResourceSchema, search: &ScimSearch<'_>) -> Result<(u64, Vec<Group>)> {
        let (total, ids) = self.search_ids(Kind::Groups, schema, search).await?;
        if ids.is_empty() {
            return Ok((total, Vec::new()));
        }
        let rows = select_groups()
            .push(" WHERE g.id IN ")
            .bind_text_list(ids.iter().map(Uuid::to_string))
            .fetch_all(&self.pool)
            .await?;
        let mut groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
        groups.sort_by_key(|g| ids.iter().position(|id| *id == g.id));
        Ok((total, groups))
    }

    async fn group_refs(&self, users: &[Uuid]) -> Result<Vec<(Uuid, Reference)>> {
        let mut out = Vec::new();
        for chunk in users.chunks(200) {
            let rows = Sql::new(
                "SELECT m.user_id, g.id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id IN ",
            )
            .bind_text_list(chunk.iter().map(Uuid::to_string))
            .push(" ORDER BY g.name_key, g.id")
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                out.push((
                    get_uuid(&row, "user_id")?,
                    Reference {
                        id: get_uuid(&row, "id")?,
                        display: get(&row, "name")?,
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn member_ids(&self, groups: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        let mut out = Vec::new();
        for chunk in groups.chunks(200) {
            let rows = Sql::new("SELECT group_id, user_id FROM group_members WHERE group_id IN ")
                .bind_text_list(chunk.iter().map(Uuid::to_string))
                .push(" ORDER BY added_at, user_id")
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                out.push((get_uuid(&row, "group_id")?, get_uuid(&row, "user_id")?));
            }
        }
        Ok(out)
    }

    async fn reindex_missing(&self) -> Result<u64> {
        let mut done = 0;
        loop {
            let rows = select_users()
                .push(" WHERE id NOT IN (SELECT resource_id FROM scim_index WHERE attr = 'username') ORDER BY id LIMIT 200")
                .fetch_all(&self.pool)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
            super::users::attach_attributes(&self.pool, &mut users).await?;
            let mut tx = self.begin_write().await?;
            for user in &users {
                index_user(&mut tx, user, Stored::Before).await?;
            }
            tx.commit().await?;
            done += users.len() as u64;
        }
        loop {
            let rows = select_groups()
                .push(" WHERE g.id NOT IN (SELECT resource_id FROM scim_index WHERE attr = 'displayname') ORDER BY g.id LIMIT 200")
                .fetch_all(&self.pool)
                .await?;
            if rows.is_empty() {
                break;
            }
            let groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
            let mut tx = self.begin_write().await?;
            for group in &groups {
                index_group(&mut tx, group, Stored::Before).await?;
            }
            tx.commit().await?;
            done += groups.len() as u64;
        }
        Ok(done)
    }
}
