//! The execution service: history, log lines, and a user's cancel.

use std::collections::HashMap;

use jobs_model::{Attempt, Execution, ExecutionId, ExecutionStatus, LogLine, TaskId, Timestamp};
use jobs_storage::{ExecutionFilter, FinishedCount};

use crate::{Engine, Error, Result};

impl Engine {
    pub async fn get_execution(&self, id: ExecutionId) -> Result<(Execution, Vec<Attempt>)> {
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        let attempts = self.store.attempts(id).await?;
        Ok((execution, attempts))
    }

    /// The executions that `id`'s end triggered through its task's chains, oldest first.
    pub async fn downstream_of(&self, id: ExecutionId) -> Result<Vec<ExecutionId>> {
        Ok(self.store.downstream_of(id).await?)
    }

    pub async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>> {
        Ok(self.store.list_executions(filter).await?)
    }

    /// Fails with `ExecutionNotFound` unless the execution exists.
    pub async fn require_execution(&self, id: ExecutionId) -> Result<()> {
        match self.store.get_execution(id).await? {
            Some(_) => Ok(()),
            None => Err(Error::ExecutionNotFound(id)),
        }
    }

    /// Log lines of an execution in order, after the cursor `after_seq`.
    pub async fn logs(&self, id: ExecutionId, after_seq: Option<i64>, limit: u64) -> Result<Vec<LogLine>> {
        self.require_execution(id).await?;
        Ok(self.store.logs(id, after_seq, limit).await?)
    }

    /// A user's cancel: `cancelled`, the instance told, no retry. Conflict if it already ended.
    #[tracing::instrument(skip_all, fields(execution_id = %id))]
    pub async fn cancel_execution(&self, id: ExecutionId) -> Result<Execution> {
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        if execution.status.is_final() || !self.settler.cancel(&execution, "cancelled by a user").await? {
            let current = self.store.get_execution(id).await?.map_or(execution.status, |current| current.status);
            return Err(Error::AlreadyFinal { id, status: current });
        }
        self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))
    }
}

impl Engine {
    /// Executions that ended at or after `since`, counted by status per `bucket_millis` (what the console charts).
    pub async fn finished_counts(&self, since: Timestamp, bucket_millis: i64) -> Result<Vec<FinishedCount>> {
        Ok(self.store.finished_counts(since, bucket_millis).await?)
    }

    /// The statuses of each task's latest `per_task` executions, newest first.
    pub async fn recent_statuses(
        &self,
        tasks: &[TaskId],
        per_task: u64,
    ) -> Result<HashMap<TaskId, Vec<ExecutionStatus>>> {
        Ok(self.store.recent_statuses(tasks, per_task).await?)
    }
}
