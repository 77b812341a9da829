//! `random`: a uniformly random candidate for each dispatch.

use rand::Rng;

use jobs_model::TaskId;

use crate::strategy::{Candidate, Strategy};

/// Picks uniformly at random, with no state.
#[derive(Debug, Default)]
pub struct Random;

impl Strategy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn pick(&self, _task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(rand::rng().random_range(0..candidates.len()))
    }
}
