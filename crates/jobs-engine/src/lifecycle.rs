//! Keeping executions honest: timeouts, work lost with its instance, user cancels.
//!
//! Nothing stays `running` forever: an attempt past its deadline times out (and the instance is told to
//! cancel), and an attempt its instance no longer reports, or whose instance went offline or was
//! deregistered, is failed as lost; both count as failures for the task's retries.

use std::collections::HashSet;

use jobs_model::protocol::HeartbeatRequest;
use jobs_model::{AttemptStatus, Execution, ExecutionId, ExecutorId, ExecutorState, Timestamp};

use crate::{Engine, Error, Result};

/// Overdue executions handled per sweep.
const SWEEP_BATCH: u64 = 500;

impl Engine {
    /// The leader's periodic pass: time out overdue attempts, fail work of offline instances.
    pub(crate) async fn sweep(&self) {
        if let Err(error) = self.time_out_overdue().await {
            tracing::warn!(%error, "cannot time out overdue executions");
            self.metrics.database_error();
        }
        if let Err(error) = self.fail_work_of_offline_instances().await {
            tracing::warn!(%error, "cannot fail the work of offline instances");
            self.metrics.database_error();
        }
    }

    async fn time_out_overdue(&self) -> Result<()> {
        for execution in self.store.running_overdue(Timestamp::now(), SWEEP_BATCH).await? {
            let Some(task) = self.store.get_task(execution.task_id).await? else {
                let error = "task was deleted while its execution ran";
                self.store
                    .finish_execution(
                        execution.id,
                        jobs_model::ExecutionStatus::Failed,
                        None,
                        Some(error),
                        Timestamp::now(),
                    )
                    .await?;
                continue;
            };
            let error = format!("timed out after {}s", task.spec.timeout_seconds);
            self.outcomes.tell_cancel(&execution).await;
            self.outcomes
                .attempt_failed(execution.id, execution.attempt, AttemptStatus::Timeout, &error, &task)
                .await?;
        }
        Ok(())
    }

    async fn fail_work_of_offline_instances(&self) -> Result<()> {
        let offline = self.registry.list(None, Some(ExecutorState::Offline)).await?;
        self.alerts.executors_offline(&offline);
        for view in offline {
            let instance = view.executor.instance_id.clone();
            for execution in self.store.running_on(view.executor.id).await? {
                self.lost(&execution, &format!("lost: executor instance `{instance}` went offline")).await?;
            }
        }
        Ok(())
    }

    /// Fails an attempt whose instance no longer has it; retries apply.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id))]
    async fn lost(&self, execution: &Execution, reason: &str) -> Result<()> {
        let task = self.store.get_task(execution.task_id).await?;
        match task {
            Some(task) => {
                self.outcomes
                    .attempt_failed(execution.id, execution.attempt, AttemptStatus::Failed, reason, &task)
                    .await?;
            }
            None => {
                self.store
                    .finish_execution(
                        execution.id,
                        jobs_model::ExecutionStatus::Failed,
                        None,
                        Some(reason),
                        Timestamp::now(),
                    )
                    .await?;
            }
        }
        self.notify(crate::planner::PlannerEvent::Pending);
        Ok(())
    }

    /// Records a heartbeat; executions this instance should be running but no longer reports (after a grace
    /// period that covers a heartbeat crossing a dispatch) are failed as lost.
    pub async fn heartbeat(&self, id: ExecutorId, request: &HeartbeatRequest) -> Result<()> {
        self.registry.heartbeat(id, request).await?;
        let reported: HashSet<ExecutionId> = request.running_executions.iter().copied().collect();
        let grace = self.registry.heartbeat_interval_seconds() as i64 * 2_000 + 1_000;
        let now = Timestamp::now();
        for execution in self.store.running_on(id).await? {
            if reported.contains(&execution.id) {
                continue;
            }
            let attempts = self.store.attempts(execution.id).await?;
            let started =
                attempts.iter().find(|attempt| attempt.attempt == execution.attempt).map(|attempt| attempt.started_at);
            if started.is_some_and(|started| now.millis_since(started) > grace) {
                self.lost(&execution, "lost: the executor instance no longer reports it running").await?;
            }
        }
        Ok(())
    }

    /// Deregisters an instance; its running work fails as lost (and is retried elsewhere).
    pub async fn deregister_executor(&self, id: ExecutorId) -> Result<()> {
        let running = self.store.running_on(id).await?;
        self.registry.deregister(id).await?;
        for execution in running {
            self.lost(&execution, "lost: the executor instance was deregistered").await?;
        }
        Ok(())
    }

    /// A user's cancel: `cancelled`, the instance told, no retry. Conflict if it already ended.
    #[tracing::instrument(skip_all, fields(execution_id = %id))]
    pub async fn cancel_execution(&self, id: ExecutionId) -> Result<Execution> {
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        if execution.status.is_final() || !self.outcomes.cancel(&execution, "cancelled by a user").await? {
            let current = self.store.get_execution(id).await?.map_or(execution.status, |current| current.status);
            return Err(Error::AlreadyFinal { id, status: current });
        }
        self.notify(crate::planner::PlannerEvent::Pending);
        self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))
    }
}
