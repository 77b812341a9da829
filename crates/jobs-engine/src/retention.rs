//! Retention, run by the leader: executions and their logs older than `retention.max_age` or beyond
//! `retention.max_per_task` are deleted in small batches, with a pause between batches so that no lock is held
//! for long and the planner and dispatcher keep their share of the database.

use std::time::Duration as StdDuration;

use jobs_model::Timestamp;
use jobs_storage::Store;

mod config;
#[cfg(test)]
mod tests;

pub use crate::retention::config::RetentionConfig;

/// The pause between two batches of one pass.
const PAUSE: StdDuration = StdDuration::from_millis(50);

/// How many executions one pass deleted, by rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deleted {
    pub(crate) by_age: u64,
    pub(crate) by_count: u64,
}

/// Runs a pass every `interval` (the first at once) until aborted, when leadership ends.
pub(crate) async fn run(store: Store, config: RetentionConfig) {
    let mut ticker = tokio::time::interval(config.interval.get());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // The recorded MySQL sessions of connections that closed since (pools open and close them all the time).
        if let Err(error) = store.prune_sessions().await {
            tracing::warn!(%error, "cannot forget the database sessions that closed");
        }
        if !config.deletes_anything() {
            continue;
        }
        let deleted = pass(&store, &config, Timestamp::now()).await;
        if deleted != Deleted::default() {
            tracing::info!(by_age = deleted.by_age, by_count = deleted.by_count, "retention deleted old executions");
        }
    }
}

/// One pass: by age, then by count per task, each until a batch comes back short; errors are logged, and the
/// next pass tries again.
pub(crate) async fn pass(store: &Store, config: &RetentionConfig, now: Timestamp) -> Deleted {
    let mut deleted = Deleted::default();
    if !config.max_age.get().is_zero() {
        let max_age = i64::try_from(config.max_age.get().as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.add_millis(-max_age);
        let result =
            batches(config.batch_size, &mut deleted.by_age, || store.delete_finished_before(cutoff, config.batch_size))
                .await;
        if let Err(error) = result {
            tracing::warn!(%error, %cutoff, "cannot delete executions older than retention.max_age");
        }
    }
    if config.max_per_task > 0 {
        let keep = config.max_per_task;
        let tasks = match store.tasks_with_more_final_than(keep).await {
            Ok(tasks) => tasks,
            Err(error) => {
                tracing::warn!(%error, "cannot find tasks beyond retention.max_per_task");
                Vec::new()
            }
        };
        for task_id in tasks {
            let result = batches(config.batch_size, &mut deleted.by_count, || {
                store.delete_final_beyond_newest(task_id, keep, config.batch_size)
            })
            .await;
            if let Err(error) = result {
                tracing::warn!(%error, task_id = %task_id, "cannot delete executions beyond retention.max_per_task");
            }
        }
    }
    deleted
}

/// Calls `batch` until it deletes fewer than `size`, pausing in between; adds what it deleted to `total`.
async fn batches<F, Fut>(size: u64, total: &mut u64, mut batch: F) -> jobs_storage::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = jobs_storage::Result<u64>>,
{
    loop {
        let deleted = batch().await?;
        *total += deleted;
        if deleted < size {
            return Ok(());
        }
        tokio::time::sleep(PAUSE).await;
    }
}
