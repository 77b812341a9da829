//! The engine's clock: the planner, the queue, admission and the sweeps read the time through it, so that their
//! decisions can be tested at any instant.

use std::fmt;

use jobs_model::Timestamp;

/// Where the engine reads the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A duration in whole milliseconds, saturating (`as_millis` is a `u128`).
pub(crate) fn millis_i64(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
