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
