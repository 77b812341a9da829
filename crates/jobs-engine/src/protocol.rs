//! The executor protocol, the scheduler's side of it in one place: registration, heartbeats, deregistration,
//! callbacks and streamed log lines, plus what the API shows of executor instances.
//!
//! Any instance, leader or not, serves all of it: an executor may reach whichever is up.

use jobs_model::protocol::{
    CallbackRequest, CallbackStatus, DeclaredTask, HeartbeatRequest, RegisterRequest, RegisterResponse,
};
use jobs_model::{
    AttemptStatus, Execution, ExecutionId, ExecutionStatus, ExecutorId, ExecutorState, ExecutorStatus, TaskSpec,
};
use jobs_registry::ExecutorView;

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
    /// Registers an executor instance and creates the tasks it declares with a schedule that do not exist yet.
    ///
    /// Every declared task is checked before anything is stored; existing tasks are never changed.
    pub async fn register_executor(&self, request: &RegisterRequest) -> Result<(RegisterResponse, bool)> {
        let mut specs = Vec::new();
        for (index, declared) in request.tasks.iter().enumerate() {
            if let Some(cron) = &declared.cron {
                let spec = declared_spec(declared, cron)?;
                self.validate_task(&spec).map_err(|error| in_declared_task(error, index))?;
                specs.push(spec);
            }
        }
        let (executor, created) = self.registry.register(request).await?;
        let mut created_tasks = Vec::new();
        let mut existing_tasks = Vec::new();
        for spec in specs {
            if let Some(current) = self.store.find_task_by_name(&spec.name).await? {
                if current.spec.cron_expression != spec.cron_expression {
                    tracing::warn!(task = %spec.name, "declared task differs from the stored one; the stored one is kept");
                }
                existing_tasks.push(spec.name);
                continue;
            }
            let name = spec.name.clone();
            let disabled = TaskSpec { enabled: false, ..spec.clone() };
            let created = match self.create_task(spec).await {
                // An instance may declare a one-shot task after its instant (a restart the day after): it is
                // stored disabled, for an operator to see, rather than refusing the registration.
                Err(Error::Cron(jobs_cron::Error::PastInstant { .. })) => {
                    tracing::warn!(task = %name, "declared one-shot task's instant has passed; stored disabled");
                    self.create_task(disabled).await
                }
                created => created,
            };
            match created {
                Ok(_) => created_tasks.push(name),
                Err(Error::Storage(error)) if error.kind() == jobs_model::ErrorKind::Conflict => {
                    existing_tasks.push(name)
                }
                Err(error) => return Err(error),
            }
        }
        let response = RegisterResponse {
            executor_id: executor.id,
            heartbeat_interval_seconds: self.registry.heartbeat_interval_seconds(),
            created_tasks,
            existing_tasks,
        };
        Ok((response, created))
    }

    /// Records a heartbeat and answers as soon as it is recorded; what it reports (claimed fires it got or never
    /// got, executions it no longer runs) is settled afterwards, in the background.
    pub async fn heartbeat(&self, id: ExecutorId, request: &HeartbeatRequest) -> Result<()> {
        self.registry.heartbeat(id, request).await?;
        self.reports.settle(id, request.running_executions.clone());
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

    /// Fails an attempt whose instance no longer has it; retries apply.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id))]
    async fn lost(&self, execution: &Execution, reason: &str) -> Result<()> {
        let task = self.store.get_task(execution.task_id).await?;
        self.settler.attempt_failed(execution, execution.attempt, AttemptStatus::Failed, reason, task.as_ref()).await?;
        Ok(())
    }

    /// Applies an executor's report; a duplicate or late report changes nothing but the log.
    #[tracing::instrument(skip_all, fields(execution_id = %id))]
    ///
    /// A success on a known attempt is one conditional update, with nothing read before it; only a report that
    /// does not apply reads the execution, to answer what it is.
    pub async fn callback(&self, id: ExecutionId, report: &CallbackRequest) -> Result<CallbackOutcome> {
        if let Some(error) = &report.error {
            jobs_model::validate::max_len("error", error, 64 * 1024)?;
        }
        if report.status == CallbackStatus::Success
            && let Some(attempt) = report.attempt
            && report.logs.len() <= MAX_LOG_LINES
            && self.settler.succeeded(id, attempt, report.result.clone(), truncated(&report.logs)).await?
        {
            tracing::debug!("callback applied");
            return Ok(CallbackOutcome::Applied(ExecutionStatus::Success));
        }
        let execution = self.store.get_execution(id).await?.ok_or(Error::ExecutionNotFound(id))?;
        let status = match report.status {
            CallbackStatus::Success => ExecutionStatus::Success,
            CallbackStatus::Failed => ExecutionStatus::Failed,
        };
        if execution.status == status && report.attempt.is_none_or(|attempt| attempt == execution.attempt) {
            // The report that ended it, again (an executor that lost the first answer): one read, nothing to write.
            tracing::debug!(reported = %status, "duplicate callback; already recorded");
            return Ok(CallbackOutcome::AlreadyFinal(status));
        }
        self.append_logs(id, &report.logs).await?;
        let attempt = report.attempt.unwrap_or(execution.attempt);
        let taken = execution.status == ExecutionStatus::Running || execution.is_preclaimed();
        if taken && attempt == execution.attempt {
            let applied = match report.status {
                CallbackStatus::Success => {
                    self.settler.end(&execution, Some(attempt), status, report.result.clone(), None).await?
                }
                CallbackStatus::Failed => {
                    let error = report.error.as_deref().unwrap_or("the executor reported a failure");
                    let task = self.store.get_task(execution.task_id).await?;
                    self.settler
                        .attempt_failed(&execution, attempt, AttemptStatus::Failed, error, task.as_ref())
                        .await?
                }
            };
            if applied {
                // A success is final as reported; only a failure may have become a pending retry.
                let after = match report.status {
                    CallbackStatus::Success => status,
                    CallbackStatus::Failed => {
                        self.store.get_execution(id).await?.map_or(status, |current| current.status)
                    }
                };
                tracing::debug!(reported = %status, status = %after, task = %execution.task_name, "callback applied");
                return Ok(CallbackOutcome::Applied(after));
            }
        }
        if report.status == CallbackStatus::Success
            && attempt == execution.attempt
            && self.settler.succeeded_after_unreachable(&execution, attempt, report.result.as_ref()).await?
        {
            let note =
                format!("attempt {attempt} reported success after its instance counted as unreachable: accepted");
            self.store.append_logs(id, &[note], self.clock.now()).await?;
            return Ok(CallbackOutcome::Applied(ExecutionStatus::Success));
        }
        let current = self.store.get_execution(id).await?.map_or(execution.status, |current| current.status);
        let note = format!(
            "late callback ignored: attempt {attempt} reported {status}; the execution is {current} at attempt {}",
            execution.attempt
        );
        self.store.append_logs(id, &[note], self.clock.now()).await?;
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
        Ok(self.store.append_logs(id, &truncated(lines), self.clock.now()).await?)
    }

    /// Every executor instance, optionally only those of one group and one state.
    pub async fn executors(&self, name: Option<&str>, state: Option<ExecutorState>) -> Result<Vec<ExecutorView>> {
        Ok(self.registry.list(name, state).await?)
    }

    pub async fn executor(&self, id: ExecutorId) -> Result<ExecutorView> {
        Ok(self.registry.get(id).await?)
    }

    /// Puts an instance into maintenance (no new work; running work finishes) or back to active.
    pub async fn set_executor_status(
        &self,
        id: ExecutorId,
        status: ExecutorStatus,
        reason: Option<&str>,
        by: Option<&str>,
    ) -> Result<ExecutorView> {
        Ok(self.registry.set_status(id, status, reason, by).await?)
    }
}

