//! The leader's lease: until when this instance may dispatch, renewed by every good lock check.
//!
//! The lock check runs every heartbeat on its own connection; the dispatcher must not trust a role that was
//! published seconds ago by a check loop that may since have stalled (a hung query, a starved task).
//! So every good check renews the lease to "check instant + lease duration" and the dispatcher asks
//! [`Lease::is_valid`] right before each dispatch request: a leader whose checks stop, stops dispatching
//! when its lease runs out, even before the election notices anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// No lease: the instance does not lead.
const CLEARED: i64 = i64::MIN;
/// A lease that does not expire (the single node).
const FOREVER: i64 = i64::MAX;

/// A cheaply clonable lease shared by the election (which renews and clears it) and the dispatcher (which checks it).
///
/// Instants are monotonic ([`tokio::time::Instant`], so paused test time applies), kept as milliseconds since the
/// lease was created.
/// A new lease is not valid.
#[derive(Debug, Clone)]
pub struct Lease(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    origin: Instant,
    /// Milliseconds since `origin` until which the lease is valid (exclusive), or `CLEARED` / `FOREVER`.
    valid_until: AtomicI64,
}

impl Default for Lease {
    fn default() -> Self {
        Self(Arc::new(Inner { origin: Instant::now(), valid_until: AtomicI64::new(CLEARED) }))
    }
}

impl Lease {
    /// Whether this instance may dispatch now.
    pub fn is_valid(&self) -> bool {
        self.is_valid_at(Instant::now())
    }

    /// Whether this instance may dispatch at `now`.
    pub fn is_valid_at(&self, now: Instant) -> bool {
        let valid_until = self.0.valid_until.load(Ordering::Acquire);
        valid_until == FOREVER || self.millis(now) < valid_until
    }

    /// Makes the lease valid until `checked_at + duration`, where `checked_at` is when a good check was sent.
    pub fn renew(&self, checked_at: Instant, duration: Duration) {
        let duration = jobs_model::millis_i64(duration);
        // Stay below FOREVER, so that an absurd duration is still a deadline.
        let until = self.millis(checked_at).saturating_add(duration).min(FOREVER - 1);
        self.0.valid_until.store(until, Ordering::Release);
    }

    /// Makes the lease valid until [`Lease::clear`] (the single node, which nothing can depose).
    pub fn hold(&self) {
        self.0.valid_until.store(FOREVER, Ordering::Release);
    }

    /// Ends the lease at once (on step-down).
    pub fn clear(&self) {
        self.0.valid_until.store(CLEARED, Ordering::Release);
    }

    /// Milliseconds from the lease's origin to `at`, rounded down (so that instants a whole number of
    /// milliseconds apart stay exactly that far apart, before the origin too).
    fn millis(&self, at: Instant) -> i64 {
        let origin = self.0.origin;
        match at.checked_duration_since(origin) {
            Some(after) => jobs_model::millis_i64(after),
            None => {
                let before = origin.duration_since(at);
                let millis = before.as_millis() + u128::from(!before.subsec_nanos().is_multiple_of(1_000_000));
                i64::try_from(millis).map_or(i64::MIN + 1, |before| -before)
            }
        }
    }
}

#[cfg(test)]
mod tests;
