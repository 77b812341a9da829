//! A per-task rotation over executor ids, shared by round robin and the tie-break of least loaded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use jobs_model::{ExecutorId, TaskId};

use crate::hash::mix;
use crate::strategy::Candidate;

/// Each pick takes the eligible candidate with the next executor id after the task's last pick, wrapping around.
///
/// Keyed by id rather than by position, the rotation ignores the order of the candidates and survives instances
/// coming and going: a refused instance's retry goes on to the next id. A task's first pick starts at a position
/// given by a hash of its id, so that tasks firing together do not all start on the same instance.
#[derive(Debug, Default)]
pub(crate) struct Rotation {
    last: Mutex<HashMap<TaskId, ExecutorId>>,
}

impl Rotation {
    /// Picks among the candidates for which `eligible` holds.
    pub(crate) fn pick(
        &self,
        task: TaskId,
        candidates: &[Candidate],
        eligible: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        let mut ids: Vec<(ExecutorId, usize)> = candidates
            .iter()
            .enumerate()
            .filter(|(_, candidate)| eligible(candidate))
            .map(|(index, candidate)| (candidate.id, index))
            .collect();
        if ids.is_empty() {
            return None;
        }
        ids.sort_unstable();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let position = match last.get(&task) {
            Some(previous) => ids.iter().position(|(id, _)| id > previous).unwrap_or(0),
            None => (mix(task.as_uuid().as_u128(), 0) % ids.len() as u64) as usize,
        };
        let (id, index) = ids[position];
        last.insert(task, id);
        Some(index)
    }

    pub(crate) fn forget(&self, task: TaskId) {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).remove(&task);
    }
}
