//! What a handler knows about the execution it runs, and its log stream.

use std::sync::Arc;
use std::time::Duration;

use jobs_model::protocol::{DispatchRequest, Shard};
use jobs_model::{ExecutionId, Parameters, TaskId, Timestamp};

use crate::logs::LogBuffer;

/// The execution a handler runs: its ids, parameters and attempt, and a log stream to the scheduler.
///
/// Cloning is cheap; every clone logs to the same execution.
#[derive(Debug, Clone)]
pub struct JobContext {
    dispatch: Arc<DispatchRequest>,
    logs: Arc<LogBuffer>,
}

impl JobContext {
    pub(crate) fn new(dispatch: Arc<DispatchRequest>, logs: Arc<LogBuffer>) -> Self {
        Self { dispatch, logs }
    }

    /// A context tied to no scheduler, to call a handler directly (in a unit test, say).
    ///
    /// Its log lines only go to `tracing`.
    ///
    /// ```
    /// let ctx = jobs_executor::JobContext::detached("echo", Default::default());
    /// assert_eq!(ctx.task_name(), "echo");
    /// assert_eq!(ctx.attempt(), 1);
    /// ctx.log("hello");
    /// ```
    pub fn detached(task_name: impl Into<String>, parameters: Parameters) -> Self {
        let dispatch = DispatchRequest {
            execution_id: ExecutionId::new(),
            task_id: TaskId::new(),
            task_name: task_name.into(),
            parameters,
            attempt: 1,
            scheduled_at: Timestamp::now(),
            timeout_seconds: 0,
            callback_url: String::new(),
            shard: None,
        };
        Self { dispatch: Arc::new(dispatch), logs: Arc::new(LogBuffer::detached()) }
    }

    /// The execution's id (shared by all its attempts).
    pub fn execution_id(&self) -> ExecutionId {
        self.dispatch.execution_id
    }

    /// The task's id.
    pub fn task_id(&self) -> TaskId {
        self.dispatch.task_id
    }

    /// The task's name, which selected this handler.
    pub fn task_name(&self) -> &str {
        &self.dispatch.task_name
    }

    /// The execution's parameters (the task's, with a manual trigger's merged over them).
    pub fn parameters(&self) -> &Parameters {
        &self.dispatch.parameters
    }

    /// Which attempt this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.dispatch.attempt
    }

    /// When the execution was planned to run (the fire's instant, for a cron fire).
    ///
    /// With [early delivery](crate::ExecutorBuilder::early_delivery), a fire that arrived before this instant
    /// starts its handler no earlier than it, by this process's clock.
    pub fn scheduled_at(&self) -> Timestamp {
        self.dispatch.scheduled_at
    }

    /// For a task with the `broadcast` strategy, which every active, healthy instance runs at each fire: this
    /// instance's shard of the fire (`index` from 0 among `total`, the same index for the same instance while the
    /// set of instances does not change). `None` for any other task.
    ///
    /// ```
    /// let ctx = jobs_executor::JobContext::detached("report", Default::default());
    /// assert!(ctx.shard().is_none());
    /// ```
    pub fn shard(&self) -> Option<Shard> {
        self.dispatch.shard
    }

    /// How long the handler may run before it is stopped and reported failed; `None` if unbounded.
    pub fn timeout(&self) -> Option<Duration> {
        (self.dispatch.timeout_seconds > 0).then(|| Duration::from_secs(self.dispatch.timeout_seconds.into()))
    }

    /// Appends a line to the execution's log.
    ///
    /// Lines are sent to the scheduler in batches in the background; lines not yet sent when the
    /// handler returns travel with its result.
    pub fn log(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(execution_id = %self.dispatch.execution_id, task = %self.dispatch.task_name, "{line}");
        self.logs.push(line);
    }
}
