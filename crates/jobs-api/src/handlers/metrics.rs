//! `GET /metrics`: Prometheus metrics; open like `/health`, so that a scraper needs no credentials.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use jobs_engine::METRICS_CONTENT_TYPE;

use crate::AppState;

/// Prometheus metrics, in the text exposition format.
///
/// Version 0.0.4 of the format, every family prefixed `jobs_`: fires planned, dispatches by outcome, dispatch
/// lateness, executions finished by status, running executions, executors by state and health, the leader flag
/// and epoch, database errors and alerts. Open like `/health`: it needs no token.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "metrics",
    responses((
        status = 200,
        description = "the metrics, in the Prometheus text format",
        body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8",
    )),
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.engine.metrics_text().await)
}
