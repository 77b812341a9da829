//! `weighted_round_robin`: smooth weighted round robin, as nginx does it, per task.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use jobs_model::{ExecutorId, TaskId};

use crate::strategy::{Candidate, Strategy};

/// Nginx's smooth weighted round robin: on each pick every candidate's current weight grows by its weight, the
/// largest current weight wins (the first one on a tie) and loses the total. Weights 5, 1, 1 give a a b a c a a.
///
/// Current weights are kept per task and per executor id. When the set of candidates changes (an instance leaves,
/// refuses a dispatch or joins), the task's sequence starts again from zero, so the proportions stay exact between
/// changes. A weight of 0 counts as 1.
#[derive(Debug, Default)]
pub struct WeightedRoundRobin {
    current: Mutex<HashMap<TaskId, HashMap<ExecutorId, i64>>>,
}

impl Strategy for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "weighted_round_robin"
    }

    fn pick(&self, task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let weights = current.entry(task).or_default();
        if weights.len() != candidates.len() || candidates.iter().any(|candidate| !weights.contains_key(&candidate.id))
        {
            // Another set of instances (one left, refused or joined): start the sequence again.
            weights.clear();
        }
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            let weight = i64::from(candidate.weight.max(1));
            total = total.saturating_add(weight);
            let value = weights.entry(candidate.id).or_insert(0);
            *value = value.saturating_add(weight);
            if best.is_none_or(|(_, largest)| *value > largest) {
                best = Some((index, *value));
            }
        }
        let (index, _) = best?;
        if let Some(value) = weights.get_mut(&candidates[index].id) {
            *value = value.saturating_sub(total);
        }
        Some(index)
    }

    fn forget(&self, task: TaskId) {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).remove(&task);
    }
}
