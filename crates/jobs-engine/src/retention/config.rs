//! The `retention` section.

use serde::{Deserialize, Serialize};

use jobs_model::Duration;

/// The largest `retention.batch_size`: every id of a batch is one bound parameter.
const MAX_BATCH_SIZE: u64 = 10_000;

/// How long executions are kept (beyond the seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Final executions that ended longer ago than this are deleted with their attempts and logs; `0s` keeps them
    /// forever.
    pub max_age: Duration,
    /// At most this many newest final executions are kept per task; 0 means no limit.
    pub max_per_task: u64,
    /// How often the leader runs a pass.
    pub interval: Duration,
    /// Executions (and log lines) per delete statement.
    pub batch_size: u64,
    /// Executor instances offline (no heartbeat) longer than this are deleted, once their work is settled; `0s`
    /// keeps them forever.
    pub offline_executors_max_age: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 86_400),
            max_per_task: 0,
            interval: Duration::from_secs(60),
            batch_size: 500,
            offline_executors_max_age: Duration::from_secs(7 * 86_400),
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.interval.get().is_zero() {
            return Err("retention.interval must be greater than zero".to_owned());
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(format!("retention.batch_size must be between 1 and {MAX_BATCH_SIZE}"));
        }
        Ok(())
    }

    /// How long an offline instance is kept, in milliseconds; `None` when kept forever.
    pub(crate) fn forget_offline_after_ms(&self) -> Option<i64> {
        let max_age = self.offline_executors_max_age.get();
        (!max_age.is_zero()).then(|| i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX))
    }

    /// Whether either rule is on.
    pub(crate) fn deletes_anything(&self) -> bool {
        !self.max_age.get().is_zero() || self.max_per_task > 0
    }
}
