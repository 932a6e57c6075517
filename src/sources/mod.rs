//! Identity sources the hub reads its directory from: LDAP and Active Directory servers. The
//! client (`ldap.rs`) talks to the server; what a sync changes is decided by
//! `domain::ldap::plan` and applied by `service::ldap`.

pub mod ldap;
