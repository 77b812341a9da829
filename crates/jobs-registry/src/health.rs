//! Active health checks, run by the leader: every `health_check.interval` each instance's
//! `health_check_url` is probed, concurrently and with a bound, and `failure_threshold` consecutive
//! failures mark it unhealthy, `recovery_threshold` consecutive successes healthy again.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use jobs_model::{Executor, ExecutorId, Health};
use jobs_storage::ExecutorFilter;

use crate::{HealthCheckConfig, Registry, Result};

/// Probes in flight at once: a thousand instances that all time out still fit in one interval.
const MAX_CONCURRENT_PROBES: usize = 256;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Healthy,
    Unhealthy(String),
}

/// An instance whose health a check just changed.
#[derive(Debug, Clone)]
pub struct HealthChange {
    /// The instance as it is now (`health` is the new value).
    pub executor: Executor,
    /// What the failing check saw, when it turned unhealthy.
    pub reason: Option<String>,
}

/// The leader's health checker.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    registry: Arc<Registry>,
    config: HealthCheckConfig,
    http: reqwest::Client,
}

impl HealthChecker {
    /// `tls` sets the trusted roots and client certificate for `https://` instances; `None` trusts the platform's
    /// roots and presents none.
    pub fn new(
        registry: Arc<Registry>,
        config: HealthCheckConfig,
        tls: Option<&rustls::ClientConfig>,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout.get())
            .connect_timeout(config.timeout.get())
            .pool_max_idle_per_host(2);
        if let Some(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls.clone());
        }
        let http = builder.build()?;
        Ok(Self { registry, config, http })
    }

    /// Probes every instance each interval, forever (the caller aborts it when leadership ends).
    pub async fn run(self) {
        let mut interval = tokio::time::interval(self.config.interval.get());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = self.check_all().await {
                tracing::warn!(%error, "health check round failed");
            }
        }
    }

    /// One round: probe every instance and record what changed.
    pub async fn check_all(&self) -> Result<()> {
        let executors = self.registry.store().list_executors(&ExecutorFilter::default()).await?;
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES));
        let mut probes = JoinSet::new();
        for executor in executors {
            let permits = permits.clone();
            let http = self.http.clone();
            probes.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let probe = probe(&http, &executor.health_check_url).await;
                (executor, probe)
            });
        }
        let mut changed = false;
        while let Some(joined) = probes.join_next().await {
            let Ok((executor, probe)) = joined else { continue };
            changed |= self.record(&executor, &probe).await?;
        }
        if changed {
            self.registry.invalidate();
        }
        Ok(())
    }

    /// Counts a failure seen outside a probe (a dispatch that could not connect) against an instance.
    pub async fn strike(&self, executor: &Executor, probe: Probe) {
        let Ok(Some(current)) = self.registry.store().get_executor(executor.id).await else { return };
        match self.record(&current, &probe).await {
            Ok(true) => self.registry.invalidate(),
            Ok(false) => {}
            Err(error) => tracing::warn!(executor_id = %executor.id, %error, "cannot record a strike"),
        }
    }

    /// Applies one probe to an instance's counters; returns whether its health changed.
    async fn record(&self, executor: &Executor, probe: &Probe) -> Result<bool> {
        let (health, failures, successes) = next_state(executor, probe, &self.config);
        if (health, failures, successes)
            == (executor.health, executor.consecutive_failures, executor.consecutive_successes)
        {
            return Ok(false);
        }
        self.registry.control().record_health(executor.id, health, failures, successes).await?;
        if health != executor.health {
            log_change(executor.id, &executor.instance_id, health, probe, failures, successes);
            let executor = Executor {
                health,
                consecutive_failures: failures,
                consecutive_successes: successes,
                ..executor.clone()
            };
            let reason = match probe {
                Probe::Unhealthy(reason) => Some(reason.clone()),
                Probe::Healthy => None,
            };
            self.registry.health_changed(HealthChange { executor, reason });
        }
        Ok(health != executor.health)
    }
}

/// The counters after one probe. Successes are only counted while unhealthy (towards recovery),
/// so a healthy instance's row is not rewritten every round.
pub(crate) fn next_state(executor: &Executor, probe: &Probe, config: &HealthCheckConfig) -> (Health, u32, u32) {
    match (executor.health, probe) {
        (Health::Healthy, Probe::Healthy) => (Health::Healthy, 0, 0),
        (Health::Healthy, Probe::Unhealthy(_)) => {
            let failures = executor.consecutive_failures.saturating_add(1);
            if failures >= config.failure_threshold {
                (Health::Unhealthy, failures, 0)
            } else {
                (Health::Healthy, failures, 0)
            }
        }
        (Health::Unhealthy, Probe::Healthy) => {
            let successes = executor.consecutive_successes.saturating_add(1);
            if successes >= config.recovery_threshold {
                (Health::Healthy, 0, 0)
            } else {
                (Health::Unhealthy, 0, successes)
            }
        }
        (Health::Unhealthy, Probe::Unhealthy(_)) => {
            (Health::Unhealthy, executor.consecutive_failures.saturating_add(1), 0)
        }
    }
}

fn log_change(id: ExecutorId, instance: &str, health: Health, probe: &Probe, failures: u32, successes: u32) {
    match (health, probe) {
        (Health::Unhealthy, Probe::Unhealthy(reason)) => {
            tracing::warn!(executor_id = %id, instance, failures, %reason, "executor instance is unhealthy; it gets no new work");
        }
        _ => tracing::info!(executor_id = %id, instance, successes, "executor instance is healthy again"),
    }
}

/// `GET {health_check_url}`: 2xx is healthy.
async fn probe(http: &reqwest::Client, url: &str) -> Probe {
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => Probe::Healthy,
        Ok(response) => Probe::Unhealthy(format!("health check answered HTTP {}", response.status().as_u16())),
        Err(error) if error.is_timeout() => Probe::Unhealthy("health check timed out".to_owned()),
        Err(error) => {
            Probe::Unhealthy(format!("health check failed: {}", jobs_model::tls::explain(&error, "tls.ca_file")))
        }
    }
}