/// The lines as they are kept: each cut to [`MAX_LOG_LINE`].
fn truncated(lines: &[String]) -> Vec<String> {
    lines.iter().map(|line| truncate(line, MAX_LOG_LINE)).collect()
}

/// Names the declared task an error is about.
fn in_declared_task(error: Error, index: usize) -> Error {
    match error {
        Error::Invalid(jobs_model::Error::Invalid { field, message }) => {
            jobs_model::Error::invalid(format!("tasks[{index}].{field}"), message).into()
        }
        other => other,
    }
}

/// The task a registration declares, with the seed's field names mapped to the task's.
fn declared_spec(declared: &DeclaredTask, cron: &str) -> Result<TaskSpec> {
    let mut spec = TaskSpec::named(declared.task_name.clone());
    spec.cron_expression = Some(cron.to_owned());
    if let Some(description) = &declared.description {
        spec.description = description.clone();
    }
    if let Some(timezone) = &declared.timezone {
        spec.timezone = timezone.clone();
    }
    if let Some(mode) = declared.execution_mode {
        spec.execution_mode = mode;
    }
    if let Some(strategy) = &declared.load_balance_strategy {
        spec.load_balance_strategy = strategy.clone();
    }
    if let Some(max_retry) = declared.max_retry {
        spec.max_retry = max_retry;
    }
    spec.retry_backoff = declared.retry_backoff;
    if let Some(timeout) = declared.timeout {
        spec.timeout_seconds = timeout;
    }
    if let Some(policy) = declared.misfire_policy {
        spec.misfire_policy = policy;
    }
    if let Some(parameters) = &declared.parameters {
        spec.parameters = parameters.clone();
    }
    Ok(spec)
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
