//! Requests from the scheduler to executor instances (`/execute`, `/cancel`, `/health`), signed with HMAC-SHA256
//! when `auth.executor_secret` is set.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header;

use jobs_model::protocol::{CancelRequest, DispatchRequest};
use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobs_model::{ExecutionId, Secret, Timestamp};

/// Why an instance did not take a dispatch.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// 429 or 503: the instance is alive but full; try another.
    #[error("busy (HTTP {0})")]
    Busy(u16),
    /// Connection refused, reset or timed out: counts against the instance's health.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Any other answer.
    #[error("refused with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// The request body could not be serialized (never for the protocol's own types).
    #[error("cannot encode the request body")]
    Encode(#[from] serde_json::Error),
}

/// Talks to executor instances.
#[async_trait]
pub trait ExecutorClient: Send + Sync + std::fmt::Debug {
    /// `POST {base_url}/execute`; `Ok` when the instance answered 2xx.
    async fn execute(&self, base_url: &str, request: &DispatchRequest) -> Result<(), DispatchError>;

    /// `POST {base_url}/cancel`; best effort.
    async fn cancel(&self, base_url: &str, execution_id: ExecutionId) -> Result<(), DispatchError>;
}

/// The real client: HTTP with connection reuse.
#[derive(Debug, Clone)]
pub struct HttpExecutorClient {
    http: reqwest::Client,
    /// `auth.executor_secret`: when set, every request carries `X-Jobs-Timestamp` and `X-Jobs-Signature`.
    secret: Option<Secret>,
}

impl HttpExecutorClient {
    pub fn new(timeout: Duration, secret: Option<Secret>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { http, secret })
    }

    async fn post<T: serde::Serialize + Sync>(&self, url: String, body: &T) -> Result<(), DispatchError> {
        let body = serde_json::to_vec(body)?;
        let mut request = self.http.post(&url).header(header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let now = Timestamp::now().unix_seconds();
            let (timestamp, signature) = signature::sign_headers(secret.expose().as_bytes(), now, &body);
            request = request.header(TIMESTAMP_HEADER, timestamp).header(SIGNATURE_HEADER, signature);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| DispatchError::Unreachable(format!("{url}: {}", without_url(&error))))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {
                // Read to its end, the answer leaves its connection to the pool for the next request; dropped
                // unread, the connection would be closed and the next send would open another.
                let _ = response.bytes().await;
                Ok(())
            }
            429 | 503 => Err(DispatchError::Busy(status)),
            _ => {
                let mut body = response.text().await.unwrap_or_default();
                body.truncate(200);
                Err(DispatchError::Refused { status, body })
            }
        }
    }
}

/// reqwest's message repeats the URL; keep only the cause.
fn without_url(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() { "timed out".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    message
}

#[async_trait]
impl ExecutorClient for HttpExecutorClient {
    async fn execute(&self, base_url: &str, request: &DispatchRequest) -> Result<(), DispatchError> {
        self.post(format!("{base_url}/execute"), request).await
    }

    async fn cancel(&self, base_url: &str, execution_id: ExecutionId) -> Result<(), DispatchError> {
        self.post(format!("{base_url}/cancel"), &CancelRequest { execution_id }).await
    }
}
