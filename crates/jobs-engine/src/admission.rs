//! Admission: what a task's execution mode makes of a fire, given everything of the task that is still open.
//!
//! An execution waiting for its retry counts as running: it has started and will run again, so a `skip` task
//! skips new fires meanwhile, a `replace` task cancels it, and a `sequential` task keeps new fires waiting.
//! A broadcast fire is one fire in all its shards: they never hold each other back, a shard not yet sent counts as
//! running (its fire has started), and a sequential fire's place in line is its fire's.
//! A pure function of the task's open executions, so that every mode is tested as a table.

use jobs_model::{Execution, ExecutionId, ExecutionMode, ExecutionStatus};

#[cfg(test)]
mod tests;

/// Fires of a `sequential` task that may wait for the running one; more are recorded as skipped.
pub(crate) const SEQUENTIAL_QUEUE_LIMIT: usize = 100;

/// What the mode decided for one fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Send it now.
    Send,
    /// Send it now, after cancelling these executions (`replace`).
    Replace(Vec<ExecutionId>),
    /// It stays pending, in line behind what runs or waits (`sequential`).
    Wait,
    /// It is recorded as `skipped` with this reason.
    Skip(String),
}

/// Whether `other` holds its task: running, or waiting for a retry.
pub(crate) fn is_active(other: &Execution) -> bool {
    match other.status {
        ExecutionStatus::Running => true,
        ExecutionStatus::Pending => other.retries > 0 || other.shard.is_some(),
        _ => false,
    }
}

/// Where an execution stands in its task's line: its fire's place.
fn place(execution: &Execution) -> jobs_model::ExecutionId {
    execution.fire_id.unwrap_or(execution.id)
}

/// Whether `other` belongs to the same fire as `execution` (itself, or another shard of its broadcast fire).
fn same_fire(execution: &Execution, other: &Execution) -> bool {
    other.id == execution.id || (execution.fire_id.is_some() && other.fire_id == execution.fire_id)
}

/// Applies `mode` to the first delivery of `execution`, with `open` the task's open executions (pending or
/// running, in id order; `execution` itself may be among them).
pub(crate) fn admit(mode: ExecutionMode, task_name: &str, execution: &Execution, open: &[Execution]) -> Admission {
    let others: Vec<&Execution> = open.iter().filter(|other| !same_fire(execution, other)).collect();
    let active: Vec<&Execution> = others.iter().copied().filter(|other| is_active(other)).collect();
    match mode {
        ExecutionMode::Parallel => Admission::Send,
        ExecutionMode::Skip => match active.first() {
            None => Admission::Send,
            Some(other) => Admission::Skip(format!(
                "skipped: execution {} of task `{task_name}` is still {}",
                other.id,
                if other.status == ExecutionStatus::Running { "running" } else { "waiting for its retry" }
            )),
        },
        ExecutionMode::Replace if active.is_empty() => Admission::Send,
        ExecutionMode::Replace => Admission::Replace(active.iter().map(|other| other.id).collect()),
        ExecutionMode::Sequential => {
            let ahead = others
                .iter()
                .filter(|other| other.status == ExecutionStatus::Pending && place(other) < place(execution));
            let waiting = ahead.filter(|other| !is_active(other)).count();
            if active.is_empty() && waiting == 0 {
                return Admission::Send;
            }
            if waiting >= SEQUENTIAL_QUEUE_LIMIT {
                return Admission::Skip(format!(
                    "skipped: the queue of sequential task `{task_name}` is full ({waiting} executions waiting, at most {SEQUENTIAL_QUEUE_LIMIT})"
                ));
            }
            Admission::Wait
        }
    }
}
