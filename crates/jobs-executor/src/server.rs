//! The executor's HTTP surface: `POST /execute`, `POST /cancel` and `GET /health`.
//!
//! With a [secret](crate::ExecutorBuilder::secret), `/execute` and `/cancel` take only requests
//! the scheduler signed with it; `/health` stays open. This is the only place that maps outcomes
//! to status codes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use jobs_model::Timestamp;
use jobs_model::protocol::{CancelRequest, DispatchRequest};
use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::execution::{self, Dispatched};
use crate::executor::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/execute", post(execute))
        .route("/cancel", post(cancel))
        .route_layer(middleware::from_fn_with_state(shared.clone(), verify_signature))
        .route("/health", get(health))
        .with_state(shared)
}

/// Lets a request through when no secret is set, or when the scheduler signed its body with it.
async fn verify_signature(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(secret) = shared.client.secret() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    if !headers.contains_key(TIMESTAMP_HEADER) && !headers.contains_key(SIGNATURE_HEADER) {
        let message = format!(
            "executor instance `{}` takes only signed requests (`{TIMESTAMP_HEADER}` and `{SIGNATURE_HEADER}` headers)",
            shared.instance_id
        );
        return error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    let (parts, body) = request.into_parts();
    let body = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), "invalid_body", rejection.body_text()),
    };
    let header = |name: &str| parts.headers.get(name).map(|value| value.to_str().unwrap_or_default());
    let now = Timestamp::now().unix_seconds();
    let verified = signature::verify(secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &body, now);
    if let Err(refused) = verified {
        tracing::warn!(path = %parts.uri.path(), error = %refused, "request with a bad signature refused");
        return error(StatusCode::UNAUTHORIZED, "invalid_signature", refused.to_string());
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn execute(State(shared): State<Arc<Shared>>, body: Result<Json<DispatchRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return invalid_body(&rejection),
    };
    let id = request.execution_id;
    let task = request.task_name.clone();
    match execution::dispatch(&shared, request) {
        Dispatched::Accepted => (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response(),
        // 2xx, so that the scheduler does not hand the fire to another instance: it is taken here already.
        Dispatched::Duplicate => (StatusCode::ACCEPTED, Json(json!({"status": "duplicate"}))).into_response(),
        Dispatched::UnknownTask => error(
            StatusCode::NOT_FOUND,
            "unknown_task",
            format!("task `{task}` has no handler on executor instance `{}`", shared.instance_id),
        ),
        Dispatched::AttemptRunning { attempt } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("attempt {attempt} of execution {id} still runs on executor instance `{}`", shared.instance_id),
        ),
        Dispatched::Busy { running } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("executor instance `{}` already runs {running} executions", shared.instance_id),
        ),
        Dispatched::ShuttingDown => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            format!("executor instance `{}` is shutting down", shared.instance_id),
        ),
    }
}

async fn cancel(State(shared): State<Arc<Shared>>, body: Result<Json<CancelRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return invalid_body(&rejection),
    };
    let id = request.execution_id;
    if !shared.executions.cancel(id) {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_execution",
            format!("execution {id} is not running on executor instance `{}`", shared.instance_id),
        );
    }
    tracing::info!(execution_id = %id, "cancel requested");
    (StatusCode::OK, Json(json!({"status": "cancelled"}))).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

fn invalid_body(rejection: &JsonRejection) -> Response {
    error(rejection.status(), "invalid_body", rejection.body_text())
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}
