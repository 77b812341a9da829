//! `broadcast`: every fire runs once on every candidate, each run told its shard. The engine splits a fire into
//! one execution per instance and sends each to its own instance; this strategy only places a shard whose
//! instance is gone (no longer active and healthy, or it refused): on the least busy of the others.

use jobs_model::TaskId;

use crate::strategy::{Candidate, Strategy};

/// The name the engine recognises to split fires into shards.
pub const BROADCAST: &str = "broadcast";

/// Places a shard away from its own instance: the candidate running the fewest executions, the first among equals.
#[derive(Debug, Default)]
pub struct Broadcast;

impl Strategy for Broadcast {
    fn name(&self) -> &'static str {
        BROADCAST
    }

    fn pick(&self, _task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        (0..candidates.len()).min_by_key(|index| candidates[*index].running)
    }
}
