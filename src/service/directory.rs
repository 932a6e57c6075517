//! Directory operations: custom attributes, users, groups and memberships.

use crate::domain::admin::Actor;
use crate::domain::attribute::{AttributeDefinition, AttributeType, validate_attribute_name};
use crate::domain::change::{ChangeEvent, ChangeOp};
use crate::domain::group::{Group, NewGroup};
use crate::domain::scim::members::MemberOp;
use crate::domain::user::{NewUser, User, UserSource, UserUpdate};
use crate::domain::values::{GroupName, profile_text};
use crate::domain::{Error, Page, Result, now};
use crate::service::cache::{CACHE_TTL, TtlCache};
use crate::service::latest::Turns;
use crate::store::{AttributeStore, ChangeLogStore, GroupQuery, GroupStore, UserQuery, UserStore};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// What an administrator supplies to define a custom attribute.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttribute {
    /// Identifier (`title`, `language`, ...).
    pub name: String,
    /// Label; defaults to the name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Whether every user must have a value (default `false`).
    #[serde(default)]
    pub required: bool,
    /// Free description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A change to a custom attribute definition; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeUpdate {
    /// New label.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New type (only while no user holds a value).
    #[serde(default, rename = "type")]
    pub kind: Option<AttributeType>,
    /// Make required or optional.
    #[serde(default)]
    pub required: Option<bool>,
    /// New description, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Directory operations over any store that implements the directory traits.
#[derive(Debug, Clone)]
pub struct DirectoryService<S> {
    store: S,
    turns: Turns,
    /// The custom attribute definitions, for [`CACHE_TTL`]; cleared by every definition change
    /// made through this service (and its clones).
    definitions: TtlCache<(), Arc<Vec<AttributeDefinition>>>,
}

