//! The execution service: history, callbacks from executors and their log lines.

use jobs_model::protocol::{CallbackRequest, CallbackStatus};
use jobs_model::{Attempt, AttemptStatus, Execution, ExecutionId, ExecutionStatus, LogLine, Timestamp};
use jobs_storage::ExecutionFilter;

use crate::planner::PlannerEvent;
use crate::{Engine, Error, Result};

/// What a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The report applied; the execution's status after it (`pending` when a failure is retried).
    Applied(ExecutionStatus),
    /// The execution had ended or moved to another attempt; the report was kept in its log only.
    AlreadyFinal(ExecutionStatus),
}

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 16 * 1024;
/// Most lines one request may append.
const MAX_LOG_LINES: usize = 1000;

impl Engine {
    pub async fn get_execution(&self, id: ExecutionId) -> Result<(Execution, Vec<Attempt>)> {
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        let attempts = self.store.attempts(id).await?;
        Ok((execution, attempts))
    }

    pub async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>> {
        Ok(self.store.list_executions(filter).await?)
    }

    /// Applies an executor's report; a duplicate or late report changes nothing but the log.
    #[tracing::instrument(skip_all, fields(execution_id = %id))]
    pub async fn callback(&self, id: ExecutionId, report: &CallbackRequest) -> Result<CallbackOutcome> {
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        if let Some(error) = &report.error {
            jobs_model::validate::max_len("error", error, 64 * 1024)?;
        }
        self.append_logs(id, &report.logs).await?;
        let status = match report.status {
            CallbackStatus::Success => ExecutionStatus::Success,
            CallbackStatus::Failed => ExecutionStatus::Failed,
        };
        let now = Timestamp::now();
        let attempt = report.attempt.unwrap_or(execution.attempt);
        if execution.status == ExecutionStatus::Running && attempt == execution.attempt {
            let applied = match report.status {
                CallbackStatus::Success => {
                    self.writer.finish(id, attempt, status, report.result.clone(), None, now).await?
                }
                CallbackStatus::Failed => {
                    let error = report.error.as_deref().unwrap_or("the executor reported a failure");
                    match self.store.get_task(execution.task_id).await? {
                        Some(task) => {
                            self.outcomes.attempt_failed(id, attempt, AttemptStatus::Failed, error, &task).await?
                        }
                        None => self.store.finish_attempt(id, attempt, status, None, Some(error), now).await?,
                    }
                }
            };
            if applied {
                // A sequential task's next fire may go now.
                self.notify(PlannerEvent::Finished(execution.task_id));
                // A success is final as reported; only a failure may have become a pending retry.
                let after = match report.status {
                    CallbackStatus::Success => status,
                    CallbackStatus::Failed => {
                        self.store.get_execution(id).await?.map_or(status, |current| current.status)
                    }
                };
                tracing::debug!(reported = %status, status = %after, task = %execution.task_name, "callback applied");
                if after == ExecutionStatus::Success {
                    self.metrics.finished(after);
                }
                return Ok(CallbackOutcome::Applied(after));
            }
        }
        let current = self.store.get_execution(id).await?.map_or(execution.status, |current| current.status);
        let note = format!(
            "late callback ignored: attempt {attempt} reported {status}; the execution is {current} at attempt {}",
            execution.attempt
        );
        self.store.append_logs(id, &[note], now).await?;
        tracing::info!(reported = %status, current = %current, "callback not applied; kept in the log");
        Ok(CallbackOutcome::AlreadyFinal(current))
    }

    /// Appends lines an executor streamed for a running execution.
    #[tracing::instrument(skip_all, fields(execution_id = %id))]
    pub async fn append_logs(&self, id: ExecutionId, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        if lines.len() > MAX_LOG_LINES {
            return Err(
                jobs_model::Error::invalid("lines", format!("at most {MAX_LOG_LINES} lines per request")).into()
            );
        }
        let lines: Vec<String> = lines.iter().map(|line| truncate(line, MAX_LOG_LINE)).collect();
        Ok(self.store.append_logs(id, &lines, Timestamp::now()).await?)
    }

    /// Log lines of an execution in order, after the cursor `after_seq`.
    pub async fn logs(&self, id: ExecutionId, after_seq: Option<i64>, limit: u64) -> Result<Vec<LogLine>> {
        if self.store.get_execution(id).await?.is_none() {
            return Err(Error::ExecutionNotFound(id));
        }
        Ok(self.store.logs(id, after_seq, limit).await?)
    }
}

fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}
