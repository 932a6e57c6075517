//! Provisio: a self-hosted provisioning hub. See `ARCHITECTURE.md` for the map of the code.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod outbound;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
