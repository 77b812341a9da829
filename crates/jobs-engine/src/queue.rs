//! The pending queue: the leader's loop that starts pending executions that are due and were not sent when
//! written: triggers made through other instances, retries whose backoff passed, a sequential task's next fire
//! once the one before it ended, and anything a previous leader left behind.
//!
//! The order is fair: each task is a queue of its own and only its head can start, so a thousand fires waiting
//! behind a slow sequential task are never read ahead of a retry or a trigger of another task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jobs_model::{Execution, ExecutionMode, Task, TaskId, Timestamp};
use jobs_storage::{OwnClaims, Store};

use crate::clock::Clock;
use crate::dispatcher::Dispatcher;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::sent::HANDLED_MS;
use crate::settle::Settler;

#[cfg(test)]
mod tests;

/// How often the queue looks even when nobody asked (follower triggers arrive only through the database).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How far ahead a pass takes what is due, so that what falls due before the next pass goes out on its instant.
const LOOK_AHEAD_MS: i64 = 1_000;
/// Candidates read per pass, of each kind (task heads, and due executions of tasks without an order).
const BATCH: u64 = 1_000;
/// A claim of this leadership whose send time is less than this long ago is left to the dispatcher that holds it.
const OWN_CLAIMS_MS: i64 = 5_000;
/// A claim of this leadership whose send time is more than this long ago is settled by its instance's heartbeats,
/// not sent from here: the dispatcher remembers what it handled for [`HANDLED_MS`], and only within that can the
/// queue tell a claim it never saw (written, but its hand-off lost) from one it sent whose mark was lost.
pub(crate) const OWN_CLAIMS_SETTLED_MS: i64 = HANDLED_MS - 10_000;

/// Why the queue should look now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Wake {
    /// A pending execution was written or an execution was cancelled.
    Pending,
    /// A sequential task's fire waits for the execution before it.
    Waiting(TaskId),
    /// An execution of this task ended.
    Finished(TaskId),
}

pub(crate) struct Queue {
    pub(crate) store: Store,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) settler: Arc<Settler>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mailbox: Arc<Mailbox<Wake>>,
    /// This leadership's epoch and when it began: a fire claimed under another epoch may have been sent already.
    pub(crate) epoch: i64,
    pub(crate) took_over_at: Timestamp,
}

impl Queue {
    #[tracing::instrument(name = "queue", skip_all)]
    pub(crate) async fn run(self) {
        // Tasks with a fire waiting for another to end: only their ends are worth a look.
        let mut waiting: HashSet<TaskId> = HashSet::new();
        self.pass(&mut waiting).await;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                wakes = self.mailbox.recv() => {
                    let mut look = false;
                    for wake in wakes {
                        match wake {
                            Wake::Pending => look = true,
                            Wake::Waiting(task) => {
                                waiting.insert(task);
                            }
                            Wake::Finished(task) => look |= waiting.contains(&task),
                        }
                    }
                    if look {
                        self.pass(&mut waiting).await;
                    }
                }
                _ = poll.tick() => self.pass(&mut waiting).await,
            }
        }
    }

    /// Reads the candidates and hands each to the dispatcher (which sends it at its instant and never twice).
    async fn pass(&self, waiting: &mut HashSet<TaskId>) {
        let due = self.clock.now().add_millis(LOOK_AHEAD_MS);
        // This leadership's recent claims are its dispatcher's; older ones (their send failed to happen) are looked at.
        let now = self.clock.now();
        let own = OwnClaims {
            epoch: self.epoch,
            recent_since: now.add_millis(-OWN_CLAIMS_MS),
            settled_before: now.add_millis(-OWN_CLAIMS_SETTLED_MS),
        };
        let candidates = match self.store.pending_candidates(due, BATCH, Some(own)).await {
            Ok(candidates) => candidates,
            Err(error) => {
                tracing::warn!(%error, "cannot read pending executions");
                self.metrics.database_error();
                return;
            }
        };
        if candidates.is_empty() {
            waiting.clear();
            return;
        }
        let mut ids: Vec<TaskId> = candidates.iter().map(|execution| execution.task_id).collect();
        ids.sort_unstable();
        ids.dedup();
        // A read error must not pass for a deleted task: everything stays pending for the next pass.
        let tasks: HashMap<TaskId, Arc<Task>> = match self.store.get_tasks(&ids).await {
            Ok(tasks) => tasks.into_iter().map(|task| (task.id, Arc::new(task))).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the tasks of pending executions; they wait for the next pass");
                self.metrics.database_error();
                return;
            }
        };
        let modes: HashMap<TaskId, ExecutionMode> =
            tasks.values().map(|task| (task.id, task.spec.execution_mode)).collect();
        waiting.retain(|task| modes.get(task) == Some(&ExecutionMode::Sequential));
        for execution in select(candidates, &modes) {
            if execution.is_preclaimed() && !self.may_send_claimed(&execution).await {
                continue;
            }
            match tasks.get(&execution.task_id) {
                Some(task) => {
                    if task.spec.execution_mode == ExecutionMode::Sequential {
                        waiting.insert(task.id);
                    }
                    self.dispatcher.dispatch_at(execution, task.clone());
                }
                None => {
                    let reason = "task was deleted before the execution was dispatched";
                    if let Err(error) = self.settler.orphaned(&execution, reason).await {
                        tracing::warn!(execution_id = %execution.id, %error, "cannot end an orphaned execution");
                    }
                }
            }
        }
    }
}

/// When a pending execution may start: its slot, or its retry time if later.
impl Queue {
    /// Whether a fire written with its first attempt claimed may be sent from here: not while this instance sends
    /// it or waits for its end; yes if this leadership claimed it (then it was never sent), or if sending it again
    /// cannot run it twice. Otherwise its delivery is unknown, and its instance's next heartbeat settles it.
    async fn may_send_claimed(&self, execution: &Execution) -> bool {
        if self.dispatcher.owns(execution) {
            return false;
        }
        execution.epoch == Some(self.epoch) || self.dispatcher.may_resend(execution, self.took_over_at).await
    }
}

pub(crate) fn due_at(execution: &Execution) -> Timestamp {
    execution.retry_at.map_or(execution.scheduled_at, |retry_at| retry_at.max(execution.scheduled_at))
}

/// The candidates to hand out, in the order they fell due: every one of a task without an order, only the oldest
/// of a sequential task (whose others wait behind it); executions of unknown tasks are kept (they are ended).
pub(crate) fn select(mut candidates: Vec<Execution>, modes: &HashMap<TaskId, ExecutionMode>) -> Vec<Execution> {
    candidates.sort_by_key(|execution| execution.id);
    let mut heads = HashSet::new();
    candidates.retain(|execution| {
        modes.get(&execution.task_id) != Some(&ExecutionMode::Sequential) || heads.insert(execution.task_id)
    });
    candidates.sort_by_key(|execution| (due_at(execution), execution.id));
    candidates
}
