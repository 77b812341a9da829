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
    /// How long one follower attempt waits for the lock: at most one heartbeat, in whole seconds (at least 1 s).
    pub lock_timeout: Duration,
    /// How often the leader checks it still holds the lock.
    pub heartbeat_interval: Duration,
}

impl ElectionConfig {
    /// The heartbeat the election runs with: `heartbeat_interval`, at least 100 ms.
    pub fn heartbeat(&self) -> StdDuration {
        self.heartbeat_interval.get().max(MIN_HEARTBEAT)
    }

    /// How long a good check keeps the lease valid: one heartbeat plus 1 s.
    ///
    /// So a leader that cannot prove it still holds the lock (its database gone, its check hung) stops dispatching
    /// within one heartbeat of its last good check, and a healthy leader's lease never lapses between two checks.
    /// The server drops a silent lock session only later (see the session timeout), so a cut-off leader stops
    /// before another instance can take the lock.
    pub fn lease_duration(&self) -> StdDuration {
        self.heartbeat().saturating_add(StdDuration::from_secs(1))
    }
}
