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
    /// How long an instance may take to answer, counted only while this process runs (see [`awake_timeout`]).
    timeout: Duration,
    /// `auth.executor_secret`: when set, every request carries `X-Jobs-Timestamp` and `X-Jobs-Signature`.
    secret: Option<Secret>,
}

impl HttpExecutorClient {
    /// `tls` sets the trusted roots and client certificate for `https://` instances; `None` trusts the platform's
    /// roots and presents none.
    pub fn new(
        timeout: Duration,
        secret: Option<Secret>,
        tls: Option<&rustls::ClientConfig>,
    ) -> Result<Self, reqwest::Error> {
        // The wall-clock limits are only a backstop; `awake_timeout` is the real one.
        let mut builder = reqwest::Client::builder()
            .timeout(timeout.saturating_mul(3).saturating_add(BACKSTOP))
            .connect_timeout(timeout.saturating_add(BACKSTOP))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls.clone());
        }
        let http = builder.build()?;
        Ok(Self { http, timeout, secret })
    }

    async fn post<T: serde::Serialize + Sync>(&self, url: String, body: &T) -> Result<(), DispatchError> {
        let body = serde_json::to_vec(body)?;
        let mut request = self.http.post(&url).header(header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let now = Timestamp::now().unix_seconds();
            let (timestamp, signature) = signature::sign_headers(secret.expose().as_bytes(), now, &body);
            request = request.header(TIMESTAMP_HEADER, timestamp).header(SIGNATURE_HEADER, signature);
        }
        let response = awake_timeout(self.timeout, request.body(body).send())
            .await
            .ok_or_else(|| {
                DispatchError::Unreachable(format!("{url}: timed out after {}ms", self.timeout.as_millis()))
            })?
            .map_err(|error| DispatchError::Unreachable(format!("{url}: {}", without_url(&error))))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {
                // Read to its end, the answer leaves its connection to the pool for the next request; dropped
                // unread, the connection would be closed and the next send would open another.
                let _ = awake_timeout(self.timeout, response.bytes()).await;
                Ok(())
            }
            429 | 503 => Err(DispatchError::Busy(status)),
            _ => {
                let body = awake_timeout(self.timeout, response.text()).await.and_then(Result::ok).unwrap_or_default();
                let end = body.char_indices().nth(200).map_or(body.len(), |(at, _)| at);
                Err(DispatchError::Refused { status, body: body[..end].to_owned() })
            }
        }
    }
}

/// Added to the wall-clock backstops of a request, beyond the awake timeout.
const BACKSTOP: Duration = Duration::from_secs(30);
/// How often [`awake_timeout`] looks at the clock.
const AWAKE_STEP: Duration = Duration::from_millis(100);
/// A step this much longer than asked means this process did not run meanwhile (stopped, starved, suspended).
const STALL: Duration = Duration::from_millis(500);

/// Runs `future` until it completes, or until it has waited `limit` while this process was running.
///
/// A wall-clock timeout would blame the executor for the scheduler's own stall: a scheduler paused for 12 s while
/// an executor answered at once would find its 10 s timeout passed when it resumes, call the instance unreachable,
/// and retry work that ran. Time this process spent not running is not counted, and an answer that arrived during
/// a stall is taken as soon as the process runs again.
pub(crate) async fn awake_timeout<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::pin!(future);
    let mut waited = Duration::ZERO;
    loop {
        let started = tokio::time::Instant::now();
        tokio::select! {
            biased;
            output = &mut future => return Some(output),
            () = tokio::time::sleep(AWAKE_STEP) => {}
        }
        // A stall is not counted: the next step polls the request again first, so that an answer that arrived
        // meanwhile is taken.
        let elapsed = started.elapsed();
        if elapsed <= AWAKE_STEP + STALL {
            waited += elapsed;
        }
        if waited >= limit {
            return None;
        }
    }
}

/// reqwest's message repeats the URL; keep only the cause.
fn without_url(error: &reqwest::Error) -> String {
    match error.is_timeout() {
        true => "timed out".to_owned(),
        false => jobs_model::tls::explain(error, "tls.ca_file"),
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::awake_timeout;

    #[tokio::test]
    async fn a_request_that_never_answers_times_out_and_one_that_answers_does_not() {
        let never = std::future::pending::<()>();
        assert_eq!(awake_timeout(Duration::from_millis(300), never).await, None);
        let answers = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            7
        };
        assert_eq!(awake_timeout(Duration::from_secs(10), answers).await, Some(7));
    }

    /// The process stops for 1.5 s (here: the thread blocks) while a 400 ms limit runs: the answer that comes after
    /// the stall is taken, since the stall is not the executor's time.
    #[tokio::test]
    async fn a_stall_of_this_process_does_not_count() {
        let stalled = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::thread::sleep(Duration::from_millis(1_500));
            tokio::time::sleep(Duration::from_millis(100)).await;
            42
        };
        assert_eq!(awake_timeout(Duration::from_millis(400), stalled).await, Some(42));
    }
}
