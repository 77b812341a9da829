//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use jobs_model::ErrorKind;
use jobs_model::signature::SignatureError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 503 `unavailable` with why this instance cannot serve now (readiness); answered with `Retry-After`.
    pub(crate) fn not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401: credentials are missing or wrong (`unauthorized`, `invalid_signature`).
    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Maps a domain error by its kind; a 5xx keeps its cause in the log, not in the response.
    fn from_kind(kind: ErrorKind, error: &dyn std::error::Error) -> Self {
        match kind {
            ErrorKind::InvalidInput => Self::invalid(error.to_string()),
            ErrorKind::NotFound => Self::not_found(error.to_string()),
            ErrorKind::Conflict => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            ErrorKind::Unauthorized => Self::unauthorized("unauthorized", error.to_string()),
            ErrorKind::Unavailable => {
                tracing::error!(error = %chain(error), "service unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "service unavailable, try again")
            }
            ErrorKind::Internal => {
                tracing::error!(error = %chain(error), "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a human-readable `message`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// One of `invalid_input`, `invalid_json`, `invalid_body`, `unsupported_media_type`, `payload_too_large`,
    /// `not_found`, `method_not_allowed`, `conflict`, `unauthorized`, `invalid_signature`, `unavailable`, `internal`.
    #[schema(example = "not_found")]
    code: String,
    /// Names the field, id or value at fault; 5xx responses never carry details.
    #[schema(example = "task `daily_report` not found")]
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // The database or the writer is away for now: a client may try again shortly.
            let retry_after = [(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS)];
            return (self.status, retry_after, Json(body)).into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

/// What a 503 answer's `Retry-After` says, in seconds.
const RETRY_AFTER_SECONDS: &str = "2";

impl From<jobs_engine::Error> for ApiError {
    fn from(error: jobs_engine::Error) -> Self {
        Self::from_kind(error.kind(), &error)
    }
}

impl From<jobs_registry::Error> for ApiError {
    fn from(error: jobs_registry::Error) -> Self {
        Self::from_kind(error.kind(), &error)
    }
}

impl From<jobs_model::Error> for ApiError {
    fn from(error: jobs_model::Error) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<jobs_cron::Error> for ApiError {
    fn from(error: jobs_cron::Error) -> Self {
        Self::from_kind(error.kind(), &error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "invalid_json",
        };
        let message = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected `Content-Type: application/json`".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_owned(),
            _ => rejection.body_text(),
        };
        Self::new(status, code, message)
    }
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        Self::unauthorized("invalid_signature", error.to_string())
    }
}

/// A body that could not be read whole (a signed request's, buffered before its handler runs).
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
            }
            status => Self::new(status, "invalid_body", rejection.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            // A route whose handler expects a parameter its path does not have: a bug here, not bad input.
            tracing::error!(error = %rejection.body_text(), "path parameters do not fit the route");
            return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error");
        }
        Self::invalid(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid(rejection.body_text())
    }
}
