//! Request handlers, one file per resource.

pub(crate) mod cron;
pub(crate) mod executions;
pub(crate) mod executors;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod scheduler;
pub(crate) mod tasks;

use crate::ApiError;

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}

/// Parses an id from a path segment.
pub(crate) fn parse_id<T>(what: &str, text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(text).ok_or_else(|| ApiError::not_found(format!("{what} `{text}` not found")))
}