impl<S> DirectoryService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + Clone,
{
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        Self {
            store,
            turns: Turns::default(),
            definitions: TtlCache::new(CACHE_TTL),
        }
    }

    /// The writers' turns on users and groups; services that share them never collide.
    pub fn turns(&self) -> &Turns {
        &self.turns
    }

    // ---- custom attributes ----

    /// All custom attribute definitions.
    pub async fn list_attributes(&self) -> Result<Vec<AttributeDefinition>> {
        Ok(self.attribute_definitions().await?.as_ref().clone())
    }

    /// All custom attribute definitions, shared: read from the store at most once per
    /// [`CACHE_TTL`], and again right after a change made through this service. A change made on
    /// another node is seen within the TTL.
    pub async fn attribute_definitions(&self) -> Result<Arc<Vec<AttributeDefinition>>> {
        if let Some(definitions) = self.definitions.get(&()) {
            return Ok(definitions);
        }
        let generation = self.definitions.generation();
        let definitions = Arc::new(self.store.list_attributes().await?);
        self.definitions.insert((), Arc::clone(&definitions), generation);
        Ok(definitions)
    }

    /// Drops the cached attribute definitions, after definitions were changed by a write that did
    /// not go through this service (a configuration apply).
    pub fn forget_attribute_definitions(&self) {
        self.definitions.clear();
    }

    /// One custom attribute definition.
    pub async fn get_attribute(&self, name: &str) -> Result<AttributeDefinition> {
        self.store
            .get_attribute(name)
            .await?
            .ok_or_else(|| Error::not_found("attribute", name))
    }

    /// Defines a custom attribute.
    pub async fn create_attribute(&self, input: NewAttribute, actor: &Actor) -> Result<AttributeDefinition> {
        validate_attribute_name(&input.name)?;
        let display_name = profile_text("display_name", input.display_name)?.unwrap_or_else(|| input.name.clone());
        let at = now();
        let def = AttributeDefinition {
            name: input.name,
            display_name,
            kind: input.kind,
            required: input.required,
            description: profile_text("description", input.description)?,
            created_at: at,
            updated_at: at,
        };
        let created = self.store.create_attribute(&def, actor).await;
        self.definitions.clear();
        created?;
        Ok(def)
    }

    /// Changes a custom attribute definition.
    pub async fn update_attribute(
        &self,
        name: &str,
        update: AttributeUpdate,
        actor: &Actor,
    ) -> Result<AttributeDefinition> {
        let mut def = self.get_attribute(name).await?;
        if let Some(display_name) = update.display_name {
            def.display_name = profile_text("display_name", Some(display_name))?
                .ok_or_else(|| Error::invalid("display_name", "must not be empty"))?;
        }
        if let Some(kind) = update.kind {
            def.kind = kind;
        }
        if let Some(required) = update.required {
            def.required = required;
        }
        if let Some(description) = update.description {
            def.description = profile_text("description", description)?;
        }
        def.updated_at = now();
        let updated = self.store.update_attribute(&def, actor).await;
        self.definitions.clear();
        updated?;
        Ok(def)
    }

    /// Removes a custom attribute definition that no user holds a value for.
    pub async fn delete_attribute(&self, name: &str, actor: &Actor) -> Result<()> {
        let deleted = self.store.delete_attribute(name, actor).await;
        self.definitions.clear();
        deleted
    }

    // ---- users ----

    /// Creates a user.
    pub async fn create_user(&self, input: NewUser, source: UserSource, actor: &Actor) -> Result<User> {
        let definitions = self.attribute_definitions().await?;
        let user = User::create(input, &definitions, source, now())?;
        self.store.insert_user(&user, actor).await?;
        Ok(user)
    }

    /// Creates many users, sharing the store's statements: each input gets its own outcome, in
    /// order. When the batch is refused for a clash (a username taken meanwhile), its users are
    /// created one by one, so that only the refused ones fail; any other failure (the store
    /// refusing work) is every user's outcome.
    pub async fn create_users(&self, inputs: Vec<NewUser>, source: UserSource, actor: &Actor) -> Vec<Result<User>> {
        let definitions = match self.attribute_definitions().await {
            Ok(definitions) => definitions,
            Err(err) => return inputs.iter().map(|_| Err(err.duplicate())).collect(),
        };
        let at = now();
        let outcomes: Vec<Result<User>> = inputs
            .into_iter()
            .map(|input| User::create(input, &definitions, source, at))
            .collect();
        let valid: Vec<User> = outcomes.iter().filter_map(|o| o.as_ref().ok().cloned()).collect();
        match self.store.insert_users(valid, actor).await {
            Ok(()) => outcomes,
            Err(Error::Conflict { .. }) => {
                let mut singles = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    singles.push(match outcome {
                        Ok(user) => self.store.insert_user(&user, actor).await.map(|()| user),
                        Err(err) => Err(err),
                    });
                }
                singles
            }
            Err(shared) => outcomes
                .into_iter()
                .map(|outcome| outcome.and(Err(shared.duplicate())))
                .collect(),
        }
    }

    /// Finds a user by id or, failing that, by username.
    pub async fn get_user(&self, reference: &str) -> Result<User> {
        if let Ok(id) = Uuid::parse_str(reference)
            && let Some(user) = self.store.get_user(id).await?
        {
            return Ok(user);
        }
        self.store
            .get_user_by_username(reference)
            .await?
            .ok_or_else(|| Error::not_found("user", reference))
    }

    /// A page of users.
    pub async fn list_users(&self, query: &UserQuery) -> Result<Page<User>> {
        self.store.list_users(query).await
    }

    /// Applies a partial change to the user as stored when it is written: a concurrent change in
    /// between makes it read the user again and apply the change to that (see [`Turns::on_latest`]).
    pub async fn update_user(&self, reference: &str, update: UserUpdate, actor: &Actor) -> Result<User> {
        let id = self.get_user(reference).await?.id;
        let definitions = self.attribute_definitions().await?;
        self.turns
            .on_latest(id, false, || async {
                let user = self
                    .store
                    .get_user(id)
                    .await?
                    .ok_or_else(|| Error::not_found("user", reference))?;
                self.replace_user_with(&user, update.clone(), &definitions, actor).await
            })
            .await
    }

    /// Applies `update` to `user` as loaded: fails with [`Error::PreconditionFailed`] if the user
    /// changed since.
    pub async fn replace_user(&self, user: &User, update: UserUpdate, actor: &Actor) -> Result<User> {
        let definitions = self.attribute_definitions().await?;
        self.replace_user_with(user, update, &definitions, actor).await
    }

    /// [`Self::replace_user`] with the custom attribute definitions the caller already read.
    pub async fn replace_user_with(
        &self,
        user: &User,
        update: UserUpdate,
        definitions: &[AttributeDefinition],
        actor: &Actor,
    ) -> Result<User> {
        let (next, changed) = user.apply(update, definitions, now())?;
        if changed.is_empty() {
            return Ok(user.clone());
        }
        let operation = match (user.active, next.active) {
            (true, false) => ChangeOp::Deactivated,
            (false, true) => ChangeOp::Reactivated,
            _ => ChangeOp::Updated,
        };
        self.store
            .update_user(&next, user.version, operation, &changed, actor)
            .await?;
        Ok(next)
    }

    /// Activates or deactivates a user.
    pub async fn set_active(&self, reference: &str, active: bool, actor: &Actor) -> Result<User> {
        let update = UserUpdate {
            active: Some(active),
            ..Default::default()
        };
        self.update_user(reference, update, actor).await
    }

    /// Deletes a user and their memberships.
    pub async fn delete_user(&self, reference: &str, actor: &Actor) -> Result<User> {
        let user = self.get_user(reference).await?;
        self.store.delete_user(user.id, actor).await
    }

    /// The groups a user belongs to.
    pub async fn groups_of_user(&self, reference: &str) -> Result<Vec<Group>> {
        let user = self.get_user(reference).await?;
        self.store.groups_of_user(user.id).await
    }

    // ---- groups ----

    /// Creates a group.
    pub async fn create_group(&self, input: NewGroup, source: UserSource, actor: &Actor) -> Result<Group> {
        let group = new_group(input, source)?;
        self.store.insert_group(&group, actor).await?;
        Ok(group)
    }

    /// Creates a group with `members` as its membership (a SCIM POST), in one transaction with
    /// one change event per member; a member who is not a user is a SCIM `invalidValue`.
    pub async fn create_group_with_members(
        &self,
        input: NewGroup,
        members: &[Uuid],
        source: UserSource,
        actor: &Actor,
    ) -> Result<Group> {
        let group = new_group(input, source)?;
        self.store.save_group(&group, None, Some(members), actor).await
    }

    /// Replaces the name and external id of `group`, and when `members` is given its whole
    /// membership (a SCIM PUT or PATCH), if the group is still at `group.version` (else
    /// `PreconditionFailed`: callers apply their change to the latest state in `turns`).
    pub async fn replace_group(
        &self,
        group: &Group,
        input: NewGroup,
        members: Option<&[Uuid]>,
        actor: &Actor,
    ) -> Result<Group> {
        let name = GroupName::parse(&input.name)?;
        let next = Group {
            name: name.as_str().to_owned(),
            external_id: profile_text("external_id", input.external_id)?,
            updated_at: now(),
            ..group.clone()
        };
        self.store.save_group(&next, Some(group.version), members, actor).await
    }

    /// Finds a group by id or, failing that, by name (regardless of case).
    pub async fn get_group(&self, reference: &str) -> Result<Group> {
        if let Ok(id) = Uuid::parse_str(reference)
            && let Some(group) = self.store.get_group(id).await?
        {
            return Ok(group);
        }
        self.store
            .get_group_by_name(reference)
            .await?
            .ok_or_else(|| Error::not_found("group", reference))
    }

    /// A page of groups.
    pub async fn list_groups(&self, query: &GroupQuery) -> Result<Page<Group>> {
        self.store.list_groups(query).await
    }

    /// Renames a group.
    pub async fn rename_group(&self, reference: &str, name: &str, actor: &Actor) -> Result<Group> {
        let name = GroupName::parse(name)?;
        let group = self.get_group(reference).await?;
        self.store.rename_group(group.id, &name, now(), actor).await
    }

    /// Deletes a group and its memberships.
    pub async fn delete_group(&self, reference: &str, actor: &Actor) -> Result<Group> {
        let group = self.get_group(reference).await?;
        self.store.delete_group(group.id, actor).await
    }

    /// Adds a user to a group; `false` when already a member.
    pub async fn add_member(&self, group: &str, user: &str, actor: &Actor) -> Result<bool> {
        let group = self.get_group(group).await?;
        let user = self.get_user(user).await?;
        self.store.add_member(group.id, user.id, now(), actor).await
    }

    /// Removes a user from a group; `false` when not a member.
    pub async fn remove_member(&self, group: &str, user: &str, actor: &Actor) -> Result<bool> {
        let group = self.get_group(group).await?;
        let user = self.get_user(user).await?;
        self.store.remove_member(group.id, user.id, now(), actor).await
    }

    /// Applies membership operations (a SCIM PATCH read as member deltas) to the latest state of
    /// group `id` in one transaction, touching only the memberships they change; with
    /// `expected_version`, only to that version (else `PreconditionFailed`).
    pub async fn change_members(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        ops: &[MemberOp],
        actor: &Actor,
    ) -> Result<Group> {
        self.store.change_members(id, expected_version, ops, now(), actor).await
    }

    /// A page of a group's members.
    pub async fn list_members(&self, group: &str, cursor: Option<String>, limit: u32) -> Result<Page<User>> {
        let group = self.get_group(group).await?;
        self.store
            .list_users(&UserQuery {
                group: Some(group.id),
                cursor,
                limit,
                ..Default::default()
            })
            .await
    }

    // ---- change log ----

    /// Change-log events after `after`, oldest first.
    pub async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<ChangeEvent>> {
        self.store.changes_after(after, limit).await
    }
}

/// A new group from `input`, validated, with no members yet.
fn new_group(input: NewGroup, source: UserSource) -> Result<Group> {
    Group::create(input, source, now())
}
