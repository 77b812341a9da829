//! Executions, their attempts and their log lines.

use serde::{Deserialize, Serialize};

use crate::task::word_enum;
use crate::{ExecutionId, ExecutorId, Parameters, TaskId, Timestamp};

word_enum!(
    /// Where an execution is in its life: `pending → running → success | failed | timeout | cancelled`, or `skipped`/`missed`.
    ExecutionStatus {
        Pending => "pending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Timeout => "timeout",
        Cancelled => "cancelled",
        Skipped => "skipped",
        Missed => "missed",
    }
);

impl ExecutionStatus {
    /// A final status never changes again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

word_enum!(
    /// Why an execution exists.
    TriggerType {
        Cron => "cron",
        Manual => "manual",
        Retry => "retry",
        Chain => "chain",
    }
);

word_enum!(
    /// How one delivery of an execution to one instance ended.
    AttemptStatus {
        Sending => "sending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Timeout => "timeout",
        Cancelled => "cancelled",
        Rejected => "rejected",
    }
);

/// One run of a task, from its fire to its final status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    pub id: ExecutionId,
    pub task_id: TaskId,
    pub task_name: String,
    pub trigger_type: TriggerType,
    pub status: ExecutionStatus,
    /// The cron slot for cron fires; the trigger time for manual ones.
    pub scheduled_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Parameters,
    pub executor_id: Option<ExecutorId>,
    /// Deliveries so far (attempts rejected as busy count too).
    pub attempt: u32,
    /// Retries so far, each after a failed, timed-out or lost attempt.
    pub retries: u32,
    /// When a pending retry may go out.
    pub retry_at: Option<Timestamp>,
    /// When the running attempt times out.
    pub deadline_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Slots older than `misfire_grace` that were not fired and that this execution accounts for: the slots a
    /// `fire_once` catch-up fire stands for, or those a long outage's plan left out. They count as `missed`.
    #[serde(default)]
    pub missed_slots: u32,
    /// The execution whose end triggered this one (trigger type `chain`).
    #[serde(default)]
    pub upstream_execution_id: Option<ExecutionId>,
    /// The fire this execution is one shard of (a `broadcast` task's fire runs once on every instance): the id its
    /// shards share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_id: Option<ExecutionId>,
    /// Which shard of its fire this execution is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::protocol::Shard>,
    /// The leader epoch that wrote the fire (and claimed its first attempt, if it did); not shown by the API.
    #[serde(skip)]
    pub epoch: Option<i64>,
}

impl Execution {
    /// A new execution of `task`, pending from `scheduled_at`, that no instance has taken yet.
    pub fn pending(
        task: &crate::Task,
        trigger_type: TriggerType,
        scheduled_at: Timestamp,
        parameters: Parameters,
        now: Timestamp,
    ) -> Self {
        Self {
            id: ExecutionId::new(),
            task_id: task.id,
            task_name: task.spec.name.clone(),
            trigger_type,
            status: ExecutionStatus::Pending,
            scheduled_at,
            parameters,
            executor_id: None,
            attempt: 0,
            retries: 0,
            retry_at: None,
            deadline_at: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            result: None,
            error: None,
            missed_slots: 0,
            upstream_execution_id: None,
            fire_id: None,
            shard: None,
            epoch: None,
        }
    }

    /// A fire written with its first attempt already claimed for `executor_id`, not yet marked as taken: pending at
    /// attempt 1 with no retry behind it. Its request goes out at `started_at`, which is `scheduled_at` less any
    /// early-delivery lead of its instance.
    pub fn is_preclaimed(&self) -> bool {
        self.status == ExecutionStatus::Pending && self.attempt == 1 && self.retry_at.is_none()
    }
}

/// One delivery of an execution to one executor instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub attempt: u32,
    pub executor_id: Option<ExecutorId>,
    pub status: AttemptStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// One line of an execution's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub seq: i64,
    pub at: Timestamp,
    pub message: String,
}
