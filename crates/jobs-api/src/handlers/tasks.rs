//! `/api/v1/tasks`: create, list, get, replace, patch, delete, pause, resume, trigger.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use jobs_engine::TaskPatch;
use jobs_model::{Task, TaskId};
use jobs_storage::TaskFilter;

use crate::dto::{Page, TaskBody, TriggerBody, Triggered, limit};
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query, optional_json};
use crate::{ApiError, AppState};

/// Create a task.
#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    operation_id = "create_task",
    tag = "tasks",
    request_body = TaskBody,
    responses(
        (status = 201, description = "the task as stored", body = Task),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 409, description = "a task with this name exists", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<TaskBody>,
) -> Result<(StatusCode, axum::Json<Task>), ApiError> {
    let task = state.engine.create_task(body.into_spec()?).await?;
    Ok((StatusCode::CREATED, axum::Json(task)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only tasks whose name contains this text.
    name: Option<String>,
    /// Only enabled (`true`) or paused (`false`) tasks.
    enabled: Option<bool>,
    /// The `next_cursor` of the previous page.
    #[param(format = "uuid")]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

/// List tasks, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "one page of tasks", body = Page<Task>),
        (status = 400, description = "invalid query parameter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Task>>, ApiError> {
    let limit = limit(query.limit)?;
    let after = match &query.cursor {
        Some(cursor) => Some(TaskId::parse(cursor).ok_or_else(|| ApiError::invalid("invalid `cursor`"))?),
        None => None,
    };
    let filter = TaskFilter { name_contains: query.name, enabled: query.enabled, after, limit };
    let tasks = state.engine.list_tasks(&filter).await?;
    Ok(axum::Json(Page::new(tasks, limit, |task| task.id.to_string())))
}

/// Get one task.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{task}",
    operation_id = "get_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    responses(
        (status = 200, description = "the task", body = Task),
        (status = 404, description = "no such task", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(State(state): State<AppState>, Path(key): Path<String>) -> Result<axum::Json<Task>, ApiError> {
    Ok(axum::Json(state.engine.find_task(&key).await?))
}

/// Replace a task: fields left out take their defaults; `name` defaults to the current one.
#[utoipa::path(
    put,
    path = "/api/v1/tasks/{task}",
    operation_id = "replace_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    request_body = TaskBody,
    responses(
        (status = 200, description = "the task as stored", body = Task),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "another task has this name", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Json(body): Json<TaskBody>,
) -> Result<axum::Json<Task>, ApiError> {
    let current = state.engine.find_task(&key).await?;
    let body = TaskBody { name: body.name.or(Some(current.spec.name)), ..body };
    Ok(axum::Json(state.engine.replace_task(&key, body.into_spec()?).await?))
}

/// Change some fields of a task; fields left out stay as they are.
#[utoipa::path(
    patch,
    path = "/api/v1/tasks/{task}",
    operation_id = "patch_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    request_body = TaskBody,
    responses(
        (status = 200, description = "the task as stored", body = Task),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "another task has this name", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Json(body): Json<TaskBody>,
) -> Result<axum::Json<Task>, ApiError> {
    Ok(axum::Json(state.engine.patch_task(&key, body.into_patch()?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Cancel the task's pending and running executions instead of refusing.
    force: Option<bool>,
}

/// Delete a task; its execution history stays.
#[utoipa::path(
    delete,
    path = "/api/v1/tasks/{task}",
    operation_id = "delete_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name"), DeleteQuery),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "invalid query parameter", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "the task has pending or running executions; `force` not set", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_task(&key, query.force.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a task: it stops firing until resumed; manual triggers still work.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{task}/pause",
    operation_id = "pause_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    responses(
        (status = 200, description = "the paused task", body = Task),
        (status = 404, description = "no such task", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<axum::Json<Task>, ApiError> {
    let patch = TaskPatch { enabled: Some(false), ..TaskPatch::default() };
    Ok(axum::Json(state.engine.patch_task(&key, patch).await?))
}

/// Resume a paused task.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{task}/resume",
    operation_id = "resume_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    responses(
        (status = 200, description = "the enabled task", body = Task),
        (status = 404, description = "no such task", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<axum::Json<Task>, ApiError> {
    let patch = TaskPatch { enabled: Some(true), ..TaskPatch::default() };
    Ok(axum::Json(state.engine.patch_task(&key, patch).await?))
}

/// Run a task now, outside its schedule; the body is optional.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{task}/trigger",
    operation_id = "trigger_task",
    tag = "tasks",
    params(("task" = String, Path, description = "task id or name")),
    request_body(content = Option<TriggerBody>, description = "optional; empty or `null` uses the task's parameters"),
    responses(
        (status = 202, description = "the execution was created and will be dispatched", body = Triggered),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn trigger(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body?;
    let body: TriggerBody = optional_json(&headers, &body)?;
    let execution = state.engine.trigger(&key, &body.parameters).await?;
    let triggered = Triggered {
        execution_id: execution.id.to_string(),
        task_id: execution.task_id.to_string(),
        status: execution.status,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(triggered)))
}
