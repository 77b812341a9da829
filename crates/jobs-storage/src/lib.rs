//! Persistence of `jobs`: a concrete [`Store`] over sea-orm for SQLite, MySQL/MariaDB and PostgreSQL.
//!
//! Repositories take and return `jobs_model` types; the sea-orm entities never leave this crate.
//! Instants are stored as BIGINT milliseconds, ids as their canonical UUID text, JSON as text.

mod attempts;
mod chains;
mod config;
mod convert;
mod entity;
mod error;
mod executions;
mod executors;
mod fires;
mod guarded;
mod instances;
mod logs;
mod retention;
mod sessions;
mod stats;
mod store;
mod tasks;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use crate::attempts::Change;
pub use crate::config::{Backend, DEFAULT_SQLITE_URL, DatabaseConfig, redact_url};
pub use crate::error::{Error, Result};
pub use crate::executions::{ExecutionFilter, OwnClaims};
pub use crate::executors::ExecutorFilter;
pub use crate::fires::PlannedFire;
pub use crate::guarded::TaskDeletion;
pub use crate::instances::{LeaderRecord, SchedulerInstance};
pub use crate::sessions::SessionTag;
pub use crate::stats::FinishedCount;
pub use crate::store::{PoolUsage, Store};
pub use crate::tasks::TaskFilter;

#[cfg(test)]
mod tests;
