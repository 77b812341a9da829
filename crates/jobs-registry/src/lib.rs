//! The executor registry: registration, heartbeats, maintenance, and the candidates for a dispatch.
//!
//! The registry answers "which instances may run task X now" from a snapshot of the executors table
//! that is at most [`Registry::SNAPSHOT_MAX_AGE`] old, so that dispatch does not query the database per fire.

mod config;
mod error;
mod health;
mod registry;
#[cfg(test)]
mod tests;

pub use crate::config::{ExecutorsConfig, HealthCheckConfig};
pub use crate::error::{Error, Result};
pub use crate::health::{HealthChange, HealthChecker, Probe};
pub use crate::registry::{ExecutorView, Registry};
