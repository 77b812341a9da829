//! `least_loaded`: the candidate running the fewest executions.

use jobs_model::TaskId;

use crate::rotation::Rotation;
use crate::strategy::{Candidate, Strategy};

/// Picks a candidate with the fewest running executions; ties go round robin per task, so equal load spreads.
#[derive(Debug, Default)]
pub struct LeastLoaded {
    rotation: Rotation,
}

impl Strategy for LeastLoaded {
    fn name(&self) -> &'static str {
        "least_loaded"
    }

    fn pick(&self, task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        let fewest = candidates.iter().map(|candidate| candidate.running).min()?;
        self.rotation.pick(task, candidates, |candidate| candidate.running == fewest)
    }

    fn forget(&self, task: TaskId) {
        self.rotation.forget(task);
    }
}
