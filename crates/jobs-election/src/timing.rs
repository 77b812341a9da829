//! The timeouts of a lock session, all derived from the heartbeat and the lease.

use std::time::Duration;

use crate::ElectionConfig;

/// How long opening the lock connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long recording a new epoch (a short transaction on the pool) may take before the acquisition is given up.
pub(crate) const STORE_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest idle time after which the server drops a silent lock session.
const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than the lease the server keeps a silent lock session, so that a frozen leader's lease has
/// lapsed (by its own clock too) before another instance can take the lock.
const SESSION_MARGIN: Duration = Duration::from_secs(2);

/// The pace and the timeouts of one election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// How often the leader checks that it still holds the lock.
    pub(crate) heartbeat: Duration,
    /// How long a good check keeps the lease valid.
    pub(crate) lease: Duration,
    /// How long one follower attempt blocks on the lock: `lock_timeout`, at most one heartbeat, in whole seconds (at
    /// least 1 s, never negative).
    /// A blocked follower gets the lock the moment the server frees it, so this bounds no failover.
    pub(crate) acquire_wait: Duration,
    /// How long any other lock query may take: one heartbeat, within 1 s ..= 5 s.
    pub(crate) query_timeout: Duration,
    /// The idle time after which the server drops a vanished or frozen client's session (and its lock), in whole
    /// seconds: at least 5 s, 2 heartbeats and the lease plus 2 s, so that a cut-off leader's lease lapses before
    /// another can lead, and a frozen leader is replaced within 10 s with a 1 s heartbeat.
    pub(crate) session_timeout: Duration,
    /// The pause before campaigning again after an error or a lost lock.
    pub(crate) retry_pause: Duration,
}

impl Timing {
    pub(crate) fn new(config: &ElectionConfig) -> Self {
        let heartbeat = config.heartbeat();
        let lease = config.lease_duration();
        let session_timeout =
            MIN_SESSION_TIMEOUT.max(heartbeat.saturating_mul(2)).max(lease.saturating_add(SESSION_MARGIN));
        let acquire_wait = config.lock_timeout.get().min(heartbeat);
        Self {
            heartbeat,
            lease,
            acquire_wait: Duration::from_secs(whole_seconds(acquire_wait).max(1)),
            query_timeout: heartbeat.clamp(Duration::from_secs(1), Duration::from_secs(5)),
            session_timeout: Duration::from_secs(whole_seconds(session_timeout)),
            retry_pause: heartbeat.min(Duration::from_secs(1)),
        }
    }

    /// How long one acquisition attempt may take: its wait plus a query's time.
    pub(crate) fn acquire_timeout(&self) -> Duration {
        self.acquire_wait.saturating_add(self.query_timeout)
    }

    pub(crate) fn acquire_wait_secs(&self) -> u64 {
        self.acquire_wait.as_secs()
    }

    pub(crate) fn session_timeout_secs(&self) -> u64 {
        self.session_timeout.as_secs()
    }
}

/// `duration` in seconds, rounded up.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
