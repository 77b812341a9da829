//! The strategy seam: one candidate instance, and the trait every strategy implements.

use std::fmt::Debug;

use jobs_model::{ExecutorId, TaskId};

/// An executor instance that can take a dispatch now.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: ExecutorId,
    /// For weighted round robin; 0 counts as 1.
    pub weight: u32,
    /// Executions it is running now.
    pub running: u32,
}

/// Picks the instance for one dispatch of a task.
pub trait Strategy: Send + Sync + Debug {
    /// The name tasks use (`round_robin`, …).
    fn name(&self) -> &'static str;

    /// The index in `candidates` of the instance for one dispatch of `task`; `None` when there is no candidate.
    ///
    /// When the picked instance refuses, the engine calls again with that one removed, so stateful strategies key
    /// their state by executor id and tolerate a changing set.
    fn pick(&self, task: TaskId, candidates: &[Candidate]) -> Option<usize>;

    /// Drops what the strategy remembers about `task` (it was deleted). Stateless strategies keep the default.
    fn forget(&self, task: TaskId) {
        let _ = task;
    }
}
