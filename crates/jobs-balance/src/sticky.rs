//! `sticky`: a task stays on the same instance while that instance is a candidate.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use jobs_model::{ExecutorId, TaskId};

use crate::hash::mix;
use crate::strategy::{Candidate, Strategy};

/// Keeps each task on the instance it last went to while that one is among the candidates. Otherwise the task
/// moves, and stays on its new instance even when the old one comes back.
///
/// A task without an instance takes the candidate ranked highest by a hash of (task, executor) (rendezvous
/// hashing): tasks spread evenly, and a new leader, which starts without memory, makes the same choices.
#[derive(Debug, Default)]
pub struct Sticky {
    assigned: Mutex<HashMap<TaskId, ExecutorId>>,
}

impl Strategy for Sticky {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn pick(&self, task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        let mut assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = assigned.get(&task)
            && let Some(index) = candidates.iter().position(|candidate| candidate.id == *id)
        {
            return Some(index);
        }
        let task_bits = task.as_uuid().as_u128();
        let (index, candidate) = candidates
            .iter()
            .enumerate()
            .max_by_key(|(_, candidate)| (mix(task_bits, candidate.id.as_uuid().as_u128()), candidate.id))?;
        assigned.insert(task, candidate.id);
        Some(index)
    }

    fn forget(&self, task: TaskId) {
        self.assigned.lock().unwrap_or_else(PoisonError::into_inner).remove(&task);
    }
}
