//! Outbound provisioning: the plans for each (app, user) and (app, group) and the state they are
//! made from, the SCIM client, the engine that executes queued jobs, and the background
//! dispatcher, scheduler and finisher.

pub mod engine;
pub mod flow;
pub mod listing;
pub mod plan;
pub mod resolve;
pub mod scim;
pub mod state;
pub mod worker;

pub use engine::{Engine, EngineConfig, JobResult};
pub use worker::{Wake, WorkerConfig};
