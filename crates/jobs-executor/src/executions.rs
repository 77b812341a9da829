//! The table of executions this instance took: admission, concurrency limit, holding, cancel and drain.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use jobs_model::ExecutionId;

use crate::handler::Outcome;
use crate::recent::RecentAttempts;

/// Reports in delivery that have given their slot back, at most, per slot of `max_concurrency`.
const OUTBOX_PER_SLOT: usize = 4;

/// Why an execution was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `POST /cancel`: the scheduler already settled the execution, no callback.
    Cancelled,
    /// A later attempt of the same execution arrived while this one was held and took its place: no callback.
    Superseded,
    /// The instance shuts down before the held execution's instant: reported failed, the handler never ran.
    ShutdownWhileHeld,
    /// The instance shuts down and the handler outlived `shutdown_timeout`: reported failed.
    Shutdown,
}

/// What the task of an execution produces: the handler's outcome, or why the handler never started.
pub(crate) type TaskOutput = Result<Outcome, StopReason>;

/// The answer to a dispatch.
#[derive(Debug)]
pub(crate) enum Admission {
    /// The execution is taken; here is its task (which may first hold until the instant).
    Accepted(JoinHandle<TaskOutput>),
    /// This attempt or a later one of the execution was taken here (held, running or finished lately): ignored.
    Duplicate,
    /// An earlier attempt of the same execution still runs here.
    AttemptRunning { attempt: u32 },
    /// `max_concurrency` executions are held or running.
    Busy { running: usize },
    /// The instance is shutting down.
    ShuttingDown,
}

/// Executions that are held, running or reporting, keyed by id, and the attempts finished lately.
#[derive(Debug)]
pub(crate) struct Executions {
    state: Mutex<State>,
    /// How many executions are in the table; watched by the shutdown drain.
    count: watch::Sender<usize>,
    max_concurrency: usize,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<ExecutionId, Entry>,
    /// Entries whose handler ended and whose report is being delivered without holding a slot (the outbox).
    reporting: usize,
    /// Attempts that left the table, so that a fire delivered again is not run again.
    recent: RecentAttempts,
    shutting_down: bool,
}

#[derive(Debug)]
struct Entry {
    attempt: u32,
    /// `false` while the execution is held until its instant.
    started: bool,
    abort: AbortHandle,
    stop: Option<StopReason>,
    /// The handler ended and its report is in the outbox: the entry holds no slot.
    reporting: bool,
}

impl Executions {
    pub(crate) fn new(max_concurrency: usize) -> Self {
        Self { state: Mutex::default(), count: watch::Sender::new(0), max_concurrency }
    }

    /// Takes attempt `attempt` of `id` unless refused, calling `spawn` to start its task.
    ///
    /// A `held` execution takes its slot now; its task calls [`start`](Self::start) at the instant.
    /// A later attempt of an execution held here replaces it.
    pub(crate) fn admit(
        &self,
        id: ExecutionId,
        attempt: u32,
        held: bool,
        spawn: impl FnOnce() -> JoinHandle<TaskOutput>,
    ) -> Admission {
        let mut state = self.lock();
        let in_table = state.entries.get(&id).map(|entry| entry.attempt);
        let taken = in_table.max(state.recent.highest(id, Instant::now()));
        if taken.is_some_and(|taken| attempt <= taken) {
            return Admission::Duplicate;
        }
        if state.shutting_down {
            return Admission::ShuttingDown;
        }
        if let Some(earlier) = state.entries.get(&id) {
            if earlier.started {
                return Admission::AttemptRunning { attempt: earlier.attempt };
            }
            tracing::info!(execution_id = %id, attempt = earlier.attempt, later = attempt, "held attempt superseded");
            // Its task finds itself gone from the table and ends without a callback.
            earlier.abort.abort();
            state.entries.remove(&id);
        }
        let taking_slots = state.entries.len() - state.reporting;
        if taking_slots >= self.max_concurrency {
            return Admission::Busy { running: taking_slots };
        }
        let handle = spawn();
        let entry = Entry { attempt, started: !held, abort: handle.abort_handle(), stop: None, reporting: false };
        state.entries.insert(id, entry);
        self.count.send_replace(state.entries.len());
        Admission::Accepted(handle)
    }

