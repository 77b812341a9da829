//! `GET /health`: liveness for load balancers and container health checks; never needs credentials.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

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
