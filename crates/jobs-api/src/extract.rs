//! Extractors that answer bad input with the API's error body instead of axum's plain text.
//!
//! They also refuse NUL characters anywhere in a path, query or JSON body: no database column takes them
//! (PostgreSQL refuses them outright), so they are bad input, answered with 400 before any storage sees them.

#[cfg(test)]
mod tests;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body; errors come back as `{"error": ...}` with 400, 413, 415 or 422.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(unsupported_media_type());
        }
        let body = Bytes::from_request(request, state).await?;
        let axum::Json(value) = axum::Json::from_bytes(&body)?;
        refuse_nul_in_json(&body)?;
        Ok(Self(value))
    }
}

/// Path parameters; errors (a segment that is not UTF-8, or has a NUL) come back as 400 with the error body.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError::invalid("invalid path: must not contain NUL characters"));
        }
        let axum::extract::Path(value) = axum::extract::Path::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters; errors come back as 400 with the error body.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|query| query.contains("%00")) {
            return Err(ApiError::invalid("invalid query: must not contain NUL characters"));
        }
        let axum::extract::Query(value) = axum::extract::Query::try_from_uri(&parts.uri)?;
        Ok(Self(value))
    }
}

/// A JSON body that may be absent: an empty body or `null` reads as `T::default()`.
pub(crate) fn optional_json<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json(headers) {
        return Err(unsupported_media_type());
    }
    let value = serde_json::from_slice::<Option<T>>(body).map(Option::unwrap_or_default).map_err(|error| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("invalid request body: {error}"))
    })?;
    refuse_nul_in_json(body)?;
    Ok(value)
}

/// `application/json` or `application/*+json`, parameters aside (as axum's `Json` decides).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected `Content-Type: application/json`",
    )
}

fn refuse_nul_in_json(body: &[u8]) -> Result<(), ApiError> {
    if has_nul_escape(body) {
        return Err(ApiError::invalid("invalid request body: text must not contain NUL characters (`\\u0000`)"));
    }
    Ok(())
}

/// Whether valid JSON text has a NUL in a string: JSON can only write it as the escape `\u0000`, whose backslash
/// is not itself escaped (an odd run of backslashes before the `u`).
fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(5).enumerate().any(|(at, window)| {
        window == b"u0000" && json[..at].iter().rev().take_while(|&&byte| byte == b'\\').count() % 2 == 1
    })
}
