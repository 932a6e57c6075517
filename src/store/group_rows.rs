//! How a group is selected and read from its row (with its member count): shared by the group
//! reads, the group writes and the SCIM searches.

use super::sql::{Sql, from_micros, get, get_uuid};
use crate::domain::Result;
use crate::domain::group::Group;
use crate::domain::user::UserSource;
use sqlx::any::AnyRow;

/// Selects groups as `g` with their member count.
pub(super) fn select_groups() -> Sql {
    Sql::new(
        "SELECT g.id, g.name, g.external_id, g.source, g.version, g.created_at, g.updated_at, \
         (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count FROM groups g",
    )
}

/// Maps a row of [`select_groups`].
pub(super) fn group_from_row(row: &AnyRow) -> Result<Group> {
    Ok(Group {
        id: get_uuid(row, "id")?,
        name: get(row, "name")?,
        external_id: get(row, "external_id")?,
        source: UserSource::parse(&get::<String>(row, "source")?)?,
        member_count: get(row, "member_count")?,
        version: get(row, "version")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}
