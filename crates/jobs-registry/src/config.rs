//! The seed's `health_check` section.

use serde::{Deserialize, Serialize};

use jobs_model::Duration;

/// Active health checks of executor instances, run by the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub recovery_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            failure_threshold: 3,
            recovery_threshold: 2,
        }
    }
}

impl HealthCheckConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.interval.get().is_zero() {
            return Err("health_check.interval must be greater than zero".to_owned());
        }
        if self.timeout.get().is_zero() {
            return Err("health_check.timeout must be greater than zero".to_owned());
        }
        if self.failure_threshold == 0 || self.recovery_threshold == 0 {
            return Err("health_check.failure_threshold and recovery_threshold must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// How executors keep in touch (beyond the seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorsConfig {
    /// How often executors are told to heartbeat.
    pub heartbeat_interval: Duration,
    /// An instance with no heartbeat for this long is `offline` and gets no work; 0 means three heartbeat intervals.
    pub offline_after: Duration,
}

impl Default for ExecutorsConfig {
    fn default() -> Self {
        Self { heartbeat_interval: Duration::from_secs(10), offline_after: Duration::from_secs(30) }
    }
}

impl ExecutorsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval.get().as_secs() == 0 {
            return Err("executors.heartbeat_interval must be at least 1s".to_owned());
        }
        if !self.offline_after.get().is_zero() && self.offline_after.get() < self.heartbeat_interval.get() {
            return Err("executors.offline_after must be at least executors.heartbeat_interval".to_owned());
        }
        Ok(())
    }

    /// How long without a heartbeat makes an instance offline, in milliseconds.
    pub fn offline_after_millis(&self) -> i64 {
        let offline_after = if self.offline_after.get().is_zero() {
            self.heartbeat_interval.get() * 3
        } else {
            self.offline_after.get()
        };
        jobs_model::millis_i64(offline_after)
    }
}
