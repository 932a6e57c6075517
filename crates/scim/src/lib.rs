//! SCIM 2.0 (RFC 7643, RFC 7644) as Provisio speaks it, both as the server identity providers push
//! into and as the client that provisions outbound apps: the filter and PATCH-path grammars and
//! their syntax tree, in-memory filter evaluation, PATCH application, attribute schemas (the RFC
//! 7643 core and enterprise schemas ship as data in `schemas/*.json`), `attributes` /
//! `excludedAttributes` projection, and the discovery documents.
//!
//! Pure rules over `serde_json::Value`: nothing here knows about HTTP, SQL or the hub's directory.
//! Every failure is an [`Error`] carrying its RFC 7644 `scimType`; the hub maps it to a status.

#![warn(missing_docs)]

pub mod ast;
pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod patch;
pub mod path;
pub mod projection;
pub mod schema;
pub mod supported;

pub use error::{Error, Result, ScimErrorType};
