//! The scheduler core: task and execution services, the planner that writes cron fires, and the
//! dispatcher that hands executions to executor instances.
//!
//! Only the leader plans and dispatches; every instance serves the services behind the API.

mod alerts;
mod client;
mod config;
mod dispatcher;
mod engine;
mod error;
mod executions;
mod lifecycle;
mod metrics;
mod outcomes;
mod planner;
mod presence;
mod retention;
mod tasks;
mod writer;

pub use crate::alerts::AlertsConfig;
pub use crate::client::{DispatchError, ExecutorClient, HttpExecutorClient};
pub use crate::config::SchedulerConfig;
pub use crate::engine::{ClusterStatus, Engine, EngineParts, InstanceStatus};
pub use crate::error::{Error, Result};
pub use crate::executions::CallbackOutcome;
pub use crate::metrics::METRICS_CONTENT_TYPE;
pub use crate::retention::RetentionConfig;
pub use crate::tasks::TaskPatch;
