//! What happens when an attempt ends badly or a user cancels: retry after a backoff, or end the execution.

use std::sync::Arc;
use std::time::Duration;

use jobs_model::{AttemptStatus, BackoffKind, Execution, ExecutionId, ExecutionStatus, RetryBackoff, Task, Timestamp};
use jobs_registry::Registry;
use jobs_storage::Store;

use crate::ExecutorClient;
use crate::alerts::Alerter;
use crate::metrics::Metrics;

/// The backoff when a task sets none: exponential from one second, capped at a minute.
const DEFAULT_BACKOFF: RetryBackoff =
    RetryBackoff { kind: BackoffKind::Exponential, delay_seconds: 1, max_delay_seconds: Some(60) };

#[derive(Debug)]
pub(crate) struct Outcomes {
    store: Store,
    registry: Arc<Registry>,
    client: Arc<dyn ExecutorClient>,
    metrics: Arc<Metrics>,
    alerts: Arc<Alerter>,
}

impl Outcomes {
    pub(crate) fn new(
        store: Store,
        registry: Arc<Registry>,
        client: Arc<dyn ExecutorClient>,
        metrics: Arc<Metrics>,
        alerts: Arc<Alerter>,
    ) -> Self {
        Self { store, registry, client, metrics, alerts }
    }

    /// Attempt `attempt` failed, timed out or was lost: retry it after the task's backoff while retries remain,
    /// else end the execution with `status`. Returns whether it applied (false: that attempt was already settled).
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt))]
    pub(crate) async fn attempt_failed(
        &self,
        id: ExecutionId,
        attempt: u32,
        status: AttemptStatus,
        error: &str,
        task: &Task,
    ) -> Result<bool, jobs_storage::Error> {
        let Some(execution) = self.store.get_execution(id).await? else { return Ok(false) };
        let now = Timestamp::now();
        if execution.retries < task.spec.max_retry {
            let delay = backoff_delay(task.spec.retry_backoff.unwrap_or(DEFAULT_BACKOFF), execution.retries);
            let retry_at = now.add_millis(delay.as_millis() as i64);
            let applied = self.store.retry_later(id, attempt, status, error, retry_at, now).await?;
            if applied {
                tracing::info!(%error, retry = execution.retries + 1, max_retry = task.spec.max_retry, retry_at = %retry_at, "attempt failed; retrying");
            }
            return Ok(applied);
        }
        let last = if status == AttemptStatus::Timeout { ExecutionStatus::Timeout } else { ExecutionStatus::Failed };
        let applied = self.store.finish_attempt(id, attempt, last, None, Some(error), now).await?;
        if applied {
            tracing::warn!(%error, status = %last, retries = execution.retries, "execution failed");
            self.metrics.finished(last);
            self.alerts.execution_failed(&execution, last, error);
        }
        Ok(applied)
    }

    /// Ends an open execution as `cancelled` (no retry) and tells its instance, if it has one.
    pub(crate) async fn cancel(&self, execution: &Execution, reason: &str) -> Result<bool, jobs_storage::Error> {
        let now = Timestamp::now();
        if !self.store.finish_execution(execution.id, ExecutionStatus::Cancelled, None, Some(reason), now).await? {
            return Ok(false);
        }
        tracing::info!(execution_id = %execution.id, %reason, "execution cancelled");
        self.metrics.finished(ExecutionStatus::Cancelled);
        if execution.status == ExecutionStatus::Running {
            self.tell_cancel(execution).await;
        }
        Ok(true)
    }

    /// `POST {base_url}/cancel` to the instance running `execution`, in the background (best effort).
    pub(crate) async fn tell_cancel(&self, execution: &Execution) {
        let Some(executor_id) = execution.executor_id else { return };
        let Ok(Some(executor)) = self.store.get_executor(executor_id).await else { return };
        let client = self.client.clone();
        let id = execution.id;
        tokio::spawn(async move {
            if let Err(error) = client.cancel(&executor.base_url, id).await {
                tracing::info!(execution_id = %id, instance = %executor.instance_id, %error, "cancel not delivered");
            }
        });
        self.registry.invalidate();
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
