//! The sweeps, a leader loop that keeps executions honest: an attempt past its deadline times out (and its
//! instance is told to cancel), and the work of an instance that went offline fails as lost; both count as
//! failures for the task's retries. Nothing stays `running` forever. An instance offline longer than
//! `retention.offline_executors_max_age` is forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_model::{AttemptStatus, ExecutorId, ExecutorState, Timestamp};
use jobs_registry::Registry;
use jobs_storage::Store;

use crate::alerts::Alerter;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::settle::Settler;

/// How often the sweeps run.
const INTERVAL: Duration = Duration::from_millis(500);
/// Overdue executions handled per sweep.
const BATCH: u64 = 500;
/// How long past its deadline a running execution is timed out: a success reported just in time may wait this
/// long for room in a writer's queue before it is refused (and then sent again by its executor).
const OVERDUE_GRACE_MS: i64 = 3_000;
/// How often the work of an instance already settled as offline is looked at again (nothing is sent to it, so
/// only what an earlier leader claimed for it late can appear).
const SETTLED_RECHECK: Duration = Duration::from_secs(30);

pub(crate) struct Sweeps {
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) settler: Arc<Settler>,
    pub(crate) alerts: Arc<Alerter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    /// This leadership's epoch: its own claimed fires were sent by its dispatcher.
    pub(crate) epoch: i64,
    /// Offline instances whose work was settled: by their last heartbeat, when.
    pub(crate) settled: Mutex<HashMap<ExecutorId, (Option<Timestamp>, tokio::time::Instant)>>,
    /// Offline instances are deleted after this long without a heartbeat; `None` keeps them.
    pub(crate) forget_offline_after_ms: Option<i64>,
}

impl Sweeps {
    #[tracing::instrument(name = "sweeps", skip_all)]
    pub(crate) async fn run(self) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Since when this leader has reached the database without a break. Heartbeats that arrived while it could
        // not be written were lost through no fault of their instances, so nothing is declared offline until the
        // database has been back for a whole `offline_after` (a new leader waits as long, for the same reason).
        let mut reachable_since: Option<tokio::time::Instant> = None;
        let grace = self.registry.offline_after();
        loop {
            tick.tick().await;
            match self.time_out_overdue().await {
                Ok(()) => {
                    reachable_since.get_or_insert_with(tokio::time::Instant::now);
                }
                Err(error) => {
                    reachable_since = None;
                    tracing::warn!(%error, "cannot time out overdue executions");
                    self.metrics.database_error();
                }
            }
            let settled = reachable_since.is_some_and(|since| since.elapsed() >= grace);
            if let Err(error) = self.offline_instances(settled).await {
                tracing::warn!(%error, "cannot fail the work of offline instances");
                self.metrics.database_error();
            }
        }
    }

    async fn time_out_overdue(&self) -> crate::Result<()> {
        let mut overdue = self.store.running_overdue(self.clock.now().add_millis(-OVERDUE_GRACE_MS), BATCH).await?;
        // An end reported in time and still waiting in this instance's writer is not a timeout.
        overdue.retain(|execution| !self.settler.writer.is_finishing(execution.id));
        if overdue.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<_> = overdue.iter().map(|execution| execution.task_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let tasks = self.store.get_tasks(&ids).await?;
        for execution in overdue {
            let task = tasks.iter().find(|task| task.id == execution.task_id);
            let error = match task {
                Some(task) => format!("timed out after {}s", task.spec.timeout_seconds),
                None => "timed out; its task was deleted".to_owned(),
            };
            self.settler.tell_cancel(&execution);
            self.settler.attempt_failed(&execution, execution.attempt, AttemptStatus::Timeout, &error, task).await?;
        }
        Ok(())
    }

    /// Alerts on instances gone offline; with `fail_work`, their work fails as lost and their claimed fires go
    /// back to the queue.
    async fn offline_instances(&self, fail_work: bool) -> crate::Result<()> {
        let offline = self.registry.list(None, Some(ExecutorState::Offline)).await?;
        self.alerts.executors_offline(&offline);
        if !fail_work {
            return Ok(());
        }
        let now = self.clock.now();
        let seen: Vec<ExecutorId> = offline.iter().map(|view| view.executor.id).collect();
        self.settled_lock().retain(|id, _| seen.contains(id));
        for view in offline {
            let executor = &view.executor;
            let heartbeat = executor.last_heartbeat_at;
            let fresh = self.settled_lock().get(&executor.id).is_some_and(|(settled_heartbeat, at)| {
                *settled_heartbeat == heartbeat && at.elapsed() < SETTLED_RECHECK
            });
            if fresh {
                continue;
            }
            // Fires an earlier leader claimed for it that should have gone out by now and are not marked as taken
            // go back to the queue. This leadership's own claims whose send time passed were sent (its dispatcher
            // passes over an instance it no longer sees): taken but not yet marked, they are lost like running work.
            let current = Some((self.epoch, Timestamp::from_millis(i64::MIN)));
            let (_, unsent) = self.store.settle_unsent_claims(view.executor.id, &[], now, current, now).await?;
            if unsent > 0 {
                tracing::info!(executor_id = %view.executor.id, unsent, "claimed fires of an offline instance requeued");
            }
            let reason = format!("lost: executor instance `{}` went offline", view.executor.instance_id);
            let sent = self.store.claims_sent_to(view.executor.id, self.epoch, now).await?;
            for execution in self.store.running_on(view.executor.id).await?.into_iter().chain(sent) {
                let task = self.store.get_task(execution.task_id).await?;
                self.settler
                    .attempt_failed(&execution, execution.attempt, AttemptStatus::Failed, &reason, task.as_ref())
                    .await?;
            }
            self.settled_lock().insert(executor.id, (heartbeat, tokio::time::Instant::now()));
            let silent_ms = now.millis_since(heartbeat.unwrap_or(executor.registered_at));
            if self.forget_offline_after_ms.is_some_and(|max| silent_ms > max) {
                self.registry.deregister(executor.id).await?;
                tracing::info!(executor_id = %executor.id, instance_id = %executor.instance_id, silent_ms, "offline executor instance forgotten (retention.offline_executors_max_age)");
            }
        }
        Ok(())
    }

    fn settled_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ExecutorId, (Option<Timestamp>, tokio::time::Instant)>> {
        self.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
