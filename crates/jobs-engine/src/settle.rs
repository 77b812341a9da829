//! Settling: the one place where an execution ends, or an attempt ends and is retried.
//!
//! Every final status (success, failed, timeout, cancelled, skipped, missed, and work lost with its instance) is
//! written through [`Settler`], which, once the database says the write applied, counts it, raises its alert,
//! frees the instance's slot for `least_loaded` and tells the pending queue. No other code writes a final status,
//! so no path can forget one of those.

use std::sync::Arc;
use std::time::Duration;

use jobs_model::{AttemptStatus, BackoffKind, Execution, ExecutionStatus, RetryBackoff, Task};
use jobs_registry::Registry;
use jobs_storage::Store;

use crate::ExecutorClient;
use crate::alerts::Alerter;
use crate::clock::Clock;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::queue::Wake;
use crate::sent::Sent;
use crate::writer::Writer;
use jobs_model::millis_i64;

#[cfg(test)]
mod tests;

/// The backoff when a task sets none: exponential from one second, capped at a minute.
const DEFAULT_BACKOFF: RetryBackoff =
    RetryBackoff { kind: BackoffKind::Exponential, delay_seconds: 1, max_delay_seconds: Some(60) };

/// What becomes of an execution whose attempt failed, timed out or was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Retried after this wait.
    Retry(Duration),
    /// Ended with this status.
    End(ExecutionStatus),
}

/// The verdict for attempt outcome `outcome` of an execution with `retries` retries behind it; `task` is `None`
/// when the task was deleted (nothing is retried then, and a timeout still ends as `timeout`).
pub(crate) fn verdict(retries: u32, outcome: AttemptStatus, task: Option<&Task>) -> Verdict {
    let last = if outcome == AttemptStatus::Timeout { ExecutionStatus::Timeout } else { ExecutionStatus::Failed };
    match task {
        Some(task) if retries < task.spec.max_retry => {
            Verdict::Retry(backoff_delay(task.spec.retry_backoff.unwrap_or(DEFAULT_BACKOFF), retries))
        }
        _ => Verdict::End(last),
    }
}

/// The wait before retry number `retries + 1`.
pub(crate) fn backoff_delay(backoff: RetryBackoff, retries: u32) -> Duration {
    let base = u64::from(backoff.delay_seconds);
    let seconds = match backoff.kind {
        BackoffKind::Fixed => base,
        BackoffKind::Exponential => base.saturating_mul(1u64 << retries.min(30)),
    };
    let cap = backoff.max_delay_seconds.map_or(u64::MAX, u64::from);
    Duration::from_secs(seconds.min(cap))
}

#[derive(Debug)]
pub(crate) struct Settler {
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) registry: Arc<Registry>,
    pub(crate) client: Arc<dyn ExecutorClient>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) alerts: Arc<Alerter>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) queue: Arc<Mailbox<Wake>>,
    /// What this instance sent and has not seen end.
    pub(crate) sent: Arc<Sent>,
}

