//! Provisio: a self-hosted provisioning hub. See `ARCHITECTURE.md` for the map of the code.

pub mod api;
pub mod backup;
pub mod cli;
pub mod config;
pub mod console;
pub mod data_lock;
pub mod domain;
pub mod health;
pub mod ldap_runner;
pub mod listener;
pub mod outbound;
pub mod secrets;
pub mod server;
pub mod service;
pub mod sources;
pub mod store;
pub mod telemetry;

/// Chooses rustls's ring provider for the process (reqwest and sqlx use rustls without a default).
/// Safe to call many times; every HTTP client constructor in the crate calls it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
