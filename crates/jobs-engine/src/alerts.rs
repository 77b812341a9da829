//! Alerts: a JSON POST to the configured webhooks when an execution finally fails or times out, and
//! when an executor instance turns unhealthy or goes offline.
//!
//! Raising an alert never waits on the network (nor the database): the silence window is decided and the alert
//! queued at once, and a background task delivers it, retrying with backoff (`delivery`).
//! At most one alert per task, and per executor instance, leaves per `alerts.silence`; the ones held back are
//! counted, and the count rides on the next alert sent for that task or instance (`suppressed`).
//! An execution's alert is raised where its final status is written, which the database makes happen once.

mod config;
mod delivery;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use jobs_model::{Execution, ExecutionId, ExecutionStatus, Executor, ExecutorId, Health, Secret, TaskId, Timestamp};
use jobs_registry::{ExecutorView, HealthChange};
use jobs_storage::Store;

pub use crate::alerts::config::AlertsConfig;
use crate::metrics::Metrics;

/// Alerts waiting for delivery; more are dropped (and counted).
const QUEUE: usize = 1024;
/// Silence windows remembered before the closed ones are forgotten.
const MAX_WINDOWS: usize = 4096;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AlertKind {
    ExecutionFailed,
    ExecutionTimeout,
    ExecutorUnhealthy,
    ExecutorOffline,
}

/// The JSON body POSTed to a webhook; fields that do not apply are `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Alert {
    pub(crate) kind: AlertKind,
    pub(crate) task_id: Option<TaskId>,
    pub(crate) task_name: Option<String>,
    pub(crate) execution_id: Option<ExecutionId>,
    pub(crate) executor_id: Option<ExecutorId>,
    /// The executor instance's own id (`instance_id` at registration).
    pub(crate) instance_id: Option<String>,
    /// The execution's final status (`failed`, `timeout`), or the instance's new state (`unhealthy`, `offline`).
    pub(crate) status: AlertStatus,
    pub(crate) error: Option<String>,
    /// When the alert was raised.
    pub(crate) at: Timestamp,
    /// Alerts about the same task or instance held back by the silence window since the last one sent.
    pub(crate) suppressed: u64,
    /// The scheduler instance that raised it.
    pub(crate) scheduler: String,
}

/// An alert's `status`: serialized as the bare word of the status or state it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum AlertStatus {
    /// An execution's final status.
    Execution(ExecutionStatus),
    /// An executor instance's new state.
    Executor(ExecutorDown),
}

/// How an executor instance went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExecutorDown {
    Unhealthy,
    Offline,
}

/// Whose silence window an alert falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    Task(TaskId),
    Executor(ExecutorId),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    sent_at: Instant,
    suppressed: u64,
}

/// The silence windows: at most one alert per subject per `window`.
#[derive(Debug)]
pub(crate) struct Silences {
    window: Duration,
    windows: HashMap<Subject, Window>,
}

impl Silences {
    pub(crate) fn new(window: Duration) -> Self {
        Self { window, windows: HashMap::new() }
    }

    /// `Some(held back since the last one)` when an alert about `subject` may go at `now`, else `None` (counted).
    pub(crate) fn admit(&mut self, subject: Subject, now: Instant) -> Option<u64> {
        if let Some(window) = self.windows.get_mut(&subject)
            && now.saturating_duration_since(window.sent_at) < self.window
        {
            window.suppressed += 1;
            return None;
        }
        if self.windows.len() >= MAX_WINDOWS {
            let span = self.window;
            self.windows
                .retain(|_, window| window.suppressed > 0 || now.saturating_duration_since(window.sent_at) < span);
        }
        let previous = self.windows.insert(subject, Window { sent_at: now, suppressed: 0 });
        Some(previous.map_or(0, |window| window.suppressed))
    }
}

/// An alert on its way, with where it goes.
#[derive(Debug)]
struct Queued {
    alert: Alert,
    urls: Arc<[String]>,
}

/// Raises alerts (cheap, never blocking) and delivers them in the background ([`Alerter::run`]).
#[derive(Debug)]
pub(crate) struct Alerter {
    /// Normalized; `None` when the section was invalid (alerts are then off, which was logged).
    config: Option<AlertsConfig>,
    webhooks: Arc<[String]>,
    task_webhooks: HashMap<String, Arc<[String]>>,
    /// This scheduler instance's id.
    scheduler: String,
    secret: Option<Secret>,
    store: Store,
    metrics: Arc<Metrics>,
    /// For HTTPS webhooks; `None` trusts the platform's roots.
    tls: Option<Arc<rustls::ClientConfig>>,
    sender: mpsc::Sender<Queued>,
    /// Taken by the delivery loop when it starts.
    receiver: Mutex<Option<mpsc::Receiver<Queued>>>,
    silences: Mutex<Silences>,
    /// The instances seen offline by the last sweep; `None` until the first one.
    offline: Mutex<Option<HashSet<ExecutorId>>>,
    /// Whether a full queue was logged since the queue last took an alert.
    full_logged: AtomicBool,
}

