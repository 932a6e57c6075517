//! Group PATCH requests that only change memberships, read as member deltas, so that adding or
//! removing one member of a large group never renders, patches or diffs the whole member list.
//!
//! [`member_ops`] recognises the forms identity providers send (RFC 7644 §3.5.2 and the quirks in
//! `patch.rs`): `add` with path `members` and a list of members; `remove` with path
//! `members[value eq "<id>"]`, with path `members` and a list of members (Entra ID), or with path
//! `members` alone (all of them); `replace` with path `members` and a list (the whole
//! membership). Anything else, or any member it cannot read as a plain user reference
//! (`value`, and optionally `type` User, `display`, `$ref`), returns `None`: the request then
//! takes the general road (`apply_patch` on the rendered group), which gives the same answer and
//! the same errors. [`net_change`] applies the operations, in order, to the memberships they
//! concern and returns what changed, so that one request writes one event per member whose
//! membership it actually changes, as the general road does.

use super::ast::{CompareOp, Filter, PatchPath};
use super::patch::{PatchOp, PatchRequest};
use super::schema::GROUP_SCHEMA;
use serde_json::Value;
use std::collections::HashSet;
use uuid::Uuid;

/// One membership operation of a group PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Makes these users members (those who already are stay as they are).
    Add(Vec<Uuid>),
    /// Ends these users' memberships (those who are not members are ignored).
    Remove(Vec<Uuid>),
    /// Makes these users the whole membership (empty: removes every member).
    Replace(Vec<Uuid>),
}

/// What a request changes: users who become members (in the order first named) and users who
/// stop being members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDelta {
    /// New members.
    pub added: Vec<Uuid>,
    /// Former members.
    pub removed: Vec<Uuid>,
}

impl MemberDelta {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The request as membership operations, when every operation is one (see the module docs).
pub fn member_ops(request: &PatchRequest) -> Option<Vec<MemberOp>> {
    request
        .operations
        .iter()
        .map(|op| member_op(op.op, op.path.as_ref()?, op.value.as_ref()))
        .collect()
}

/// Whether some operation of the request may touch `members` (a path on it, or a path-less value
/// naming it); when none does, a group PATCH can be applied without reading the members.
pub fn touches_members(request: &PatchRequest) -> bool {
    request.operations.iter().any(|op| match &op.path {
        Some(path) => path.attr.attr.eq_ignore_ascii_case("members") || path.attr.attr.contains(':'),
        None => op.value.as_ref().is_none_or(|value| match value {
            Value::Object(map) => map
                .keys()
                .any(|k| k.to_ascii_lowercase().ends_with("members") || k.contains(':')),
            _ => true,
        }),
    })
}

/// Whether applying `ops` needs every current member (a replace does), not only the named ones.
pub fn needs_all_members(ops: &[MemberOp]) -> bool {
    ops.iter().any(|op| matches!(op, MemberOp::Replace(_)))
}

/// Every user the operations name, each once.
pub fn named_users(ops: &[MemberOp]) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for op in ops {
        let (MemberOp::Add(ids) | MemberOp::Remove(ids) | MemberOp::Replace(ids)) = op;
        for id in ids {
            if seen.insert(*id) {
                out.push(*id);
            }
        }
    }
    out
}

/// Applies `ops` in order to `current` and returns the difference. `current` must hold every
/// member when [`needs_all_members`], and otherwise at least those of [`named_users`] who are
/// members (the others are left alone either way).
pub fn net_change(ops: &[MemberOp], current: &HashSet<Uuid>) -> MemberDelta {
    let mut members = current.clone();
    for op in ops {
        match op {
            MemberOp::Add(ids) => members.extend(ids.iter().copied()),
            MemberOp::Remove(ids) => {
                for id in ids {
                    members.remove(id);
                }
            }
            MemberOp::Replace(ids) => members = ids.iter().copied().collect(),
        }
    }
    let added = named_users(ops)
        .into_iter()
        .filter(|id| members.contains(id) && !current.contains(id))
        .collect();
    let mut removed: Vec<Uuid> = current.iter().filter(|id| !members.contains(id)).copied().collect();
    removed.sort();
    MemberDelta { added, removed }
}

fn is_members(path: &PatchPath) -> bool {
    path.attr.attr.eq_ignore_ascii_case("members")
        && path.attr.sub.is_none()
        && path.sub_after_filter.is_none()
        && path
            .attr
            .urn
            .as_deref()
            .is_none_or(|urn| urn.eq_ignore_ascii_case(GROUP_SCHEMA))
}

fn member_op(op: PatchOp, path: &PatchPath, value: Option<&Value>) -> Option<MemberOp> {
    if !is_members(path) {
        return None;
    }
    match (op, &path.filter, value) {
        (PatchOp::Add, None, Some(value)) => Some(MemberOp::Add(member_list(value, false)?)),
        (PatchOp::Replace, None, Some(value)) => Some(MemberOp::Replace(member_list(value, false)?)),
        (PatchOp::Remove, None, None) => Some(MemberOp::Replace(Vec::new())),
        (PatchOp::Remove, None, Some(value)) => Some(MemberOp::Remove(member_list(value, true)?)),
        (PatchOp::Remove, Some(filter), None) => Some(MemberOp::Remove(vec![value_eq(filter)?])),
        _ => None,
    }
}

