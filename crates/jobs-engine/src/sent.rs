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
    /// Woken whenever an attempt ends, for the fires waiting for a free slot on an instance.
    ended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Inner {
    attempts: HashMap<ExecutionId, SentAttempt>,
    /// Claimed fires that ended before they were sent, with when.
    withdrawn: HashMap<ExecutionId, Timestamp>,
    /// Claimed fires this leader handled, with when it was done with them.
    handled: HashMap<ExecutionId, Timestamp>,
    /// How many of `attempts` each instance holds.
    on: HashMap<ExecutorId, u32>,
    inserted: usize,
}

impl Inner {
    fn release(&mut self, executor: ExecutorId) {
        if let Some(count) = self.on.get_mut(&executor) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.on.remove(&executor);
            }
        }
    }
}

impl Sent {
    pub(crate) fn insert(&self, id: ExecutionId, attempt: SentAttempt, now: Timestamp) {
        let mut inner = self.lock();
        inner.inserted += 1;
        if inner.inserted.is_multiple_of(PRUNE_EVERY) {
            inner.attempts.retain(|_, sent| now.millis_since(sent.deadline) < KEEP_PAST_DEADLINE_MS);
            inner.withdrawn.retain(|_, at| now.millis_since(*at) < KEEP_PAST_DEADLINE_MS);
            inner.handled.retain(|_, at| now.millis_since(*at) < HANDLED_MS);
            let mut on: HashMap<ExecutorId, u32> = HashMap::new();
            for sent in inner.attempts.values() {
                *on.entry(sent.executor_id).or_default() += 1;
            }
            inner.on = on;
        }
        if let Some(earlier) = inner.attempts.insert(id, attempt) {
            inner.release(earlier.executor_id);
        }
        *inner.on.entry(attempt.executor_id).or_default() += 1;
    }

    /// How many attempts this leader sent to `executor` and has not seen end.
    pub(crate) fn on(&self, executor: ExecutorId) -> u32 {
        self.lock().on.get(&executor).copied().unwrap_or(0)
    }

    /// Waits until an attempt ends, or `at_most`.
    pub(crate) async fn some_end(&self, at_most: std::time::Duration) {
        let _ = tokio::time::timeout(at_most, self.ended.notified()).await;
    }

    /// Forgets an attempt that ended, returning it if this leader sent it (a claimed fire the dispatcher retired
    /// stays known as handled).
    pub(crate) fn take(&self, id: ExecutionId) -> Option<SentAttempt> {
        let taken = {
            let mut inner = self.lock();
            let taken = inner.attempts.remove(&id);
            if let Some(sent) = taken {
                inner.release(sent.executor_id);
            }
            taken
        };
        if taken.is_some() {
            self.ended.notify_waiters();
        }
        taken
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
    fn attempts_in_flight_are_counted_per_instance() {
        let sent = Sent::default();
        let (a, b) = (ExecutionId::new(), ExecutionId::new());
        let mut on_x = attempt(10_000);
        sent.insert(a, on_x, Timestamp::from_millis(0));
        on_x.task_id = TaskId::new();
        let executor = on_x.executor_id;
        sent.insert(b, SentAttempt { executor_id: executor, ..on_x }, Timestamp::from_millis(0));
        assert_eq!(sent.on(executor), 2);
        sent.take(a);
        sent.take(a);
        assert_eq!(sent.on(executor), 1, "an end counts once");
        sent.take(b);
        assert_eq!(sent.on(executor), 0);
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
