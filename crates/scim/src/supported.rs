//! Which filters the hub evaluates, beyond the grammar: the rules shared by the hub's database
//! translation (`provisio::store::scim_filter`) and the in-memory evaluator ([`crate::eval`]), so both accept and
//! refuse the same filters.
//!
//! - Memberships (`User.groups`, `Group.members`) are filtered by id only: `pr` on the attribute or
//!   its `value`, `eq`/`ne` with a string on the attribute or its `value` (ids ignore case), and the
//!   value path `[value eq "id"]`.
//! - Of `meta`, only `created` and `lastModified` can be filtered on, with comparisons or `pr`.
//! - `meta` takes no value path (`meta[...]`): compare its sub-attributes directly.

use crate::ast::{AttrPath, CompareOp, Filter};
use crate::error::{Error, Result, ScimErrorType};
use crate::schema::ResourceSchema;
use serde_json::Value;

fn refuse(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidFilter, detail)
}

/// The membership attribute of a resource type: `groups` for User, `members` for Group.
pub fn membership_attribute(schema: &ResourceSchema) -> Option<&'static str> {
    match schema.name.as_str() {
        "User" => Some("groups"),
        "Group" => Some("members"),
        _ => None,
    }
}

fn is_membership(path: &AttrPath, schema: &ResourceSchema) -> bool {
    let core = path
        .urn
        .as_deref()
        .is_none_or(|urn| urn.eq_ignore_ascii_case(&schema.core.id));
    core && membership_attribute(schema).is_some_and(|m| path.attr.eq_ignore_ascii_case(m))
}

fn is_meta(path: &AttrPath) -> bool {
    path.urn.is_none() && path.attr.eq_ignore_ascii_case("meta")
}

fn check_meta(path: &AttrPath) -> Result<()> {
    match path.sub.as_deref() {
        Some(sub) if sub.eq_ignore_ascii_case("created") || sub.eq_ignore_ascii_case("lastModified") => Ok(()),
        _ => Err(refuse(
            "of meta, only meta.created and meta.lastModified can be filtered on",
        )),
    }
}

fn check_membership_value(path: &AttrPath, name: &str) -> Result<()> {
    match path.sub.as_deref() {
        None => Ok(()),
        Some(sub) if sub.eq_ignore_ascii_case("value") => Ok(()),
        Some(_) => Err(refuse(format!("'{name}' can be filtered on its value (an id) only"))),
    }
}

/// Checks `filter` against the rules above; grammar and schema checks are the evaluator's.
pub fn check(filter: &Filter, schema: &ResourceSchema) -> Result<()> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check(a, schema)?;
            check(b, schema)
        }
        Filter::Not(inner) => check(inner, schema),
        Filter::Present(path) => {
            if is_meta(path) {
                return check_meta(path);
            }
            if is_membership(path, schema) {
                return check_membership_value(path, &path.attr);
            }
            Ok(())
        }
        Filter::Compare { path, op, value } => {
            if is_meta(path) {
                return check_meta(path);
            }
            if is_membership(path, schema) {
                check_membership_value(path, &path.attr)?;
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) || !matches!(value, Value::String(_)) {
                    return Err(refuse(format!(
                        "'{}' compares with eq or ne against a string id",
                        path.attr
                    )));
                }
            }
            Ok(())
        }
        Filter::ValuePath { path, filter } => {
            if is_membership(path, schema) {
                return match filter.as_ref() {
                    Filter::Compare {
                        path: inner,
                        op: CompareOp::Eq,
                        value: Value::String(_),
                    } if inner.attr.eq_ignore_ascii_case("value") && inner.sub.is_none() && inner.urn.is_none() => {
                        Ok(())
                    }
                    _ => Err(refuse(format!(
                        "a '{}' value filter can only be [value eq \"id\"]",
                        path.attr
                    ))),
                };
            }
            if is_meta(path) {
                return Err(refuse(
                    "meta takes no value filter: compare meta.created or meta.lastModified",
                ));
            }
            Ok(())
        }
    }
}
