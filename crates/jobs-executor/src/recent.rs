//! [`RecentAttempts`]: the attempts this instance finished lately, so that a fire delivered again is not run again.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use jobs_model::ExecutionId;

/// How long a finished attempt is remembered.
pub(crate) const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);
/// How many finished attempts are remembered at most; past that, the oldest are forgotten first.
pub(crate) const REMEMBER_AT_MOST: usize = 100_000;

/// The highest attempt of each execution that finished here within a time window, bounded in size.
#[derive(Debug)]
pub(crate) struct RecentAttempts {
    ttl: Duration,
    capacity: usize,
    /// Per execution: the highest attempt finished, and the sequence number of its newest record.
    latest: HashMap<ExecutionId, (u32, u64)>,
    /// Every record, oldest first; a record whose sequence number is no longer its execution's is stale.
    records: VecDeque<Record>,
    next_seq: u64,
}

#[derive(Debug)]
struct Record {
    id: ExecutionId,
    seq: u64,
    at: Instant,
}

impl Default for RecentAttempts {
    fn default() -> Self {
        Self::new(REMEMBER_FOR, REMEMBER_AT_MOST)
    }
}

impl RecentAttempts {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, latest: HashMap::new(), records: VecDeque::new(), next_seq: 0 }
    }

    /// Notes that `attempt` of `id` finished at `now`; an execution keeps its highest attempt.
    pub(crate) fn remember(&mut self, id: ExecutionId, attempt: u32, now: Instant) {
        self.forget_expired(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        let highest = self.latest.get(&id).map_or(attempt, |&(known, _)| known.max(attempt));
        self.latest.insert(id, (highest, seq));
        self.records.push_back(Record { id, seq, at: now });
        while self.records.len() > self.capacity {
            self.pop_oldest();
        }
    }

    /// The highest attempt of `id` remembered at `now`.
    pub(crate) fn highest(&mut self, id: ExecutionId, now: Instant) -> Option<u32> {
        self.forget_expired(now);
        self.latest.get(&id).map(|&(attempt, _)| attempt)
    }

    fn forget_expired(&mut self, now: Instant) {
        while self.records.front().is_some_and(|oldest| now.saturating_duration_since(oldest.at) >= self.ttl) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some(oldest) = self.records.pop_front() else {
            return;
        };
        if self.latest.get(&oldest.id).is_some_and(|&(_, seq)| seq == oldest.seq) {
            self.latest.remove(&oldest.id);
        }
    }
}

#[cfg(test)]
mod tests;
