//! `/api/v1/executions`: history, one execution with its attempts, callbacks and log lines.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use jobs_engine::CallbackOutcome;
use jobs_model::protocol::{AppendLogsRequest, CallbackRequest};
use jobs_model::{Execution, ExecutionId, ExecutionStatus, ExecutorId, LogLine, Timestamp, TriggerType};
use jobs_storage::ExecutionFilter;

use crate::dto::{ExecutionDetail, Page, limit};
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};
use crate::handlers::parse_id;
use crate::{ApiError, AppState};

fn execution_id(text: &str) -> Result<ExecutionId, ApiError> {
    parse_id("execution", text, ExecutionId::parse)
}

fn time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(text)
        .ok_or_else(|| ApiError::invalid(format!("invalid `{field}`: `{text}` is not an RFC 3339 time")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only executions of this task (id or name).
    task_id: Option<String>,
    #[param(value_type = Option<ExecutionStatus>)]
    status: Option<String>,
    #[param(value_type = Option<TriggerType>)]
    trigger_type: Option<String>,
    /// Only executions last sent to this executor instance.
    #[param(format = "uuid")]
    executor_id: Option<String>,
    /// Only executions scheduled at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only executions scheduled before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(format = "uuid")]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

/// List executions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/executions",
    operation_id = "list_executions",
    tag = "executions",
    params(ListQuery),
    responses(
        (status = 200, description = "one page of executions", body = Page<Execution>),
        (status = 400, description = "invalid query parameter", body = ErrorBody),
        (status = 404, description = "`task_id` names no task", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Execution>>, ApiError> {
    let limit = limit(query.limit)?;
    let task_id = match &query.task_id {
        Some(key) => Some(state.engine.find_task(key).await?.id),
        None => None,
    };
    let status = query
        .status
        .as_deref()
        .map(|s| crate::dto::word::<ExecutionStatus>("status", s, ExecutionStatus::ALL))
        .transpose()?;
    let trigger_type = query
        .trigger_type
        .as_deref()
        .map(|kind| crate::dto::word::<TriggerType>("trigger_type", kind, TriggerType::ALL))
        .transpose()?;
    let executor_id = match &query.executor_id {
        Some(id) => {
            Some(ExecutorId::parse(id).ok_or_else(|| ApiError::invalid(format!("invalid `executor_id`: `{id}`")))?)
        }
        None => None,
    };
    let before = match &query.cursor {
        Some(cursor) => Some(ExecutionId::parse(cursor).ok_or_else(|| ApiError::invalid("invalid `cursor`"))?),
        None => None,
    };
    let filter = ExecutionFilter {
        task_id,
        status,
        trigger_type,
        executor_id,
        from: query.from.as_deref().map(|text| time("from", text)).transpose()?,
        to: query.to.as_deref().map(|text| time("to", text)).transpose()?,
        before,
        limit,
    };
    let executions = state.engine.list_executions(&filter).await?;
    Ok(axum::Json(Page::new(executions, limit, |execution| execution.id.to_string())))
}

/// Get one execution with its attempts.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{execution}",
    operation_id = "get_execution",
    tag = "executions",
    params(("execution" = String, Path, format = "uuid", description = "execution id")),
    responses(
        (status = 200, description = "the execution", body = ExecutionDetail),
        (status = 404, description = "no such execution", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ExecutionDetail>, ApiError> {
    let id = execution_id(&id)?;
    let (execution, attempts) = state.engine.get_execution(id).await?;
    let downstream_execution_ids = state.engine.downstream_of(id).await?;
    Ok(axum::Json(ExecutionDetail { execution, attempts, downstream_execution_ids }))
}

/// Whether a callback changed the execution, and its status afterwards.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackAnswer {
    applied: bool,
    status: ExecutionStatus,
}

/// An executor reports how an attempt ended; a report on an execution that already ended changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/executions/{execution}/callback",
    operation_id = "execution_callback",
    tag = "executions",
    params(("execution" = String, Path, format = "uuid", description = "execution id")),
    request_body = CallbackRequest,
    responses(
        (status = 200, description = "applied, or the execution had already ended", body = CallbackAnswer),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such execution", body = ErrorBody),
    ),
    security(("bearer" = []), ("executor_signature" = [], "executor_timestamp" = [])),
)]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(report): Json<CallbackRequest>,
) -> Result<axum::Json<CallbackAnswer>, ApiError> {
    let answer = match state.engine.callback(execution_id(&id)?, &report).await? {
        CallbackOutcome::Applied(status) => CallbackAnswer { applied: true, status },
        CallbackOutcome::AlreadyFinal(status) => CallbackAnswer { applied: false, status },
    };
    Ok(axum::Json(answer))
}

/// `POST /api/v1/executions/{id}/cancel`: ends it as `cancelled` (no retry) and tells its instance.
#[utoipa::path(
    post,
    path = "/api/v1/executions/{execution}/cancel",
    operation_id = "cancel_execution",
    tag = "executions",
    params(("execution" = String, Path, format = "uuid", description = "execution id")),
    responses(
        (status = 200, description = "the cancelled execution", body = Execution),
        (status = 404, description = "no such execution", body = ErrorBody),
        (status = 409, description = "the execution already ended", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Execution>, ApiError> {
    Ok(axum::Json(state.engine.cancel_execution(execution_id(&id)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogsQuery {
    /// Return lines after this sequence number (the `next_cursor` of the previous page).
    after: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

/// An execution's log lines, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{execution}/logs",
    operation_id = "execution_logs",
    tag = "executions",
    params(("execution" = String, Path, format = "uuid", description = "execution id"), LogsQuery),
    responses(
        (status = 200, description = "one page of log lines", body = Page<LogLine>),
        (status = 400, description = "invalid query parameter", body = ErrorBody),
        (status = 404, description = "no such execution", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<axum::Json<Page<LogLine>>, ApiError> {
    let limit = limit(query.limit)?;
    let lines = state.engine.logs(execution_id(&id)?, query.after, limit).await?;
    Ok(axum::Json(Page::new(lines, limit, |line| line.seq.to_string())))
}

/// The answer to appended log lines.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogsAppended {
    appended: usize,
}

/// An executor appends log lines to a running execution.
#[utoipa::path(
    post,
    path = "/api/v1/executions/{execution}/logs",
    operation_id = "append_execution_logs",
    tag = "executions",
    params(("execution" = String, Path, format = "uuid", description = "execution id")),
    request_body = AppendLogsRequest,
    responses(
        (status = 200, description = "the lines were stored", body = LogsAppended),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such execution", body = ErrorBody),
    ),
    security(("bearer" = []), ("executor_signature" = [], "executor_timestamp" = [])),
)]
pub(crate) async fn append_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<AppendLogsRequest>,
) -> Result<axum::Json<LogsAppended>, ApiError> {
    let id = execution_id(&id)?;
    state.engine.require_execution(id).await?;
    state.engine.append_logs(id, &request.lines).await?;
    Ok(axum::Json(LogsAppended { appended: request.lines.len() }))
}
