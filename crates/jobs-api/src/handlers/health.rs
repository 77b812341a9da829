//! `GET /health` (liveness) and `GET /ready` (readiness) for load balancers and orchestrators; never need
//! credentials.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::RETRY_AFTER_SECONDS;

/// This instance is up.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthStatus)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
    instance_id: String,
    /// `leader` or `follower`.
    #[schema(example = "follower")]
    role: &'static str,
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    responses((status = 200, description = "the instance is up", body = Health)),
)]
pub(crate) async fn health(State(state): State<AppState>) -> axum::Json<Health> {
    let engine = &state.engine;
    axum::Json(Health { status: "ok", instance_id: engine.instance_id().to_owned(), role: engine.role().as_str() })
}

/// Whether this instance can serve.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReadyStatus)]
pub(crate) struct Ready {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    status: &'static str,
    instance_id: String,
    /// `leader` or `follower`.
    #[schema(example = "follower")]
    role: &'static str,
    /// Why the instance is not ready; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Readiness: 200 when the database answers and this instance serves (its row is written; a single node leads),
/// 503 with `Retry-After` otherwise, so that an orchestrator or load balancer sends it no traffic meanwhile.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "health",
    responses(
        (status = 200, description = "the instance can serve", body = Ready),
        (status = 503, description = "the database is unreachable or the instance does not serve yet", body = Ready),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let readiness = engine.readiness().await;
    let body = Ready {
        status: if readiness.is_ok() { "ready" } else { "unavailable" },
        instance_id: engine.instance_id().to_owned(),
        role: engine.role().as_str(),
        reason: readiness.err(),
    };
    if body.reason.is_some() {
        let retry_after = [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)];
        return (StatusCode::SERVICE_UNAVAILABLE, retry_after, axum::Json(body)).into_response();
    }
    axum::Json(body).into_response()
}