/// The member ids of a list of member objects. For removals the ids must be written in the
/// canonical form (they are compared with the stored text); a `type` other than User is left
/// to the general road.
fn member_list(value: &Value, removing: bool) -> Option<Vec<Uuid>> {
    let Value::Array(items) = value else { return None };
    if items.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(member) = item else { return None };
        let mut id = None;
        for (key, value) in member {
            match key.to_ascii_lowercase().as_str() {
                "value" => {
                    let text = value.as_str()?;
                    id = Some(if removing {
                        canonical_id(text)?
                    } else {
                        Uuid::parse_str(text).ok()?
                    });
                }
                "type" if value.as_str().is_some_and(|t| t.eq_ignore_ascii_case("User")) => {}
                "display" | "$ref" if value.is_string() || value.is_null() => {}
                _ => return None,
            }
        }
        let id = id?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Some(out)
}

/// `value eq "<id>"`, the filter identity providers put on a member removal.
fn value_eq(filter: &Filter) -> Option<Uuid> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(text),
        } if path.urn.is_none() && path.sub.is_none() && path.attr.eq_ignore_ascii_case("value") => canonical_id(text),
        _ => None,
    }
}

/// A user id written as the 36-character hyphenated form (any case), as ids are rendered.
fn canonical_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::parse_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scim::patch::parse_patch_request;
    use serde_json::json;

    const A: &str = "0190f6b2-0000-7000-8000-00000000000a";
    const B: &str = "0190f6b2-0000-7000-8000-00000000000b";

    fn ops(operations: Value) -> Option<Vec<MemberOp>> {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        member_ops(&parse_patch_request(&body).unwrap())
    }

    fn id(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    #[test]
    fn the_forms_identity_providers_send_are_member_ops() {
        assert_eq!(
            ops(
                json!([{"op": "Add", "path": "members", "value": [{"value": A, "display": "a"}, {"value": B, "type": "User"}]}])
            ),
            Some(vec![MemberOp::Add(vec![id(A), id(B)])])
        );
        assert_eq!(
            ops(json!([{"op": "remove", "path": format!("members[value eq \"{A}\"]")}])),
            Some(vec![MemberOp::Remove(vec![id(A)])])
        );
        assert_eq!(
            ops(json!([{"op": "Remove", "path": "members", "value": [{"value": B}]}])),
            Some(vec![MemberOp::Remove(vec![id(B)])])
        );
        assert_eq!(
            ops(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": A}]}])
            ),
            Some(vec![MemberOp::Replace(vec![id(A)])])
        );
        assert_eq!(
            ops(json!([{"op": "remove", "path": "members"}])),
            Some(vec![MemberOp::Replace(vec![])])
        );
    }

    #[test]
    fn anything_else_takes_the_general_road() {
        for operations in [
            json!([{"op": "replace", "path": "displayName", "value": "x"}]),
            json!([{"op": "add", "path": "members", "value": [{"value": A}]}, {"op": "replace", "path": "displayName", "value": "x"}]),
            json!([{"op": "add", "value": {"members": [{"value": A}]}}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "not-a-uuid"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": A, "type": "Group"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": A, "extra": 1}]}]),
            json!([{"op": "add", "path": "members", "value": []}]),
            json!([{"op": "add", "path": "members", "value": {"value": A}}]),
            json!([{"op": "remove", "path": format!("members[value ne \"{A}\"]")}]),
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", A.replace('-', ""))}]),
            json!([{"op": "replace", "path": format!("members[value eq \"{A}\"].display"), "value": "x"}]),
            json!([{"op": "replace", "path": "members.value", "value": A}]),
        ] {
            assert_eq!(ops(operations.clone()), None, "{operations}");
        }
    }

    #[test]
    fn the_net_change_counts_each_member_once() {
        let current: HashSet<Uuid> = [id(A)].into();
        let add_remove = [MemberOp::Add(vec![id(B)]), MemberOp::Remove(vec![id(B)])];
        assert!(net_change(&add_remove, &current).is_empty());
        let again = [MemberOp::Add(vec![id(A), id(B)])];
        assert_eq!(
            net_change(&again, &current),
            MemberDelta {
                added: vec![id(B)],
                removed: vec![]
            }
        );
        let replace = [MemberOp::Replace(vec![id(B)])];
        assert!(needs_all_members(&replace));
        assert_eq!(
            net_change(&replace, &current),
            MemberDelta {
                added: vec![id(B)],
                removed: vec![id(A)]
            }
        );
    }

    #[test]
    fn requests_that_do_not_name_members_do_not_touch_them() {
        let request = |operations: Value| {
            parse_patch_request(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}),
            )
            .unwrap()
        };
        assert!(!touches_members(&request(
            json!([{"op": "replace", "path": "displayName", "value": "x"}])
        )));
        assert!(!touches_members(&request(
            json!([{"op": "replace", "value": {"id": A, "displayName": "x"}}])
        )));
        assert!(touches_members(&request(
            json!([{"op": "add", "value": {"members": [{"value": A}]}}])
        )));
        assert!(touches_members(&request(json!([{"op": "remove", "path": "members"}]))));
        assert!(touches_members(&request(
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:displayName": "x"}}])
        )));
    }
}
