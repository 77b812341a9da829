//! `GET /health` (liveness) and `GET /ready` (readiness) for load balancers and orchestrators; never need
//! credentials.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use jobs_engine::Readiness;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

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

/// This instance can serve.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReadyStatus)]
pub(crate) struct Ready {
    /// `ready`, or `degraded` while the database answers but the work waits for connections (the instance still
    /// serves: keep sending it traffic, and look at `reason`).
    #[schema(example = "ready")]
    status: &'static str,
    instance_id: String,
    /// `leader` or `follower`.
    #[schema(example = "follower")]
    role: &'static str,
    /// Why the instance is `degraded`; absent when `ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Readiness: 200 when the database answers and this instance serves (its row is written; a single node leads),
/// `degraded` with a reason when the work pool is saturated; otherwise 503 `unavailable` with `Retry-After`, its message saying why, so that an orchestrator or load
/// balancer sends this instance no traffic meanwhile.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "health",
    responses(
        (status = 200, description = "the instance can serve (`ready`, or `degraded` under load)", body = Ready),
        (status = 503, description = "the database is unreachable or the instance does not serve yet", body = ErrorBody),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<axum::Json<Ready>, ApiError> {
    let engine = &state.engine;
    match engine.readiness().await {
        Ok(readiness) => {
            let (status, reason) = match readiness {
                Readiness::Ready => ("ready", None),
                Readiness::Degraded(reason) => ("degraded", Some(reason)),
            };
            Ok(axum::Json(Ready {
                status,
                instance_id: engine.instance_id().to_owned(),
                role: engine.role().as_str(),
                reason,
            }))
        }
        Err(reason) => Err(ApiError::not_ready(format!("not ready: {reason}"))),
    }
}
