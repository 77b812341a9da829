//! The REST API: an axum router over the engine's services.
//!
//! Every instance serves all of it; [`ApiError`] is the one place where the scheduler's error kinds become HTTP
//! status codes.

mod auth;
mod config;
mod console;
mod dto;
mod error;
mod extract;
mod handlers;
mod openapi;
mod request_id;
mod server;
mod shedding;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use jobs_engine::Engine;

pub use crate::auth::AuthConfig;
pub use crate::config::{ServerConfig, ServerTlsConfig};
pub use crate::error::ApiError;
pub use crate::server::{ApiServer, TlsReloader};

/// The largest heartbeat or registration body taken: 100,000 running execution ids, or tens of thousands of
/// declared tasks, and room to spare.
const HEARTBEAT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
}

/// The whole API; `auth` guards everything under `/api/v1` (see [`AuthConfig`]).
/// Every request runs in a `request{request_id, method, path}` span and answers with `X-Request-Id`.
pub fn router(engine: Arc<Engine>, config: &ServerConfig, auth: &AuthConfig) -> Router {
    use crate::handlers::{cron, executions, executors, health, metrics, scheduler, tasks};
    let api = Router::new()
        .route("/tasks", post(tasks::create).get(tasks::list))
        .route("/tasks/{task}", get(tasks::get).put(tasks::replace).patch(tasks::patch).delete(tasks::delete))
        .route("/tasks/{task}/pause", post(tasks::pause))
        .route("/tasks/{task}/resume", post(tasks::resume))
        .route("/tasks/{task}/trigger", post(tasks::trigger))
        .route("/executors", get(executors::list))
        // A registration may declare tens of thousands of tasks.
        .route("/executors/register", post(executors::register).layer(DefaultBodyLimit::max(HEARTBEAT_MAX_BYTES)))
        .route("/executors/{executor}", get(executors::get).delete(executors::delete))
        .route("/executors/{executor}/status", put(executors::set_status))
        // A heartbeat lists every execution its instance holds: up to 100,000 ids, whatever `max_body_bytes` says.
        .route(
            "/executors/{executor}/heartbeat",
            post(executors::heartbeat).layer(DefaultBodyLimit::max(HEARTBEAT_MAX_BYTES)),
        )
        .route("/executions", get(executions::list))
        .route("/executions/{execution}", get(executions::get))
        .route("/executions/{execution}/callback", post(executions::callback))
        .route("/executions/{execution}/cancel", post(executions::cancel))
        .route("/executions/{execution}/logs", get(executions::logs).post(executions::append_logs))
        .route("/scheduler/status", get(scheduler::status))
        .route("/cron/preview", get(cron::preview))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs));
    // Its own fallbacks, so that unknown routes under /api/v1 answer only past the guard too.
    let api = api
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(auth::Guard::new(auth), auth::authenticate));
    Router::new()
        .nest("/api/v1", api)
        .merge(console::router(auth, config.tls.enabled()))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(AppState { engine })
        .layer(axum::middleware::from_fn_with_state(shedding::Bounds::default(), shedding::admit))
        // Outermost, so that rejected requests (401, 404, 413) carry an id too.
        .layer(axum::middleware::from_fn(request_id::trace))
}
