//! Request ids: every request gets one, answers with it in `X-Request-Id`, and runs inside a
//! `request{request_id, method, path}` span, so that every log line of the request carries it.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id kept; a longer or odd one is replaced.
const MAX_LEN: usize = 128;

/// The middleware: the caller's id when it is sane (so that a trace crosses services), else a new UUID.
pub(crate) async fn trace(request: Request, next: Next) -> Response {
    let id = incoming(request.headers()).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    // Sane ids and UUIDs are visible ASCII, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// An incoming id that is safe to log and echo: 1 to 128 characters of letters, digits and `-_.:/+=@`.
pub(crate) fn incoming(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(X_REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= MAX_LEN
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&byte));
    sane.then(|| value.to_owned())
}

#[cfg(test)]
mod tests;
