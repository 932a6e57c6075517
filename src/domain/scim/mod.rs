//! SCIM 2.0 as the hub serves it to identity providers that push into the directory. The protocol
//! itself (schemas, the filter and PATCH-path grammars, in-memory filter evaluation, PATCH
//! application, projection, discovery documents) is the `provisio-scim` crate, re-exported here so
//! that `domain::scim::filter` and the like name it; this module adds what needs the directory's
//! types: the JSON form of directory users and groups, the Provisio User extension built from custom
//! attributes, the search index derived from the JSON form, and membership-only group PATCHes.
//! Pure rules over `serde_json::Value`; the HTTP surface is `api::scim`, the SQL side `store::scim`.

pub use provisio_scim::{ast, eval, filter, patch, path, projection, schema, supported};

pub mod discovery;
pub mod index;
pub mod members;
pub mod resource;
