//! Outbound provisioning: the plan for each (app, user), the SCIM client, the engine that executes
//! queued jobs, and the background dispatcher and workers.

pub mod engine;
pub mod flow;
pub mod plan;
pub mod resolve;
pub mod scim;
pub mod worker;

pub use engine::{Engine, EngineConfig, JobResult};
pub use worker::{Wake, WorkerConfig};
