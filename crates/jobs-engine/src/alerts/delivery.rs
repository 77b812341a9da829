//! Delivering queued alerts: a JSON POST to each webhook, signed like the scheduler's requests to executors when
//! `auth.executor_secret` is set, retried with exponential backoff (1s, 2s, 4s…) on a transport error, a 5xx,
//! 408 or 429.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use jobs_model::Timestamp;
use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::alerts::{Alerter, Queued};
use crate::engine::stopped;

/// Alerts being delivered at once; the queue holds the rest.
const MAX_IN_FLIGHT: usize = 16;
/// The first wait before a retry; each further one doubles.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Why one delivery failed, and whether trying again may help.
struct Failure {
    reason: String,
    retry: bool,
}

impl Alerter {
    /// Delivers queued alerts until `shutdown` turns true; alerts still queued then are not sent.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let receiver = self.receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let (Some(mut receiver), Some(config)) = (receiver, self.config.clone()) else { return };
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout.get())
            .connect_timeout(config.timeout.get())
            .pool_max_idle_per_host(2);
        if let Some(tls) = &self.tls {
            builder = builder.tls_backend_preconfigured(tls.as_ref().clone());
        }
        let http = match builder.build() {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "cannot build the HTTP client for alerts; alerts are off");
                return;
            }
        };
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = stopped(&mut shutdown) => return,
            };
            let queued = tokio::select! {
                queued = receiver.recv() => match queued {
                    Some(queued) => queued,
                    None => return,
                },
                () = stopped(&mut shutdown) => return,
            };
            let alerter = self.clone();
            let (http, retries) = (http.clone(), config.retries);
            tokio::spawn(async move {
                alerter.deliver(&http, retries, queued).await;
                drop(permit);
            });
        }
    }

    /// Sends one alert to each of its webhooks, concurrently.
    async fn deliver(self: Arc<Self>, http: &reqwest::Client, retries: u32, mut queued: Queued) {
        if queued.alert.instance_id.is_none()
            && let Some(id) = queued.alert.executor_id
        {
            match self.store.get_executor(id).await {
                Ok(executor) => queued.alert.instance_id = executor.map(|executor| executor.instance_id),
                Err(error) => {
                    self.metrics.database_error();
                    tracing::warn!(executor_id = %id, %error, "alert goes without the instance id");
                }
            }
        }
        // Serializing plain fields cannot fail; an empty body would be refused by the receiver, and logged.
        let body: Arc<[u8]> = serde_json::to_vec(&queued.alert).unwrap_or_default().into();
        let mut sends = JoinSet::new();
        for url in queued.urls.iter().cloned() {
            let (alerter, http, body) = (self.clone(), http.clone(), body.clone());
            sends.spawn(async move {
                let sent = alerter.send_with_retries(&http, &url, &body, retries).await;
                (url, sent)
            });
        }
        while let Some(joined) = sends.join_next().await {
            let Ok((url, sent)) = joined else { continue };
            match sent {
                Ok(()) => self.metrics.alert("sent"),
                Err(reason) => {
                    self.metrics.alert("failed");
                    tracing::warn!(url, kind = ?queued.alert.kind, %reason, "alert not delivered");
                }
            }
        }
    }

    async fn send_with_retries(
        &self,
        http: &reqwest::Client,
        url: &str,
        body: &[u8],
        retries: u32,
    ) -> Result<(), String> {
        let mut wait = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            let failure = match self.send(http, url, body).await {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            tries += 1;
            if !failure.retry || tries > retries {
                return Err(failure.reason);
            }
            tracing::debug!(url, tries, reason = %failure.reason, "alert delivery failed; retrying");
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }

    async fn send(&self, http: &reqwest::Client, url: &str, body: &[u8]) -> Result<(), Failure> {
        let mut request = http.post(url).header(header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let now = Timestamp::now().unix_seconds();
            let (timestamp, signature) = signature::sign_headers(secret.expose().as_bytes(), now, body);
            request = request.header(TIMESTAMP_HEADER, timestamp).header(SIGNATURE_HEADER, signature);
        }
        let response =
            request.body(body.to_vec()).send().await.map_err(|error| Failure { reason: cause(&error), retry: true })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
        Err(Failure { reason: format!("the webhook answered HTTP {}", status.as_u16()), retry })
    }
}

/// What went wrong with a request, without the URL that reqwest's own message repeats.
fn cause(error: &reqwest::Error) -> String {
    match error.is_timeout() {
        true => "timed out".to_owned(),
        false => jobs_model::tls::explain(error, "tls.ca_file"),
    }
}
