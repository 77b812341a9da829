//! Domain types of `jobs`: tasks, executors, executions, the executor protocol and validation.
//!
//! This crate does no I/O. Every other crate speaks in these types.

mod duration;
mod error;
mod execution;
mod executor;
mod id;
pub mod protocol;
mod secret;
pub mod signature;
mod task;
mod timestamp;
#[cfg(feature = "tls")]
pub mod tls;
pub mod validate;

pub use crate::duration::{Duration, format_duration, micros_i64, millis_i64, parse_duration};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::execution::{Attempt, AttemptStatus, Execution, ExecutionStatus, LogLine, TriggerType};
pub use crate::executor::{Executor, ExecutorState, ExecutorStatus, Health};
pub use crate::id::{ExecutionId, ExecutorId, TaskId};
pub use crate::secret::Secret;
pub use crate::task::{BackoffKind, ExecutionMode, MisfirePolicy, RetryBackoff, Task, TaskSpec};
pub use crate::timestamp::Timestamp;

/// JSON object used for task and execution parameters.
pub type Parameters = serde_json::Map<String, serde_json::Value>;

/// Merges `overrides` over `base`, key by key (a manual trigger's parameters over the task's).
pub fn merge_parameters(base: &Parameters, overrides: &Parameters) -> Parameters {
    let mut merged = base.clone();
    for (key, value) in overrides {
        merged.insert(key.clone(), value.clone());
    }
    merged
}
