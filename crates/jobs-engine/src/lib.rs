//! The scheduler core: task and execution services, the planner that writes cron fires, and the
//! dispatcher that hands executions to executor instances.
//!
//! Only the leader plans and dispatches; every instance serves the services behind the API.

mod admission;
mod alerts;
mod chains;
mod client;
mod clock;
mod config;
mod dispatcher;
mod engine;
mod error;
mod executions;
mod heartbeats;
mod leader;
mod mailbox;
mod metrics;
mod plan;
mod planner;
mod presence;
mod protocol;
mod queue;
mod retention;
mod sent;
mod settle;
mod sweeps;
mod tasks;
#[cfg(test)]
mod testing;
mod writer;

pub use crate::alerts::AlertsConfig;
pub use crate::client::{DispatchError, ExecutorClient, HttpExecutorClient};
pub use crate::clock::{Clock, SystemClock};
pub use crate::config::SchedulerConfig;
pub use crate::engine::{ClusterStatus, Engine, EngineParts, InstanceRole, InstanceStatus, Readiness};
pub use crate::error::{Error, Result};
pub use crate::metrics::METRICS_CONTENT_TYPE;
pub use crate::protocol::CallbackOutcome;
pub use crate::retention::RetentionConfig;
pub use crate::tasks::TaskPatch;
