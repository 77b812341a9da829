//! The table of executions this instance took: admission, concurrency limit, cancel and drain.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use jobs_model::ExecutionId;

use crate::handler::Outcome;

/// How many taken (execution, attempt) pairs are remembered to ignore repeated dispatches.
const REMEMBERED_ATTEMPTS: usize = 10_000;

/// Why a handler was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `POST /cancel`: the scheduler already settled the execution, no callback.
    Cancelled,
    /// The instance shuts down and the handler outlived `shutdown_timeout`: reported failed.
    Shutdown,
}

/// The answer to a dispatch.
#[derive(Debug)]
pub(crate) enum Admission {
    /// The handler runs; here is its task.
    Accepted(JoinHandle<Outcome>),
    /// This attempt was taken before: ignored.
    Duplicate,
    /// Another attempt of the same execution still runs here.
    AttemptRunning { attempt: u32 },
    /// `max_concurrency` executions are running.
    Busy { running: usize },
    /// The instance is shutting down.
    ShuttingDown,
}

/// Executions that are running or reporting, keyed by id.
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
    taken: HashSet<(ExecutionId, u32)>,
    taken_order: VecDeque<(ExecutionId, u32)>,
    shutting_down: bool,
}

#[derive(Debug)]
struct Entry {
    attempt: u32,
    abort: AbortHandle,
    stop: Option<StopReason>,
}

impl Executions {
    pub(crate) fn new(max_concurrency: usize) -> Self {
        Self { state: Mutex::default(), count: watch::Sender::new(0), max_concurrency }
    }

    /// Takes attempt `attempt` of `id` unless refused, calling `spawn` to start its handler.
    pub(crate) fn admit(
        &self,
        id: ExecutionId,
        attempt: u32,
        spawn: impl FnOnce() -> JoinHandle<Outcome>,
    ) -> Admission {
        let mut state = self.lock();
        if state.taken.contains(&(id, attempt)) {
            return Admission::Duplicate;
        }
        if state.shutting_down {
            return Admission::ShuttingDown;
        }
        if let Some(entry) = state.entries.get(&id) {
            return Admission::AttemptRunning { attempt: entry.attempt };
        }
        if state.entries.len() >= self.max_concurrency {
            return Admission::Busy { running: state.entries.len() };
        }
        let handle = spawn();
        state.entries.insert(id, Entry { attempt, abort: handle.abort_handle(), stop: None });
        state.taken.insert((id, attempt));
        state.taken_order.push_back((id, attempt));
        if state.taken_order.len() > REMEMBERED_ATTEMPTS
            && let Some(oldest) = state.taken_order.pop_front()
        {
            state.taken.remove(&oldest);
        }
        self.count.send_replace(state.entries.len());
        Admission::Accepted(handle)
    }

    /// Why the handler of `id` was aborted, if it was.
    pub(crate) fn stop_reason(&self, id: ExecutionId) -> Option<StopReason> {
        self.lock().entries.get(&id).and_then(|entry| entry.stop)
    }

    /// Removes `id` once it has reported.
    pub(crate) fn finish(&self, id: ExecutionId) {
        let mut state = self.lock();
        state.entries.remove(&id);
        self.count.send_replace(state.entries.len());
    }

    /// Aborts the handler of `id`; `false` if `id` is not running here.
    pub(crate) fn cancel(&self, id: ExecutionId) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(&id) else {
            return false;
        };
        entry.stop.get_or_insert(StopReason::Cancelled);
        entry.abort.abort();
        true
    }

    /// The ids of the executions running or reporting, for heartbeats.
    pub(crate) fn ids(&self) -> Vec<ExecutionId> {
        let mut ids: Vec<ExecutionId> = self.lock().entries.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// How busy the instance is, from 0 (idle) to 1 (at `max_concurrency`).
    pub(crate) fn load(&self) -> f64 {
        self.lock().entries.len() as f64 / self.max_concurrency.max(1) as f64
    }

    /// Refuses every later dispatch.
    pub(crate) fn begin_shutdown(&self) {
        self.lock().shutting_down = true;
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
