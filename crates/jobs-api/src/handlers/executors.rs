//! `/api/v1/executors`: registration, heartbeats, status, listing and deregistration.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use jobs_model::protocol::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use jobs_model::{ExecutionMode, ExecutorId, ExecutorState, ExecutorStatus};

use crate::dto::{ExecutorDto, StatusBody, word};
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};
use crate::handlers::parse_id;
use crate::{ApiError, AppState};

fn executor_id(text: &str) -> Result<ExecutorId, ApiError> {
    parse_id("executor", text, ExecutorId::parse)
}

/// Register an executor instance (or refresh its registration); declared tasks with a `cron` are created if missing.
#[utoipa::path(
    post,
    path = "/api/v1/executors/register",
    operation_id = "register_executor",
    tag = "executors",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "the instance was already registered and is updated", body = RegisterResponse),
        (status = 201, description = "the instance is newly registered", body = RegisterResponse),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 409, description = "a declared task conflicts with an existing one", body = ErrorBody),
    ),
    security(("bearer" = []), ("executor_signature" = [], "executor_timestamp" = [])),
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<(StatusCode, axum::Json<RegisterResponse>), ApiError> {
    let request = registration(&body)?;
    let (response, created) = state.engine.register_executor(&request).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(response)))
}

/// Reads a registration: a declared task's unknown `execution_mode` is an invalid value (400, as in the task API),
/// and any other mismatch is a body of the wrong shape (422).
fn registration(body: &serde_json::Value) -> Result<RegisterRequest, ApiError> {
    let tasks = body.get("tasks").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (index, task) in tasks.iter().enumerate() {
        if let Some(mode) = task.get("execution_mode").and_then(serde_json::Value::as_str) {
            word::<ExecutionMode>(&format!("tasks[{index}].execution_mode"), mode, ExecutionMode::ALL)?;
        }
    }
    RegisterRequest::deserialize(body).map_err(|error| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("invalid request body: {error}"))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only instances of this executor group.
    name: Option<String>,
    /// Only instances in this state.
    #[param(value_type = Option<ExecutorState>)]
    status: Option<String>,
}

/// List executor instances.
#[utoipa::path(
    get,
    path = "/api/v1/executors",
    operation_id = "list_executors",
    tag = "executors",
    params(ListQuery),
    responses(
        (status = 200, description = "every matching instance", body = Vec<ExecutorDto>),
        (status = 400, description = "invalid query parameter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<ExecutorDto>>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| crate::dto::word::<ExecutorState>("status", s, ExecutorState::ALL))
        .transpose()?;
    let executors = state.engine.executors(query.name.as_deref(), status).await?;
    Ok(axum::Json(executors.into_iter().map(ExecutorDto::from).collect()))
}

/// Get one executor instance.
#[utoipa::path(
    get,
    path = "/api/v1/executors/{executor}",
    operation_id = "get_executor",
    tag = "executors",
    params(("executor" = String, Path, format = "uuid", description = "executor instance id")),
    responses(
        (status = 200, description = "the instance", body = ExecutorDto),
        (status = 404, description = "no such instance", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ExecutorDto>, ApiError> {
    let view = state.engine.executor(executor_id(&id)?).await?;
    Ok(axum::Json(view.into()))
}

/// Put an instance into maintenance (it takes no new work) or back to active.
#[utoipa::path(
    put,
    path = "/api/v1/executors/{executor}/status",
    operation_id = "set_executor_status",
    tag = "executors",
    params(("executor" = String, Path, format = "uuid", description = "executor instance id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "the instance", body = ExecutorDto),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such instance", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<axum::Json<ExecutorDto>, ApiError> {
    let id = executor_id(&id)?;
    let status = crate::dto::word::<ExecutorStatus>("status", &body.status, ExecutorStatus::ALL)?;
    let view = state.engine.set_executor_status(id, status, body.reason.as_deref(), body.by.as_deref()).await?;
    Ok(axum::Json(view.into()))
}

/// The answer to a heartbeat.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeartbeatAck {
    ok: bool,
}

/// An instance's heartbeat, with the executions it is running.
#[utoipa::path(
    post,
    path = "/api/v1/executors/{executor}/heartbeat",
    operation_id = "executor_heartbeat",
    tag = "executors",
    params(("executor" = String, Path, format = "uuid", description = "executor instance id")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "recorded", body = HeartbeatAck),
        (status = 400, description = "invalid field value or malformed JSON", body = ErrorBody),
        (status = 413, description = "body larger than `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "missing `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (unknown field, wrong type)", body = ErrorBody),
        (status = 404, description = "no such instance (register again)", body = ErrorBody),
    ),
    security(("bearer" = []), ("executor_signature" = [], "executor_timestamp" = [])),
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<HeartbeatRequest>,
) -> Result<axum::Json<HeartbeatAck>, ApiError> {
    state.engine.heartbeat(executor_id(&id)?, &request).await?;
    Ok(axum::Json(HeartbeatAck { ok: true }))
}

/// Deregister an instance (an operator, or the instance itself on shutdown).
#[utoipa::path(
    delete,
    path = "/api/v1/executors/{executor}",
    operation_id = "delete_executor",
    tag = "executors",
    params(("executor" = String, Path, format = "uuid", description = "executor instance id")),
    responses(
        (status = 204, description = "deregistered"),
        (status = 404, description = "no such instance", body = ErrorBody),
    ),
    security(("bearer" = []), ("executor_signature" = [], "executor_timestamp" = [])),
)]
pub(crate) async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.engine.deregister_executor(executor_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
