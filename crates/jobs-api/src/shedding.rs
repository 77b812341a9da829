//! Requests in flight, bounded by class, so that an overloaded instance sheds in order: people's requests (the
//! console, lists, task changes) first, executors' reports (callbacks, log lines) next, and never the control
//! plane (heartbeats, registration, `/health`, `/ready`, `/metrics`). Past its bound, a request waits a moment for
//! room, then is answered 503 with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// People's requests in flight at once on one instance.
const PEOPLE: usize = 256;
/// Executors' reports in flight at once on one instance.
const REPORTS: usize = 1024;
/// How long a request past its class's bound waits for room before it is answered 503.
const WAIT: Duration = Duration::from_secs(1);

/// The bounds of the classes that have one.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    people: Arc<Semaphore>,
    reports: Arc<Semaphore>,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { people: Arc::new(Semaphore::new(PEOPLE)), reports: Arc::new(Semaphore::new(REPORTS)) }
    }
}

/// What a request is, for shedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Heartbeats, registration, health, readiness, metrics: never shed.
    Control,
    /// An executor's callback or log lines.
    Report,
    /// Everything else.
    People,
}

fn classify(method: &Method, path: &str) -> Class {
    if matches!(path, "/health" | "/ready" | "/metrics" | "/api/v1/executors/register") {
        return Class::Control;
    }
    if let Some(rest) = path.strip_prefix("/api/v1/executors/")
        && rest.ends_with("/heartbeat")
    {
        return Class::Control;
    }
    if *method == Method::POST
        && let Some(rest) = path.strip_prefix("/api/v1/executions/")
        && (rest.ends_with("/callback") || rest.ends_with("/logs"))
    {
        return Class::Report;
    }
    Class::People
}

/// The middleware: takes room in the request's class for as long as it is served.
pub(crate) async fn admit(State(bounds): State<Bounds>, request: Request, next: Next) -> Response {
    let semaphore = match classify(request.method(), request.uri().path()) {
        Class::Control => return next.run(request).await,
        Class::Report => &bounds.reports,
        Class::People => &bounds.people,
    };
    let permit = match semaphore.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => match tokio::time::timeout(WAIT, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                tracing::debug!(path = %request.uri().path(), "request shed: too many in flight");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "this scheduler instance has too many requests in flight; try again shortly",
                )
                .into_response();
            }
        },
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::{Class, classify};

    #[test]
    fn the_control_plane_is_never_shed_and_reports_come_before_people() {
        let heartbeat = "/api/v1/executors/0190a0b0-0000-7000-8000-000000000000/heartbeat";
        assert_eq!(classify(&Method::POST, heartbeat), Class::Control);
        assert_eq!(classify(&Method::POST, "/api/v1/executors/register"), Class::Control);
        assert_eq!(classify(&Method::GET, "/ready"), Class::Control);
        assert_eq!(classify(&Method::POST, "/api/v1/executions/x/callback"), Class::Report);
        assert_eq!(classify(&Method::POST, "/api/v1/executions/x/logs"), Class::Report);
        assert_eq!(classify(&Method::GET, "/api/v1/executions/x/logs"), Class::People);
        assert_eq!(classify(&Method::GET, "/ui/tasks"), Class::People);
        assert_eq!(classify(&Method::POST, "/api/v1/tasks"), Class::People);
    }
}
