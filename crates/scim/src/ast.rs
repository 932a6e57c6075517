//! The parsed forms of SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): plain data,
//! produced by the parsers in `filter.rs` and `path.rs` and read by the evaluator, the PATCH
//! engine and the hub's SQL translation (`provisio::store::scim_filter`).

use serde_json::Value;
use std::fmt;

/// An attribute reference: `userName`, `name.givenName`, `emails.value`, or URN-qualified
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
/// Names keep the case they were written in; schema look-ups ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, without the trailing colon, when one was written.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name, when one was written.
    pub sub: Option<String>,
}

impl AttrPath {
    /// A path to a top-level attribute with no URN and no sub-attribute.
    pub fn simple(attr: impl Into<String>) -> Self {
        AttrPath {
            urn: None,
            attr: attr.into(),
            sub: None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal
    Ge,
    /// less than
    Lt,
    /// less than or equal
    Le,
}

impl CompareOp {
    /// The operator as written in a filter.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A filter expression.
///
/// Inside [`Filter::ValuePath`], the inner filter's paths are relative to one element of the
/// multi-valued attribute: their `attr` names the element's sub-attribute and `urn`/`sub` are unset.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`; the value is a JSON string, number, boolean or null.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The literal compared with.
        value: Value,
    },
    /// `path pr`
    Present(AttrPath),
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@example.com"]`: some element of the multi-valued
    /// attribute `path` (no `sub`) satisfies the inner filter.
    ValuePath {
        /// The multi-valued attribute.
        path: AttrPath,
        /// The condition on one element.
        filter: Box<Filter>,
    },
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2): `attrPath` or
/// `valuePath [ "." subAttr ]`, e.g. `members[value eq "2819c223"]`, `emails[type eq "work"].value`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its URN and, when no filter is given, its sub-attribute).
    pub attr: AttrPath,
    /// The element filter of a value path (paths inside are relative to one element).
    pub filter: Option<Filter>,
    /// The sub-attribute after a value path's closing bracket (`].value`).
    pub sub_after_filter: Option<String>,
}
