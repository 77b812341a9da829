//! `round_robin`: each task's dispatches go to its candidates in turn.

use jobs_model::TaskId;

use crate::rotation::Rotation;
use crate::strategy::{Candidate, Strategy};

/// Turns through the candidates per task, by executor id (see [`Rotation`]).
#[derive(Debug, Default)]
pub struct RoundRobin {
    rotation: Rotation,
}

impl Strategy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn pick(&self, task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        self.rotation.pick(task, candidates, |_| true)
    }

    fn forget(&self, task: TaskId) {
        self.rotation.forget(task);
    }
}
