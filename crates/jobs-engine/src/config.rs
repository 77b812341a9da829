//! The seed's `scheduler` section.

use serde::{Deserialize, Serialize};

use jobs_model::Duration;

/// How this instance takes part in the cluster and how hard it dispatches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// This instance's id; empty means `{hostname}-{port}`.
    pub instance_id: String,
    /// The election lock's name; empty means `jobs_leader_{database}` (lock names are global to a MySQL server).
    pub lock_key: String,
    /// How long one attempt to take the leader lock may wait.
    pub lock_timeout: Duration,
    /// How often the leader checks its lock and every instance refreshes its row.
    pub heartbeat_interval: Duration,
    /// At most this many dispatch requests to executors are in flight at once.
    pub max_workers: usize,
    /// Fire slots less late than this are all fired; older ones follow the task's misfire policy.
    pub misfire_grace: Duration,
    /// How long a dispatch request to an executor may take before the instance counts as unreachable.
    pub dispatch_timeout: Duration,
    /// At most this long before a fire's instant it is sent to an instance that registered `early_delivery_ms`
    /// (the instance starts it at the instant by its own clock); `0s` sends every fire at its instant.
    pub early_delivery: Duration,
    /// A cron fire that waits longer than this past its instant for a free slot on an instance (every instance
    /// that can run it is at the `max_concurrency` it registered) is not sent: it is recorded `missed`, with the
    /// reason `overloaded`. Retries, manual triggers and chained runs wait for a slot however long it takes.
    pub max_lateness: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            instance_id: String::new(),
            lock_key: String::new(),
            lock_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            max_workers: 10,
            misfire_grace: Duration::from_secs(60),
            dispatch_timeout: Duration::from_secs(10),
            early_delivery: Duration::from_secs(1),
            max_lateness: Duration::from_secs(5),
        }
    }
}

impl SchedulerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_workers == 0 {
            return Err("scheduler.max_workers must be at least 1".to_owned());
        }
        if self.heartbeat_interval.get().is_zero() {
            return Err("scheduler.heartbeat_interval must be greater than zero".to_owned());
        }
        if self.dispatch_timeout.get().is_zero() {
            return Err("scheduler.dispatch_timeout must be greater than zero".to_owned());
        }
        if self.early_delivery.get() > std::time::Duration::from_secs(60) {
            return Err("scheduler.early_delivery must be at most 60s".to_owned());
        }
        if !self.instance_id.is_empty() {
            jobs_model::validate::name("scheduler.instance_id", &self.instance_id).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
