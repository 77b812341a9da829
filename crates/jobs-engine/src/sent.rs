//! What this leader has sent and not yet seen end: the attempt's task and instance, so that ending it needs no read.
//!
//! The callback of a successful attempt is one conditional update; what follows it (freeing the instance's slot for
//! `least_loaded`, waking the queue for the task) comes from here. An attempt that ends through another instance is
//! forgotten once its deadline has passed.
//!
//! It also holds the claimed fires that ended here before their send time (cancelled, their task deleted or
//! replaced): the dispatcher, which reads nothing from the database at a fire's instant, drops them.
//!
//! And it remembers, for a while after, every claimed fire the dispatcher handled (sent, refused, or ended), so
//! that a queue pass that read the fire's row as still claimed before its end was written never sends it again:
//! a claimed fire has one sender.

use std::collections::HashMap;
use std::sync::Mutex;

use jobs_model::{ExecutionId, ExecutorId, TaskId, Timestamp};

/// Entries are checked for expiry once per this many insertions.
const PRUNE_EVERY: usize = 1024;
/// How long past its deadline an entry is kept (the timeout sweep ends the attempt meanwhile), and how long a
/// withdrawn fire is remembered (its send time is at most seconds away).
const KEEP_PAST_DEADLINE_MS: i64 = 60_000;
/// How long a claimed fire the dispatcher handled is remembered as handled. The queue leaves this leadership's
/// claims whose send time is older than this to the instances' heartbeats ([`HANDLED_MS`] is its bound).
pub(crate) const HANDLED_MS: i64 = 60_000;

/// One attempt this leader sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentAttempt {
    pub(crate) task_id: TaskId,
    pub(crate) executor_id: ExecutorId,
    pub(crate) deadline: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Sent {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    attempts: HashMap<ExecutionId, SentAttempt>,
    /// Claimed fires that ended before they were sent, with when.
    withdrawn: HashMap<ExecutionId, Timestamp>,
    /// Claimed fires this leader handled, with when it was done with them.
    handled: HashMap<ExecutionId, Timestamp>,
    inserted: usize,
}

impl Sent {
    pub(crate) fn insert(&self, id: ExecutionId, attempt: SentAttempt, now: Timestamp) {
        let mut inner = self.lock();
        inner.inserted += 1;
        if inner.inserted.is_multiple_of(PRUNE_EVERY) {
            inner.attempts.retain(|_, sent| now.millis_since(sent.deadline) < KEEP_PAST_DEADLINE_MS);
            inner.withdrawn.retain(|_, at| now.millis_since(*at) < KEEP_PAST_DEADLINE_MS);
            inner.handled.retain(|_, at| now.millis_since(*at) < HANDLED_MS);
        }
        inner.attempts.insert(id, attempt);
    }

    /// Forgets an attempt that ended, returning it if this leader sent it (a claimed fire the dispatcher retired
    /// stays known as handled).
    pub(crate) fn take(&self, id: ExecutionId) -> Option<SentAttempt> {
        self.lock().attempts.remove(&id)
    }

    /// The dispatcher is done with claimed fire `id` (whatever became of it): it is never sent from here again.
    pub(crate) fn retire(&self, id: ExecutionId, now: Timestamp) {
        let mut inner = self.lock();
        inner.inserted += 1;
        if inner.inserted.is_multiple_of(PRUNE_EVERY) {
            inner.handled.retain(|_, at| now.millis_since(*at) < HANDLED_MS);
        }
        inner.handled.insert(id, now);
    }

    /// Whether the dispatcher handled claimed fire `id` within the last [`HANDLED_MS`].
    pub(crate) fn handled(&self, id: ExecutionId) -> bool {
        let inner = self.lock();
        inner.attempts.contains_key(&id) || inner.handled.contains_key(&id)
    }

    /// A claimed fire ended before it was known to be sent: unless it was sent already, it must not be.
    pub(crate) fn withdraw(&self, id: ExecutionId, now: Timestamp) {
        let mut inner = self.lock();
        if !inner.attempts.contains_key(&id) {
            inner.withdrawn.insert(id, now);
        }
    }

    /// Whether a fire about to be sent was withdrawn (and forgets it).
    pub(crate) fn take_withdrawn(&self, id: ExecutionId) -> bool {
        self.lock().withdrawn.remove(&id).is_some()
    }

    pub(crate) fn contains(&self, id: ExecutionId) -> bool {
        self.lock().attempts.contains_key(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(deadline: i64) -> SentAttempt {
        SentAttempt {
            task_id: TaskId::new(),
            executor_id: ExecutorId::new(),
            deadline: Timestamp::from_millis(deadline),
        }
    }

    #[test]
    fn an_ended_attempt_is_taken_once() {
        let sent = Sent::default();
        let id = ExecutionId::new();
        let first = attempt(10_000);
        sent.insert(id, first, Timestamp::from_millis(0));
        assert!(sent.contains(id));
        assert_eq!(sent.take(id), Some(first));
        assert_eq!(sent.take(id), None);
        assert!(!sent.contains(id));
    }

    #[test]
    fn a_withdrawn_fire_is_dropped_once_unless_it_was_sent() {
        let sent = Sent::default();
        let (unsent, gone) = (ExecutionId::new(), ExecutionId::new());
        sent.insert(gone, attempt(10_000), Timestamp::from_millis(0));
        sent.withdraw(unsent, Timestamp::from_millis(0));
        sent.withdraw(gone, Timestamp::from_millis(0));
        assert!(sent.take_withdrawn(unsent));
        assert!(!sent.take_withdrawn(unsent), "forgotten once dropped");
        assert!(!sent.take_withdrawn(gone), "a fire already sent is not withdrawn");
    }

    #[test]
    fn a_retired_claim_stays_handled_after_its_end_until_it_is_pruned() {
        let sent = Sent::default();
        let id = ExecutionId::new();
        sent.insert(id, attempt(10_000), Timestamp::from_millis(0));
        sent.retire(id, Timestamp::from_millis(5));
        assert!(sent.take(id).is_some());
        assert!(sent.handled(id), "ended, but a stale read of its claimed row must not send it again");
        let later = Timestamp::from_millis(5 + HANDLED_MS);
        for _ in 0..PRUNE_EVERY {
            sent.retire(ExecutionId::new(), later);
        }
        assert!(!sent.handled(id), "forgotten once older than HANDLED_MS");
    }

    #[test]
    fn attempts_long_past_their_deadline_are_pruned() {
        let sent = Sent::default();
        let old = ExecutionId::new();
        sent.insert(old, attempt(0), Timestamp::from_millis(0));
        let now = Timestamp::from_millis(KEEP_PAST_DEADLINE_MS + 1);
        let live: Vec<ExecutionId> = (1..PRUNE_EVERY).map(|_| ExecutionId::new()).collect();
        for id in &live {
            sent.insert(*id, attempt(now.as_millis() + 10_000), now);
        }
        assert!(!sent.contains(old), "an attempt a minute past its deadline is forgotten");
        assert!(live.iter().all(|id| sent.contains(*id)));
    }
}