impl Settler {
    /// An instance reported that attempt `attempt` of execution `id` succeeded, with the log lines it sent along:
    /// one conditional update (and the lines' insert) through the batched writer, with no read before it. Returns whether it applied (false: the execution had ended, moved to
    /// another attempt, or does not exist).
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt))]
    pub(crate) async fn succeeded(
        &self,
        id: jobs_model::ExecutionId,
        attempt: u32,
        result: Option<serde_json::Value>,
        logs: Vec<String>,
    ) -> Result<bool, jobs_storage::Error> {
        let now = self.clock.now();
        let applied = self.writer.finish(id, attempt, ExecutionStatus::Success, result, None, logs, now).await?;
        if applied {
            self.metrics.finished(ExecutionStatus::Success);
            self.count_chained();
            // Sent through another instance: that one's counts, and its queue, are not this one's to update.
            if let Some(sent) = self.sent.take(id) {
                self.registry.note_finished(sent.executor_id);
                self.queue.post(Wake::Finished(sent.task_id));
            }
        }
        Ok(applied)
    }

    /// A success reported for attempt `attempt` of an execution that failed, or waits to retry, because that attempt's
    /// instance counted as unreachable: the work ran, so the success stands rather than a retry on top of it.
    /// Returns whether it applied.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, attempt))]
    pub(crate) async fn succeeded_after_unreachable(
        &self,
        execution: &Execution,
        attempt: u32,
        result: Option<&serde_json::Value>,
    ) -> Result<bool, jobs_storage::Error> {
        let now = self.clock.now();
        if !self.store.succeed_after_unreachable(execution.id, attempt, result, now).await? {
            return Ok(false);
        }
        tracing::info!(was = %execution.status, "success reported after the instance counted as unreachable; accepted");
        self.metrics.finished(ExecutionStatus::Success);
        self.count_chained();
        self.queue.post(Wake::Finished(execution.task_id));
        Ok(true)
    }

    /// Ends `execution` with a final `status`, only while `attempt` (if given) is its current attempt; returns
    /// whether it applied (false: it had already ended or moved on).
    ///
    /// A success reported for an attempt goes through the batched writer, like [`Settler::succeeded`].
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, status = %status))]
    pub(crate) async fn end(
        &self,
        execution: &Execution,
        attempt: Option<u32>,
        status: ExecutionStatus,
        result: Option<serde_json::Value>,
        error: Option<&str>,
    ) -> Result<bool, jobs_storage::Error> {
        let now = self.clock.now();
        let applied = match attempt {
            Some(attempt) if status == ExecutionStatus::Success => {
                self.writer
                    .finish(execution.id, attempt, status, result, error.map(str::to_owned), Vec::new(), now)
                    .await?
            }
            Some(attempt) => {
                self.store.finish_attempt(execution.id, attempt, status, result.as_ref(), error, now).await?
            }
            None => self.store.finish_execution(execution.id, status, result.as_ref(), error, now).await?,
        };
        if applied {
            self.ended(execution, status, error);
        }
        Ok(applied)
    }

    /// Attempt `attempt` failed, timed out or was lost: retry it after the task's backoff while retries remain,
    /// else end the execution. `task` is `None` when it was deleted. Returns whether it applied.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, attempt))]
    pub(crate) async fn attempt_failed(
        &self,
        execution: &Execution,
        attempt: u32,
        outcome: AttemptStatus,
        error: &str,
        task: Option<&Task>,
    ) -> Result<bool, jobs_storage::Error> {
        match verdict(execution.retries, outcome, task) {
            Verdict::Retry(delay) => {
                let now = self.clock.now();
                let retry_at = now.add_millis(millis_i64(delay));
                let applied = self.store.retry_later(execution.id, attempt, outcome, error, retry_at, now).await?;
                if applied {
                    tracing::info!(%error, retry = execution.retries + 1, retry_at = %retry_at, "attempt failed; retrying");
                    self.attempt_ended(execution);
                }
                Ok(applied)
            }
            Verdict::End(status) => self.end(execution, Some(attempt), status, None, Some(error)).await,
        }
    }

    /// Ends an open execution as `cancelled` (no retry) and tells its instance, if it runs somewhere.
    pub(crate) async fn cancel(&self, execution: &Execution, reason: &str) -> Result<bool, jobs_storage::Error> {
        if !self.end(execution, None, ExecutionStatus::Cancelled, None, Some(reason)).await? {
            return Ok(false);
        }
        self.queue.post(Wake::Pending);
        Ok(true)
    }

    /// Ends an execution whose task is gone: `failed`, or `timeout` if its attempt ran out of time.
    pub(crate) async fn orphaned(&self, execution: &Execution, reason: &str) -> Result<bool, jobs_storage::Error> {
        self.attempt_failed(execution, execution.attempt, AttemptStatus::Failed, reason, None).await
    }

    /// Executions the store ended in a transaction of its own (a task's deletion cancels its open executions):
    /// counted and their instances told, like every other end.
    pub(crate) fn ended_elsewhere(&self, executions: &[Execution], status: ExecutionStatus, reason: &str) {
        for execution in executions {
            self.ended(execution, status, Some(reason));
        }
    }

    /// Rows written final when they were inserted (the planner's `missed` slots).
    pub(crate) fn recorded(&self, status: ExecutionStatus, count: u64) {
        self.metrics.finished_many(status, count);
    }

    /// Everything that follows an end the database accepted.
    fn ended(&self, execution: &Execution, status: ExecutionStatus, error: Option<&str>) {
        if execution.is_preclaimed() {
            self.sent.withdraw(execution.id, self.clock.now());
        }
        self.metrics.finished(status);
        self.count_chained();
        if matches!(status, ExecutionStatus::Failed | ExecutionStatus::Timeout) {
            tracing::warn!(execution_id = %execution.id, error, status = %status, "execution failed");
            self.alerts.execution_failed(execution, status, error.unwrap_or("failed"));
        }
        // A fire sent early is held by its instance until its instant: it is told too.
        if status == ExecutionStatus::Cancelled
            && (execution.status == ExecutionStatus::Running || execution.is_preclaimed())
        {
            self.tell_cancel(execution);
        }
        self.attempt_ended(execution);
    }

    /// Counts the executions that ends' chains triggered (written in the ends' own transactions) as fires, and has
    /// the queue start them.
    fn count_chained(&self) {
        let chained = self.store.take_chained();
        if chained > 0 {
            self.metrics.fired(jobs_model::TriggerType::Chain, usize::try_from(chained).unwrap_or(usize::MAX));
            self.queue.post(Wake::Pending);
        }
    }

    /// The execution's attempt no longer occupies its instance, and the task's next fire may be due.
    fn attempt_ended(&self, execution: &Execution) {
        if let Some(sent) = self.sent.take(execution.id) {
            self.registry.note_finished(sent.executor_id);
        }
        self.queue.post(Wake::Finished(execution.task_id));
    }

    /// `POST {base_url}/cancel` to the instance running `execution`, in the background (best effort).
    pub(crate) fn tell_cancel(&self, execution: &Execution) {
        let Some(executor_id) = execution.executor_id else { return };
        let store = self.store.clone();
        let client = self.client.clone();
        let id = execution.id;
        tokio::spawn(async move {
            let Ok(Some(executor)) = store.get_executor(executor_id).await else { return };
            if let Err(error) = client.cancel(&executor.base_url, id).await {
                tracing::info!(execution_id = %id, instance = %executor.instance_id, %error, "cancel not delivered");
            }
        });
    }
}