impl Alerter {
    pub(crate) fn new(
        config: &AlertsConfig,
        scheduler: String,
        secret: Option<Secret>,
        store: Store,
        metrics: Arc<Metrics>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let config = config
            .normalized()
            .inspect_err(|error| tracing::error!(%error, "invalid alerts config; alerts are off"))
            .ok();
        let webhooks: Arc<[String]> = config.as_ref().map_or_else(Vec::new, |config| config.webhooks.clone()).into();
        let task_webhooks = config
            .iter()
            .flat_map(|config| config.task_webhooks.iter())
            .map(|(task, urls)| (task.clone(), Arc::from(urls.as_slice())))
            .collect();
        let window = config.as_ref().map_or(Duration::ZERO, |config| config.silence.get());
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            config,
            webhooks,
            task_webhooks,
            scheduler,
            secret,
            store,
            metrics,
            tls,
            sender,
            receiver: Mutex::new(Some(receiver)),
            silences: Mutex::new(Silences::new(window)),
            offline: Mutex::default(),
            full_logged: AtomicBool::new(false),
        }
    }

    /// An execution ended as `status` (failed or timeout) with its retries spent.
    pub(crate) fn execution_failed(&self, execution: &Execution, status: ExecutionStatus, error: &str) {
        let urls = self.task_webhooks.get(&execution.task_name).unwrap_or(&self.webhooks);
        let kind = match status {
            ExecutionStatus::Timeout => AlertKind::ExecutionTimeout,
            _ => AlertKind::ExecutionFailed,
        };
        let alert = Alert {
            kind,
            task_id: Some(execution.task_id),
            task_name: Some(execution.task_name.clone()),
            execution_id: Some(execution.id),
            executor_id: execution.executor_id,
            // Looked up at delivery, off the caller's path.
            instance_id: None,
            status: AlertStatus::Execution(status),
            error: Some(error.to_owned()),
            at: Timestamp::now(),
            suppressed: 0,
            scheduler: self.scheduler.clone(),
        };
        self.raise(Subject::Task(execution.task_id), alert, urls.clone());
    }

    /// An executor instance turned unhealthy (`reason`: what the failing check saw) or went offline.
    pub(crate) fn executor_down(&self, executor: &Executor, kind: AlertKind, reason: Option<String>) {
        let status = if kind == AlertKind::ExecutorOffline { ExecutorDown::Offline } else { ExecutorDown::Unhealthy };
        let alert = Alert {
            kind,
            task_id: None,
            task_name: None,
            execution_id: None,
            executor_id: Some(executor.id),
            instance_id: Some(executor.instance_id.clone()),
            status: AlertStatus::Executor(status),
            error: reason,
            at: Timestamp::now(),
            suppressed: 0,
            scheduler: self.scheduler.clone(),
        };
        self.raise(Subject::Executor(executor.id), alert, self.webhooks.clone());
    }

    /// The leader's sweep found these instances offline: alert on each that was not offline at the last sweep.
    ///
    /// The first sweep after this instance starts only takes note, so that a restart does not repeat old news.
    pub(crate) fn executors_offline(&self, offline: &[ExecutorView]) {
        let now: HashSet<ExecutorId> = offline.iter().map(|view| view.executor.id).collect();
        let before = self.offline.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(now);
        let Some(before) = before else { return };
        for view in offline.iter().filter(|view| !before.contains(&view.executor.id)) {
            let executor = &view.executor;
            let seen = executor.last_heartbeat_at.unwrap_or(executor.registered_at);
            let reason = format!("no heartbeat since {seen}");
            self.executor_down(executor, AlertKind::ExecutorOffline, Some(reason));
        }
    }

    /// Alerts on the health changes the registry publishes (the leader's checks), until the channel closes.
    pub(crate) async fn watch_health(self: Arc<Self>, mut changes: broadcast::Receiver<HealthChange>) {
        loop {
            match changes.recv().await {
                Ok(change) if change.executor.health == Health::Unhealthy => {
                    self.executor_down(&change.executor, AlertKind::ExecutorUnhealthy, change.reason);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "alerts missed executor health changes");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Applies the silence window and queues the alert; never waits.
    fn raise(&self, subject: Subject, mut alert: Alert, urls: Arc<[String]>) {
        if urls.is_empty() {
            return;
        }
        let admitted =
            self.silences.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).admit(subject, Instant::now());
        let Some(suppressed) = admitted else {
            self.metrics.alert("suppressed");
            return;
        };
        alert.suppressed = suppressed;
        match self.sender.try_send(Queued { alert, urls }) {
            Ok(()) => self.full_logged.store(false, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(queued)) => {
                self.metrics.alert("dropped");
                if !self.full_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(kind = ?queued.alert.kind, "alert queue full; dropping alerts until it drains");
                }
            }
            // The delivery loop has stopped: the instance is shutting down.
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.alert("dropped"),
        }
    }
}
