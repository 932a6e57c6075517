//! SCIM 2.0 as the hub serves it to identity providers that push into the directory: schemas and
//! discovery, the filter and PATCH-path grammars, in-memory filter evaluation, PATCH application,
//! the JSON form of directory users and groups, and the search index derived from it.
//! Pure rules over `serde_json::Value`; the HTTP surface is `api::scim`, the SQL side `store::scim`.

pub mod ast;
pub mod discovery;
pub mod eval;
pub mod filter;
pub mod index;
pub mod members;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod supported;
