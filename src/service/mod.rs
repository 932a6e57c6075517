//! Services: the operations of the hub, shared by the REST API, the CLI's offline commands and
//! (later) the console and workers. They validate with the domain rules and persist through the
//! store traits; they know nothing of HTTP.

pub mod admins;
pub mod apps;
pub mod auth;
pub mod cache;
pub mod config_doc;
pub mod dashboard;
pub mod directory;
pub mod latest;
pub mod ldap;
pub mod reports;
pub mod scim;

pub use apps::AppService;
pub use auth::AuthService;
pub use directory::DirectoryService;
pub use reports::ReportService;
pub use scim::ScimService;