    /// Marks a held execution started, at its instant; the reason instead if it was stopped meanwhile.
    pub(crate) fn start(&self, id: ExecutionId, attempt: u32) -> Result<(), StopReason> {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(&id).filter(|entry| entry.attempt == attempt) else {
            return Err(StopReason::Superseded);
        };
        if let Some(reason) = entry.stop {
            return Err(reason);
        }
        entry.started = true;
        Ok(())
    }

    /// Why attempt `attempt` of `id` was stopped, if it was.
    pub(crate) fn stop_reason(&self, id: ExecutionId, attempt: u32) -> Option<StopReason> {
        match self.lock().entries.get(&id) {
            Some(entry) if entry.attempt == attempt => entry.stop,
            _ => Some(StopReason::Superseded),
        }
    }

    /// Attempt `attempt` of `id` ended and its report goes out: its slot takes new work, unless the outbox is full
    /// (then it keeps the slot until [`finish`](Self::finish)). It stays in the table (heartbeats list it, a
    /// repeated dispatch is a duplicate) until it has reported.
    pub(crate) fn reporting(&self, id: ExecutionId, attempt: u32) {
        let mut state = self.lock();
        if state.reporting >= self.max_concurrency.saturating_mul(OUTBOX_PER_SLOT) {
            return;
        }
        let Some(entry) = state.entries.get_mut(&id).filter(|entry| entry.attempt == attempt && !entry.reporting)
        else {
            return;
        };
        entry.reporting = true;
        state.reporting += 1;
    }

    /// Removes attempt `attempt` of `id` once it has reported, and remembers it.
    pub(crate) fn finish(&self, id: ExecutionId, attempt: u32) {
        let mut state = self.lock();
        if state.entries.get(&id).is_none_or(|entry| entry.attempt != attempt) {
            return;
        }
        if state.entries.remove(&id).is_some_and(|entry| entry.reporting) {
            state.reporting -= 1;
        }
        state.recent.remember(id, attempt, Instant::now());
        self.count.send_replace(state.entries.len());
    }

    /// Stops `id`, held or running; `false` if it is not in the table.
    pub(crate) fn cancel(&self, id: ExecutionId) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(&id) else {
            return false;
        };
        entry.stop.get_or_insert(StopReason::Cancelled);
        entry.abort.abort();
        true
    }

    /// The ids of the executions held, running or reporting, for heartbeats.
    pub(crate) fn ids(&self) -> Vec<ExecutionId> {
        let mut ids: Vec<ExecutionId> = self.lock().entries.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// How busy the instance is, from 0 (idle) to 1 (at `max_concurrency`); held executions count, reports in the
    /// outbox do not.
    pub(crate) fn load(&self) -> f64 {
        let state = self.lock();
        (state.entries.len() - state.reporting) as f64 / self.max_concurrency.max(1) as f64
    }

    /// Refuses every later dispatch, and drops the held executions: they will report failed.
    pub(crate) fn begin_shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for entry in state.entries.values_mut().filter(|entry| !entry.started) {
            entry.stop.get_or_insert(StopReason::ShutdownWhileHeld);
            entry.abort.abort();
        }
    }

    /// Waits until every execution has reported.
    pub(crate) async fn wait_idle(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = count.wait_for(|running| *running == 0).await;
    }

    /// Aborts every handler still running because the instance shuts down.
    pub(crate) fn interrupt_all(&self) {
        for entry in self.lock().entries.values_mut() {
            entry.stop.get_or_insert(StopReason::Shutdown);
            entry.abort.abort();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is complete before anything can panic, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
