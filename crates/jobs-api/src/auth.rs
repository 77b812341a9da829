//! The `auth` section and the middleware that guards `/api/v1`.
//!
//! The rules, off unless configured:
//! - `api_tokens` non-empty: every `/api/v1` request needs `Authorization: Bearer <one of them>`.
//! - `executor_secret` set: the executor routes (register, heartbeat, deregister, callback, logs)
//!   also take a request signed with it (`jobs_model::signature`) in place of a token; with no
//!   `api_tokens`, those routes need the signature and every other route stays open.
//!
//! `/health` and `/metrics` are outside `/api/v1` and never ask for credentials.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobs_model::{Secret, Timestamp};

use crate::ApiError;

/// The `auth` section; the default (nothing configured) leaves the API open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens, any of which opens every `/api/v1` route; empty means no token is needed.
    pub api_tokens: Vec<Secret>,
    /// The secret shared with executors: scheduler→executor requests are signed with it, and the
    /// executor routes accept requests signed with it.
    pub executor_secret: Option<Secret>,
}

impl AuthConfig {
    /// Empty (or blank) tokens and secrets are mistakes, not a way to turn auth off.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(index) = self.api_tokens.iter().position(|token| token.expose().trim().is_empty()) {
            return Err(format!("auth.api_tokens[{index}] must not be empty"));
        }
        let unprintable = |token: &Secret| token.expose().chars().any(|c| !c.is_ascii() || c.is_ascii_control());
        if let Some(index) = self.api_tokens.iter().position(unprintable) {
            return Err(format!("auth.api_tokens[{index}] must be printable ASCII (it travels in an HTTP header)"));
        }
        if self.executor_secret.as_ref().is_some_and(|secret| secret.expose().trim().is_empty()) {
            return Err("auth.executor_secret must not be empty (leave it out to turn signatures off)".to_owned());
        }
        Ok(())
    }
}

/// What the middleware checks requests against.
#[derive(Debug)]
pub(crate) struct Guard {
    api_tokens: Vec<Secret>,
    executor_secret: Option<Secret>,
}

impl Guard {
    pub(crate) fn new(config: &AuthConfig) -> Arc<Self> {
        Arc::new(Self { api_tokens: config.api_tokens.clone(), executor_secret: config.executor_secret.clone() })
    }

    /// Lets `request` through, its body buffered and passed on when a signature was checked.
    async fn check(&self, request: Request) -> Result<Request, ApiError> {
        let signable = self.executor_secret.is_some() && is_executor_route(request.method(), request.uri().path());
        if self.api_tokens.is_empty() && !signable {
            return Ok(request);
        }
        let headers = request.headers();
        let bearer = bearer_token(headers);
        if let Some(Some(token)) = bearer
            && self.token_matches(token)
        {
            return Ok(request);
        }
        let signed = headers.contains_key(TIMESTAMP_HEADER) || headers.contains_key(SIGNATURE_HEADER);
        if let (true, true, Some(secret)) = (signable, signed, &self.executor_secret) {
            return verify_signature(secret, request).await;
        }
        let message = match bearer {
            // No tokens configured: only a signature opens this (executor) route.
            _ if self.api_tokens.is_empty() => {
                "this route needs a signed request (`X-Jobs-Timestamp` and `X-Jobs-Signature` headers)"
            }
            Some(None) => "the `Authorization` header is not `Bearer <token>`",
            Some(Some(_)) => "invalid API token",
            None if signable => "missing `Authorization: Bearer <token>` header or request signature",
            None => "missing `Authorization: Bearer <token>` header",
        };
        Err(ApiError::unauthorized("unauthorized", message))
    }

    /// Compares with every token, each in constant time, so that timing tells nothing about any of them.
    fn token_matches(&self, given: &str) -> bool {
        self.api_tokens.iter().fold(false, |found, token| {
            found | signature::constant_time_eq(token.expose().as_bytes(), given.as_bytes())
        })
    }
}

/// The middleware on the `/api/v1` router.
pub(crate) async fn authenticate(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Reads the body (bounded by `server.max_body_bytes`), verifies its signature and puts it back.
async fn verify_signature(secret: &Secret, request: Request) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    // The clone keeps the body limit that `DefaultBodyLimit` put in the extensions.
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await?;
    let header = |name: &str| parts.headers.get(name).map(|value| value.to_str().unwrap_or_default());
    signature::verify(
        secret.expose().as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        Timestamp::now().unix_seconds(),
    )?;
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// `None` without an `Authorization` header, `Some(None)` when it is not `Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value.to_str().ok().and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    });
    Some(token)
}

/// The routes executors call, which take a signature in place of a token.
///
/// Nested under `/api/v1`, the router sees paths without that prefix; both forms are understood.
pub(crate) fn is_executor_route(method: &Method, path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["executors", "register"]) => true,
        (&Method::POST, ["executors", _, "heartbeat"]) => true,
        (&Method::DELETE, ["executors", id]) => *id != "register",
        (&Method::POST, ["executions", _, "callback" | "logs"]) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
