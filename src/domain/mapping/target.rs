//! Target paths of a mapping: the SCIM attribute path a rule sets, parsed by the SCIM PATCH-path
//! grammar (`scim::path`) and restricted to what a mapping can set, with the keys that compare
//! paths regardless of case.

use super::{CORE_USER_SCHEMA, MAX_TARGET_LEN};
use crate::domain::error::{Error, Result};
use crate::domain::scim::ast::{CompareOp, Filter, PatchPath};
use crate::domain::scim::path::parse_patch_path;
use serde_json::Value;
use std::fmt;

/// Longest excerpt of a path quoted in an error message.
const MAX_QUOTED_LEN: usize = 80;

/// One `subAttr eq literal` condition of a value filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterTerm {
    /// The sub-attribute compared, as written.
    pub attribute: String,
    /// The literal it must equal (string, boolean or number).
    pub value: Value,
}

/// A parsed SCIM attribute path such as `name.givenName`, `emails[type eq "work"].value` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`: the SCIM PATCH path
/// grammar (`scim::path`, the one parser, fuzzed), restricted to what a mapping can set (value
/// filters of `eq` terms joined by `and`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetPath {
    text: String,
    pub(super) schema: Option<String>,
    pub(super) attribute: String,
    pub(super) filter: Vec<FilterTerm>,
    pub(super) sub_attribute: Option<String>,
}

/// How a path addresses its attribute; one attribute must always be addressed the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathShape {
    Whole,
    SubAttribute,
    Filtered,
}

impl TargetPath {
    /// Parses `text`; a malformed or unsupported path is a validation error on `target`.
    pub fn parse(text: &str) -> Result<Self> {
        parse_target(text).map_err(|reason| Error::invalid("target", reason))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The extension schema URN, as written; `None` for the core User schema.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The attribute name, as written.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// The value filter's conditions; empty when the path has no filter.
    pub fn filter(&self) -> &[FilterTerm] {
        &self.filter
    }

    /// The sub-attribute after the `.`, as written.
    pub fn sub_attribute(&self) -> Option<&str> {
        self.sub_attribute.as_deref()
    }

    /// The name of what the path finally sets: the sub-attribute, else the attribute.
    pub(super) fn leaf(&self) -> &str {
        self.sub_attribute.as_deref().unwrap_or(&self.attribute)
    }

    pub(super) fn shape(&self) -> PathShape {
        if !self.filter.is_empty() {
            PathShape::Filtered
        } else if self.sub_attribute.is_some() {
            PathShape::SubAttribute
        } else {
            PathShape::Whole
        }
    }

    /// Case-insensitive key of the attribute the path sets (schema and attribute name).
    pub(super) fn attribute_key(&self) -> String {
        match &self.schema {
            Some(schema) => format!(
                "{}:{}",
                schema.to_ascii_lowercase(),
                self.attribute.to_ascii_lowercase()
            ),
            None => self.attribute.to_ascii_lowercase(),
        }
    }

    /// Case-insensitive key of the whole path; equal keys set the same value.
    /// What the path sets, for comparing paths: names regardless of case, filter terms in any order.
    pub(crate) fn key(&self) -> String {
        let mut key = self.attribute_key();
        if !self.filter.is_empty() {
            let mut terms: Vec<String> = self
                .filter
                .iter()
                .map(|term| format!("{}={}", term.attribute.to_ascii_lowercase(), literal_key(&term.value)))
                .collect();
            terms.sort();
            key.push('[');
            key.push_str(&terms.join("&"));
            key.push(']');
        }
        if let Some(sub) = &self.sub_attribute {
            key.push('.');
            key.push_str(&sub.to_ascii_lowercase());
        }
        key
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Filter literals compare case-insensitively when they are strings (SCIM's default `caseExact: false`).
pub(super) fn literal_key(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.to_lowercase()).to_string(),
        other => other.to_string(),
    }
}

pub(super) fn literals_match(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => actual == expected,
    }
}

/// Quotes at most [`MAX_QUOTED_LEN`] characters of `text` for an error message.
pub(super) fn quoted(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_LEN {
        format!("'{text}'")
    } else {
        let head: String = text.chars().take(MAX_QUOTED_LEN).collect();
        format!("'{head}…'")
    }
}

pub(super) fn parse_target(text: &str) -> std::result::Result<TargetPath, String> {
    if text.is_empty() {
        return Err("the target path must not be empty".to_owned());
    }
    if text.chars().count() > MAX_TARGET_LEN {
        return Err(format!("{} is longer than {MAX_TARGET_LEN} characters", quoted(text)));
    }
    parse_target_parts(text).map_err(|reason| format!("{} is not a valid SCIM attribute path: {reason}", quoted(text)))
}

fn parse_target_parts(text: &str) -> std::result::Result<TargetPath, String> {
    // Surrounding spaces are not part of a stored path.
    if text.trim() != text {
        return Err("unexpected spaces around the path".to_owned());
    }
    let path = parse_patch_path(text).map_err(|e| e.to_string())?;
    let PatchPath {
        attr,
        filter,
        sub_after_filter,
    } = path;
    let schema = match attr.urn {
        Some(urn) => {
            check_urn(&urn)?;
            (!urn.eq_ignore_ascii_case(CORE_USER_SCHEMA)).then_some(urn)
        }
        None => None,
    };
    let (filter, sub_attribute) = match filter {
        Some(filter) => (filter_terms(filter)?, sub_after_filter),
        None => (Vec::new(), attr.sub),
    };
    Ok(TargetPath {
        text: text.to_owned(),
        schema,
        attribute: attr.attr,
        filter,
        sub_attribute,
    })
}

/// A schema URN as the mapping accepts it: at least three non-empty segments.
fn check_urn(urn: &str) -> std::result::Result<(), String> {
    let well_formed = urn.split(':').count() >= 3 && urn.split(':').all(|segment| !segment.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(format!("{} is not a valid schema URN", quoted(urn)))
    }
}

/// The value filter of a target path as equality terms: `subAttr eq literal`, joined by `and`,
/// each sub-attribute once, no `null`.
fn filter_terms(filter: Filter) -> std::result::Result<Vec<FilterTerm>, String> {
    const UNSUPPORTED: &str =
        "unsupported filter: only filters of the form 'subAttr eq value', joined by 'and', are supported";
    fn collect(filter: Filter, terms: &mut Vec<FilterTerm>) -> std::result::Result<(), String> {
        match filter {
            Filter::And(left, right) => {
                collect(*left, terms)?;
                collect(*right, terms)
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if !value.is_null() && path.urn.is_none() && path.sub.is_none() => {
                if terms.iter().any(|t| t.attribute.eq_ignore_ascii_case(&path.attr)) {
                    return Err(format!("the filter names {} twice", quoted(&path.attr)));
                }
                terms.push(FilterTerm {
                    attribute: path.attr,
                    value,
                });
                Ok(())
            }
            _ => Err(UNSUPPORTED.to_owned()),
        }
    }
    let mut terms = Vec::new();
    collect(filter, &mut terms)?;
    Ok(terms)
}
