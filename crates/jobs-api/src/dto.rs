//! REST bodies: what clients send and get, mapped to and from `jobs-model`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use jobs_model::{
    Attempt, Execution, ExecutionMode, ExecutionStatus, ExecutorState, Health, MisfirePolicy, Parameters, RetryBackoff,
    TaskSpec, Timestamp,
};
use jobs_registry::ExecutorView;

use crate::ApiError;

/// Most items one list page returns.
pub(crate) const MAX_LIMIT: u64 = 500;
pub(crate) const DEFAULT_LIMIT: u64 = 50;

/// `limit` checked against the cap.
pub(crate) fn limit(limit: Option<u64>) -> Result<u64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(ApiError::invalid("invalid `limit`: must be at least 1")),
        Some(limit) if limit > MAX_LIMIT => Err(ApiError::invalid(format!("invalid `limit`: at most {MAX_LIMIT}"))),
        Some(limit) => Ok(limit),
    }
}

/// A page of a list, with the cursor of the next page when there may be one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    /// Pass as `cursor` (or `after`, for log lines) to get the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub(crate) fn new(items: Vec<T>, limit: u64, cursor: impl Fn(&T) -> String) -> Self {
        let next_cursor = if items.len() as u64 >= limit { items.last().map(cursor) } else { None };
        Self { items, next_cursor }
    }
}

/// A task as sent to create (`POST`), replace (`PUT`) or change (`PATCH`) one.
///
/// `POST` needs `name`; `POST` and `PUT` give missing fields their defaults, `PATCH` leaves them as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "daily_report",
    "description": "the daily sales report",
    "cron_expression": "0 0 2 * * *",
    "timezone": "Europe/Berlin",
    "execution_mode": "sequential",
    "max_retry": 2,
    "retry_backoff": {"type": "exponential", "delay_seconds": 10, "max_delay_seconds": 300},
    "timeout_seconds": 600,
    "parameters": {"region": "eu"}
}))]
pub(crate) struct TaskBody {
    /// 1 to 128 letters, digits, `_`, `-`, `.` and `:`, starting with a letter or digit; unique.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length = 128, example = "daily_report")]
    pub(crate) name: Option<String>,
    #[schema(max_length = 4096)]
    pub(crate) description: Option<String>,
    /// Five or six fields (seconds first), a macro such as `@daily`, `@every 90s` (fixed rate from creation or
    /// enable) or `@at 2026-12-24T18:00:00+01:00` (once, then the task is disabled); empty or `null` for manual-only
    /// tasks.
    #[schema(example = "0 0 2 * * *")]
    pub(crate) cron_expression: Option<String>,
    /// An IANA time zone name (default `UTC`).
    #[schema(example = "Europe/Berlin")]
    pub(crate) timezone: Option<String>,
    #[schema(value_type = Option<ExecutionMode>)]
    pub(crate) execution_mode: Option<String>,
    /// A registered strategy name (default `round_robin`).
    #[schema(example = "round_robin")]
    pub(crate) load_balance_strategy: Option<String>,
    /// 0 to 100 (default 0).
    #[schema(maximum = 100)]
    pub(crate) max_retry: Option<u32>,
    pub(crate) retry_backoff: Option<RetryBackoff>,
    /// 1 to 604800 (default 300).
    #[schema(minimum = 1, maximum = 604800)]
    pub(crate) timeout_seconds: Option<u32>,
    #[schema(value_type = Option<MisfirePolicy>)]
    pub(crate) misfire_policy: Option<String>,
    /// 0 to 10000: at most how many late slots of one gap (a failover, an outage, an overload) are fired when the
    /// scheduler catches up, the newest; the older are recorded `missed`. Absent or `null`: every slot less than
    /// the misfire grace late is fired.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, maximum = 10000)]
    pub(crate) max_catchup: Option<Option<u32>>,
    #[schema(value_type = Option<Object>)]
    pub(crate) parameters: Option<Parameters>,
    /// The executor group (registered `name`) that runs it; empty or `null` for any instance that declared the task.
    #[schema(pattern = "^([A-Za-z0-9][A-Za-z0-9_.:-]*)?$", max_length = 128)]
    pub(crate) executor: Option<String>,
    pub(crate) enabled: Option<bool>,
    /// Tasks triggered (trigger type `chain`) when an execution ends `success`, with its `result` under
    /// `parameters.upstream`; at most 32 names of existing tasks. A chain that leads back to this task is refused
    /// with 409.
    #[schema(max_items = 32)]
    pub(crate) on_success: Option<Vec<String>>,
    /// Tasks triggered when an execution ends `failed` or `timeout`, after its retries.
    #[schema(max_items = 32)]
    pub(crate) on_failure: Option<Vec<String>>,
}

