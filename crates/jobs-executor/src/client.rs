//! Every request the executor sends to a scheduler goes through [`SchedulerClient`].
//!
//! Keep it that way: credentials (the HMAC signature keyed with the shared `auth.executor_secret`, and an API
//! token) are added in [`SchedulerClient::send`] and nowhere else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, Response, header};
use serde::Serialize;

use jobs_model::protocol::{AppendLogsRequest, CallbackRequest, HeartbeatRequest, RegisterRequest, RegisterResponse};
use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobs_model::{ExecutionId, ExecutorId, Timestamp};

use crate::credentials::Credentials;
use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const LOGS_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an error answer's body is kept in [`Error::Rejected`].
const MAX_ERROR_BODY_CHARS: usize = 300;
/// The longest `Retry-After` honoured: a scheduler asking for more is waited on this long, then tried again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Calls the scheduler instances; any of them accepts every call.
#[derive(Debug)]
pub(crate) struct SchedulerClient {
    http: reqwest::Client,
    /// Base urls without a trailing slash; never empty.
    urls: Vec<String>,
    /// The instance that answered last, tried first next time.
    preferred: AtomicUsize,
    credentials: Credentials,
}

impl SchedulerClient {
    /// `tls` sets the trusted roots and client certificate for `https://` schedulers.
    pub(crate) fn new(urls: Vec<String>, credentials: Credentials, tls: rustls::ClientConfig) -> Result<Self> {
        if urls.is_empty() {
            return Err(Error::NoScheduler);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self { http, urls, preferred: AtomicUsize::new(0), credentials })
    }

    /// The secret shared with the scheduler, if any: the server checks `/execute` and `/cancel` with it.
    pub(crate) fn secret(&self) -> Option<&[u8]> {
        self.credentials.secret.as_deref()
    }

    /// `POST /api/v1/executors/register`.
    pub(crate) async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse> {
        let body = encode("/api/v1/executors/register", request)?;
        let (url, response) = self.call_any(Method::POST, "/api/v1/executors/register", Some(body)).await?;
        response.json().await.map_err(|source| Error::InvalidAnswer { url, source })
    }

    /// `POST /api/v1/executors/{id}/heartbeat`; a 404 means the scheduler does not know `executor_id`.
    pub(crate) async fn heartbeat(&self, executor_id: ExecutorId, request: &HeartbeatRequest) -> Result<()> {
        let path = format!("/api/v1/executors/{executor_id}/heartbeat");
        let body = encode(&path, request)?;
        self.call_any(Method::POST, &path, Some(body)).await.map(drop)
    }

    /// `DELETE /api/v1/executors/{id}`.
    pub(crate) async fn deregister(&self, executor_id: ExecutorId) -> Result<()> {
        let path = format!("/api/v1/executors/{executor_id}");
        self.call_any(Method::DELETE, &path, None).await.map(drop)
    }

    /// Where a callback can go: the dispatch's `callback_url` first, then every configured scheduler.
    pub(crate) fn callback_urls(&self, callback_url: &str, execution_id: ExecutionId) -> Vec<String> {
        let mut urls = Vec::with_capacity(self.urls.len() + 1);
        if !callback_url.is_empty() {
            urls.push(callback_url.to_owned());
        }
        for base in &self.urls {
            let url = format!("{base}/api/v1/executions/{execution_id}/callback");
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

    /// One attempt to deliver a callback to `url`.
    pub(crate) async fn callback(&self, url: &str, request: &CallbackRequest) -> Result<()> {
        let body = encode(url, request)?;
        self.send(Method::POST, url, Some(body), REQUEST_TIMEOUT).await.map(drop)
    }

    /// Appends log lines next to `callback_url` (its `/logs` sibling), or at another scheduler if that one is gone.
    pub(crate) async fn append_logs(
        &self,
        callback_url: &str,
        execution_id: ExecutionId,
        request: &AppendLogsRequest,
    ) -> Result<()> {
        let mut urls = Vec::with_capacity(self.urls.len() + 1);
        if let Some(base) = callback_url.strip_suffix("/callback") {
            urls.push(format!("{base}/logs"));
        }
        for base in &self.urls {
            let url = format!("{base}/api/v1/executions/{execution_id}/logs");
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let body = encode(callback_url, request)?;
        let mut last_error = Error::NoScheduler;
        for url in &urls {
            match self.send(Method::POST, url, Some(body.clone()), LOGS_TIMEOUT).await {
                Ok(_) => return Ok(()),
                Err(error) if error.is_transient() => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Calls `path` on each scheduler in turn, starting with the one that answered last, until one
    /// answers; a non-transient error (a 4xx) is returned at once.
    async fn call_any(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(String, Response)> {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_error = Error::NoScheduler;
        for offset in 0..self.urls.len() {
            let index = (first + offset) % self.urls.len();
            let url = format!("{}{path}", self.urls[index]);
            match self.send(method.clone(), &url, body.clone(), REQUEST_TIMEOUT).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((url, response));
                }
                Err(error) if error.is_transient() => {
                    tracing::debug!(url = %url, error = %error, "scheduler call failed, trying the next instance");
                    last_error = error;
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Sends one request with the credentials; a non-2xx answer is an [`Error::Rejected`].
    ///
    /// With a secret, the exact body bytes (empty without a body) are signed.
    async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>, timeout: Duration) -> Result<Response> {
        let mut request = self.http.request(method, url).timeout(timeout);
        if let Some(token) = &self.credentials.api_token {
            request = request.bearer_auth(token);
        }
        if let Some(secret) = &self.credentials.secret {
            let now = Timestamp::now().unix_seconds();
            let (timestamp, signature) = signature::sign_headers(secret, now, body.as_deref().unwrap_or_default());
            request = request.header(TIMESTAMP_HEADER, timestamp).header(SIGNATURE_HEADER, signature);
        }
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|source| Error::Unreachable { url: url.to_owned(), source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
        let text = response.text().await.unwrap_or_default();
        let body = text.chars().take(MAX_ERROR_BODY_CHARS).collect();
        Err(Error::Rejected { url: url.to_owned(), status: status.as_u16(), body, retry_after })
    }
}

fn encode(url: &str, body: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|source| Error::Serialize { url: url.to_owned(), source })
}
