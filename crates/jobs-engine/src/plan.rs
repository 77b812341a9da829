//! The plan: each planned task's next slot, in a heap ordered by instant.
//!
//! Replacing a task's entry leaves its old heap item behind (a heap cannot remove from the middle); those stale
//! items are skipped when popped, and the heap is rebuilt from the entries whenever stale items outnumber live
//! ones, so a task changed a million times costs one entry, not a million.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use jobs_cron::Schedule;
use jobs_model::{Task, TaskId, Timestamp};

#[cfg(test)]
mod tests;

/// Stale heap items tolerated beyond the live ones before the heap is rebuilt.
const SLACK: usize = 1024;

/// One planned task: a few words, plus the task itself while it is due or fires often.
pub(crate) struct Entry {
    pub(crate) id: TaskId,
    /// The task's `updated_at` when planned: a task read when due with another one has changed since.
    pub(crate) updated_at: Timestamp,
    /// The task and its parsed schedule: read when due, kept only for frequent tasks.
    /// Boxed: a parsed schedule is hundreds of bytes inline, which 100,000 entries should not all reserve.
    pub(crate) loaded: Option<Box<(Arc<Task>, Schedule)>>,
    /// The slot the task is due at.
    pub(crate) next: Timestamp,
    /// What `tasks.next_fire_at` holds, the guard of the next write.
    pub(crate) stored: Option<Timestamp>,
    pub(crate) generation: u64,
}

#[derive(Default)]
pub(crate) struct Plan {
    entries: HashMap<TaskId, Entry>,
    heap: BinaryHeap<Reverse<(Timestamp, u64, TaskId)>>,
    generation: u64,
}

impl Plan {
    /// Plans `entry`, replacing the task's previous entry.
    pub(crate) fn push(&mut self, mut entry: Entry) {
        self.generation += 1;
        entry.generation = self.generation;
        self.heap.push(Reverse((entry.next, entry.generation, entry.id)));
        self.entries.insert(entry.id, entry);
        if self.heap.len() > 2 * self.entries.len() + SLACK {
            self.compact();
        }
    }

    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Entry> {
        self.entries.remove(&id)
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub(crate) fn clear(&mut self) {
        self.entries = HashMap::new();
        self.heap = BinaryHeap::new();
    }

    /// The earliest planned slot (stale items on top are dropped on the way).
    pub(crate) fn earliest(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, generation, id))) = self.heap.peek().copied() {
            if self.entries.get(&id).is_some_and(|entry| entry.generation == generation) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the entries due by `horizon`, earliest first.
    pub(crate) fn take_due(&mut self, horizon: Timestamp) -> Vec<Entry> {
        let mut due = Vec::new();
        while let Some(Reverse((at, generation, id))) = self.heap.peek().copied() {
            if at > horizon {
                break;
            }
            self.heap.pop();
            if self.entries.get(&id).is_some_and(|entry| entry.generation == generation)
                && let Some(entry) = self.entries.remove(&id)
            {
                due.push(entry);
            }
        }
        due
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Items in the heap, stale ones included.
    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Rebuilds the heap from the live entries, dropping stale items.
    fn compact(&mut self) {
        self.heap = self.entries.values().map(|entry| Reverse((entry.next, entry.generation, entry.id))).collect();
    }
}
