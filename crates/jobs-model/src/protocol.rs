//! The executor protocol: the bodies exchanged between the scheduler and executors (dispatch, callback,
//! log lines, registration, heartbeat).
//!
//! Both the scheduler and the SDK use these types, so changing one is a protocol change.

use serde::{Deserialize, Serialize};

use crate::{ExecutionId, ExecutionMode, ExecutorId, MisfirePolicy, Parameters, RetryBackoff, TaskId, Timestamp};

/// `POST /api/v1/executors/register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The executor group (service) name.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length = 128, example = "data-processor")
    )]
    pub name: String,
    /// Unique within the group; registering the same (name, instance_id) again updates the instance.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length = 128, example = "executor-001")
    )]
    pub instance_id: String,
    /// Where the scheduler sends `POST {base_url}/execute` and `/cancel`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^https?://[^/?#\\s\\x00-\\x1f\\x7f-\\x9f]+[^\\s\\x00-\\x1f\\x7f-\\x9f]*$",
            max_length = 2048,
            example = "http://10.0.0.7:9090"
        )
    )]
    pub base_url: String,
    /// Default `{base_url}/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^https?://[^/?#\\s\\x00-\\x1f\\x7f-\\x9f]+[^\\s\\x00-\\x1f\\x7f-\\x9f]*$",
            max_length = 2048
        )
    )]
    pub health_check_url: Option<String>,
    /// 1 to 1000 (default 1), for weighted strategies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub weight: Option<u32>,
    /// At most 64, each at most 128 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Parameters::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Parameters,
    #[serde(default)]
    pub tasks: Vec<DeclaredTask>,
    /// Early delivery: this instance accepts `/execute` up to this many milliseconds before `scheduled_at`
    /// (capped by the scheduler's `scheduler.early_delivery`). It then starts the work at `scheduled_at` by its own
    /// clock, drops it on a `/cancel` that comes before then, and answers an execution id it already took with 2xx
    /// without running it again. Absent or 0: each fire arrives at its instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 60000, example = 1000))]
    pub early_delivery_ms: Option<u64>,
    /// At most this many executions the instance takes at once (1 to 100,000). The scheduler never has more in
    /// flight on it and holds the rest in its queue, instead of sending what would be refused with 429. Absent: no
    /// limit (a 429 still makes the scheduler try another instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000, example = 64))]
    pub max_concurrency: Option<u32>,
}

/// A task an executor declares it can run; with a `cron`, it is created if missing.
///
/// Fields take the seed's names (`task_name`, `cron`, `timeout`) and the task API's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeclaredTask {
    #[serde(alias = "name")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length = 128))]
    pub task_name: String,
    #[serde(default, alias = "cron_expression", skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<ExecutionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balance_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub max_retry: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<RetryBackoff>,
    #[serde(default, alias = "timeout_seconds", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800))]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_policy: Option<MisfirePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub parameters: Option<Parameters>,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    pub executor_id: ExecutorId,
    pub heartbeat_interval_seconds: u64,
    /// Declared tasks with a schedule that did not exist and were created.
    #[serde(default)]
    pub created_tasks: Vec<String>,
    /// Declared tasks that already existed and were left as they are.
    #[serde(default)]
    pub existing_tasks: Vec<String>,
}

/// `POST /api/v1/executors/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub running_executions: Vec<ExecutionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
}

/// `POST {base_url}/execute`: the scheduler hands one attempt of an execution to an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispatchRequest {
    pub execution_id: ExecutionId,
    pub task_id: TaskId,
    pub task_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Parameters,
    pub attempt: u32,
    pub scheduled_at: Timestamp,
    pub timeout_seconds: u32,
    pub callback_url: String,
    /// For a `broadcast` task, which of the fire's executions this is; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// One execution of a `broadcast` fire, which runs once on every active, healthy instance that can run its task:
/// `index` (from 0) among `total`, the instances ordered by instance id, so the same index means the same instance
/// while the set does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

/// `POST {base_url}/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelRequest {
    pub execution_id: ExecutionId,
}

/// The outcome an executor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Success,
    Failed,
}

/// `POST /api/v1/executions/{id}/callback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallbackRequest {
    pub status: CallbackStatus,
    /// The attempt this reports on (from the dispatch); a report on an earlier attempt is only logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 65536))]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// `POST /api/v1/executions/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppendLogsRequest {
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_registration_parses() {
        let body = r#"{
            "name": "data-processor",
            "instance_id": "executor-001",
            "base_url": "http://localhost:9090",
            "health_check_url": "http://localhost:9090/health",
            "tasks": [{"task_name": "daily_report", "cron": "0 0 2 * * *", "execution_mode": "sequential",
                       "load_balance_strategy": "round_robin", "timeout": 300}]
        }"#;
        let request: RegisterRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.tasks[0].task_name, "daily_report");
        assert_eq!(request.tasks[0].cron.as_deref(), Some("0 0 2 * * *"));
        assert_eq!(request.tasks[0].timeout, Some(300));
        assert_eq!(request.tasks[0].execution_mode, Some(ExecutionMode::Sequential));
    }

    #[test]
    fn declared_execution_modes_are_the_task_words() {
        for mode in [ExecutionMode::Sequential, ExecutionMode::Parallel, ExecutionMode::Skip, ExecutionMode::Replace] {
            let task =
                DeclaredTask { task_name: "x".to_owned(), execution_mode: Some(mode), ..DeclaredTask::default() };
            let json = serde_json::to_value(&task).unwrap();
            assert_eq!(json["execution_mode"], mode.as_str());
            assert_eq!(serde_json::from_value::<DeclaredTask>(json).unwrap(), task);
        }
        let error = serde_json::from_str::<DeclaredTask>(r#"{"task_name": "x", "execution_mode": "serial"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown variant `serial`"), "{error}");
    }

    #[test]
    fn declared_tasks_take_the_task_api_names_too() {
        let task: DeclaredTask = serde_json::from_str(
            r#"{"name": "x", "cron_expression": "* * * * *", "timeout_seconds": 5, "max_retry": 2}"#,
        )
        .unwrap();
        assert_eq!((task.task_name.as_str(), task.timeout, task.max_retry), ("x", Some(5), Some(2)));
    }
}
