//! Election settings, taken from the `scheduler` section of the config.

use std::time::Duration as StdDuration;

use jobs_model::Duration;

/// The shortest heartbeat an election runs with, so that a zero setting cannot spin.
pub(crate) const MIN_HEARTBEAT: StdDuration = StdDuration::from_millis(100);

/// How the election competes and how often the leader checks that it still leads.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub instance_id: String,
    /// The lock competed for; also the key of the leader record (and its epoch) in the database.
    /// On MySQL lock names are global to the server, so the binary's default includes the database name.
    pub lock_key: String,
    /// How long a leader keeps dispatching after its last good check: see [`ElectionConfig::lease_duration`].
    pub lock_timeout: Duration,
    /// How often the leader checks it still holds the lock, and how long one follower attempt waits for it.
    pub heartbeat_interval: Duration,
}

impl ElectionConfig {
    /// The heartbeat the election runs with: `heartbeat_interval`, at least 100 ms.
    pub fn heartbeat(&self) -> StdDuration {
        self.heartbeat_interval.get().max(MIN_HEARTBEAT)
    }

    /// How long a good check keeps the lease valid: `lock_timeout`, capped to at most 3 heartbeats and raised
    /// to at least one heartbeat plus 1 s (the lower bound wins when the two cross, below a 0.5 s heartbeat).
    ///
    /// At most 3 heartbeats, so that a leader cut off from its database stops dispatching soon, and always before
    /// the server drops its session (`wait_timeout` and keepalives are at least this long) and lets another
    /// instance take the lock.
    /// At least a heartbeat plus 1 s, so that a healthy leader's lease never lapses between two checks.
    pub fn lease_duration(&self) -> StdDuration {
        let heartbeat = self.heartbeat();
        self.lock_timeout
            .get()
            .min(heartbeat.saturating_mul(3))
            .max(heartbeat.saturating_add(StdDuration::from_secs(1)))
    }
}