/// A field given, `null` included (`Some(None)`), told from a field absent (`None`, through `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Parses a status or mode word, naming the field and the accepted words when it is none of them.
pub(crate) fn word<T: std::str::FromStr>(field: &str, value: &str, allowed: &[&str]) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid `{field}`: `{value}` is not one of {}", allowed.join(", "))))
}

impl TaskBody {
    /// A full task: missing fields take their defaults; `name` is required.
    pub(crate) fn into_spec(self) -> Result<TaskSpec, ApiError> {
        let Some(name) = self.name.clone() else {
            return Err(ApiError::invalid("invalid `name`: is required"));
        };
        let mut spec = TaskSpec::named(name);
        self.into_patch()?.apply_to(&mut spec);
        Ok(spec)
    }

    pub(crate) fn into_patch(self) -> Result<jobs_engine::TaskPatch, ApiError> {
        let execution_mode = self
            .execution_mode
            .map(|mode| word::<ExecutionMode>("execution_mode", &mode, ExecutionMode::ALL))
            .transpose()?;
        let misfire_policy = self
            .misfire_policy
            .map(|policy| word::<MisfirePolicy>("misfire_policy", &policy, MisfirePolicy::ALL))
            .transpose()?;
        let cron_expression = self.cron_expression.map(|expression| {
            let expression = expression.trim().to_owned();
            (!expression.is_empty()).then_some(expression)
        });
        let executor = self.executor.map(|executor| (!executor.is_empty()).then_some(executor));
        Ok(jobs_engine::TaskPatch {
            name: self.name,
            description: self.description,
            cron_expression,
            timezone: self.timezone,
            execution_mode,
            load_balance_strategy: self.load_balance_strategy,
            max_retry: self.max_retry,
            retry_backoff: self.retry_backoff.map(Some),
            timeout_seconds: self.timeout_seconds,
            misfire_policy,
            max_catchup: self.max_catchup,
            parameters: self.parameters,
            executor,
            enabled: self.enabled,
            on_success: self.on_success,
            on_failure: self.on_failure,
        })
    }
}

/// `POST /api/v1/tasks/{id}/trigger`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerBody {
    /// Merged over the task's parameters, key by key.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) parameters: Parameters,
}

/// The execution a manual trigger created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Triggered {
    #[schema(format = "uuid")]
    pub(crate) execution_id: String,
    #[schema(format = "uuid")]
    pub(crate) task_id: String,
    pub(crate) status: ExecutionStatus,
}

/// `PUT /api/v1/executors/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    #[schema(value_type = jobs_model::ExecutorStatus)]
    pub(crate) status: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub(crate) reason: Option<String>,
    /// Who made the change (free text, e.g. an operator's name).
    #[serde(default)]
    #[schema(max_length = 255)]
    pub(crate) by: Option<String>,
}

/// An executor instance as listed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Executor)]
pub(crate) struct ExecutorDto {
    #[schema(format = "uuid")]
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) instance_id: String,
    pub(crate) base_url: String,
    pub(crate) health_check_url: String,
    pub(crate) weight: u32,
    pub(crate) tags: Vec<String>,
    #[schema(value_type = Object)]
    pub(crate) metadata: Parameters,
    pub(crate) status: ExecutorState,
    pub(crate) status_reason: Option<String>,
    pub(crate) status_changed_by: Option<String>,
    pub(crate) status_changed_at: Option<Timestamp>,
    pub(crate) health: Health,
    pub(crate) consecutive_failures: u32,
    pub(crate) last_heartbeat_at: Option<Timestamp>,
    pub(crate) registered_at: Timestamp,
    pub(crate) running: u32,
    pub(crate) tasks: Vec<String>,
}

impl From<ExecutorView> for ExecutorDto {
    fn from(view: ExecutorView) -> Self {
        let executor = view.executor;
        Self {
            id: executor.id.to_string(),
            name: executor.name,
            instance_id: executor.instance_id,
            base_url: executor.base_url,
            health_check_url: executor.health_check_url,
            weight: executor.weight,
            tags: executor.tags,
            metadata: executor.metadata,
            status: view.state,
            status_reason: executor.status_reason,
            status_changed_by: executor.status_changed_by,
            status_changed_at: executor.status_changed_at,
            health: executor.health,
            consecutive_failures: executor.consecutive_failures,
            last_heartbeat_at: executor.last_heartbeat_at,
            registered_at: executor.registered_at,
            running: view.running,
            tasks: executor.tasks,
        }
    }
}

/// One execution with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionDetail {
    #[serde(flatten)]
    pub(crate) execution: Execution,
    pub(crate) attempts: Vec<Attempt>,
    /// The executions this one's end triggered through its task's chains.
    #[schema(value_type = Vec<String>, format = "uuid")]
    pub(crate) downstream_execution_ids: Vec<jobs_model::ExecutionId>,
}
