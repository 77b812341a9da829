//! Prometheus metrics: the counters and the lateness histogram the engine moves as it works, and the
//! gauges read at scrape time (executors by state and health, running executions, the leader flag and epoch).
//!
//! Every family is prefixed `jobs_`; counters are this instance's own (sum them over instances), while the
//! scrape-time gauges describe the whole cluster as this instance's database shows it.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use jobs_election::Role;
use jobs_model::{Execution, ExecutionStatus, ExecutorState, Health, Timestamp, TriggerType};

use crate::{DispatchError, Engine};

/// The `Content-Type` of [`Engine::metrics_text`]: the Prometheus text format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One label, `name="value"`.
type Label = [(&'static str, &'static str); 1];
/// Two labels.
type Labels = [(&'static str, &'static str); 2];

/// Upper bounds of the dispatch lateness buckets, in seconds: 1 ms to 60 s.
const LATENESS_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0];

/// Why a dispatch request did not place an execution, or that it did (`accepted`).
const DISPATCH_OUTCOMES: [&str; 5] = ["accepted", "busy", "unreachable", "refused", "no_executor"];
/// What became of alerts: `sent`, `failed` (after every retry), `suppressed` (silence window), `dropped` (queue full).
const ALERT_RESULTS: [&str; 4] = ["sent", "failed", "suppressed", "dropped"];
const FINAL_STATUSES: [ExecutionStatus; 6] = [
    ExecutionStatus::Success,
    ExecutionStatus::Failed,
    ExecutionStatus::Timeout,
    ExecutionStatus::Cancelled,
    ExecutionStatus::Skipped,
    ExecutionStatus::Missed,
];
const STATES: [ExecutorState; 3] = [ExecutorState::Active, ExecutorState::Maintenance, ExecutorState::Offline];
const HEALTHS: [Health; 2] = [Health::Healthy, Health::Unhealthy];

/// The registry of the metrics this instance counts, with a typed handle for each.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    fires: Family<Label, Counter>,
    dispatches: Family<Label, Counter>,
    lateness: Histogram,
    finished: Family<Label, Counter>,
    database_errors: Counter,
    alerts: Family<Label, Counter>,
    shed: Family<Label, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("jobs");
        let fires = Family::<Label, Counter>::default();
        registry.register(
            "fires_planned",
            "Executions written to run: cron fires, manual triggers and chained triggers",
            fires.clone(),
        );
        let dispatches = Family::<Label, Counter>::default();
        registry.register(
            "dispatches",
            "Dispatch requests by outcome (accepted, busy, unreachable, refused), and executions no instance could \
             be offered to (no_executor)",
            dispatches.clone(),
        );
        let lateness = Histogram::new(LATENESS_BUCKETS);
        registry.register(
            "dispatch_lateness_seconds",
            "How long after its scheduled time an execution's first delivery was sent",
            lateness.clone(),
        );
        let finished = Family::<Label, Counter>::default();
        registry.register("executions_finished", "Executions that reached a final status", finished.clone());
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Database operations that failed in the planner, the dispatcher, the sweeps and metric scrapes",
            database_errors.clone(),
        );
        let alerts = Family::<Label, Counter>::default();
        registry.register(
            "alerts",
            "Alerts by result: sent, failed after every retry, suppressed by a silence window, dropped (queue full)",
            alerts.clone(),
        );
        let shed = Family::<Label, Counter>::default();
        registry.register(
            "fires_shed",
            "Cron fires not sent and recorded missed, by reason (overloaded: every instance at its max_concurrency \
             past scheduler.max_lateness)",
            shed.clone(),
        );
        let _ = shed.get_or_create(&[("reason", "overloaded")]);
        // Every known series exists from the start, at zero, so that rates and absent() behave.
        for trigger in [TriggerType::Cron, TriggerType::Manual, TriggerType::Chain] {
            let _ = fires.get_or_create(&[("trigger", trigger.as_str())]);
        }
        for outcome in DISPATCH_OUTCOMES {
            let _ = dispatches.get_or_create(&[("outcome", outcome)]);
        }
        for status in FINAL_STATUSES {
            let _ = finished.get_or_create(&[("status", status.as_str())]);
        }
        for result in ALERT_RESULTS {
            let _ = alerts.get_or_create(&[("result", result)]);
        }
        Self { registry, fires, dispatches, lateness, finished, database_errors, alerts, shed }
    }
}

impl Metrics {
    /// `count` executions were written to run, by `trigger`.
    pub(crate) fn fired(&self, trigger: TriggerType, count: usize) {
        self.fires.get_or_create(&[("trigger", trigger.as_str())]).inc_by(count as u64);
    }

    /// An instance took `execution`; a first delivery's lateness is observed from `sent_at`.
    pub(crate) fn dispatched(&self, execution: &Execution, sent_at: Timestamp) {
        self.dispatches.get_or_create(&[("outcome", "accepted")]).inc();
        // A retry is late by its backoff, on purpose: only first deliveries say how punctual dispatch is.
        if execution.retries == 0 {
            let lateness = sent_at.millis_since(execution.scheduled_at).max(0);
            self.lateness.observe(lateness as f64 / 1000.0);
        }
    }

    /// A cron fire was not sent, for `reason`.
    pub(crate) fn shed(&self, reason: &'static str) {
        self.shed.get_or_create(&[("reason", reason)]).inc();
    }

    /// An instance did not take a dispatch request.
    pub(crate) fn refused(&self, error: &DispatchError) {
        let outcome = match error {
            DispatchError::Busy(_) => "busy",
            DispatchError::Unreachable(_) => "unreachable",
            DispatchError::Refused { .. } | DispatchError::Encode(_) => "refused",
        };
        self.dispatches.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// No instance took `execution`; when not even one was offered it (`attempt` is still the execution's),
    /// that counts as `no_executor`.
    pub(crate) fn undelivered(&self, execution: &Execution, attempt: u32) {
        if attempt == execution.attempt {
            self.dispatches.get_or_create(&[("outcome", "no_executor")]).inc();
        }
    }

    /// An execution reached the final `status`.
    pub(crate) fn finished(&self, status: ExecutionStatus) {
        self.finished.get_or_create(&[("status", status.as_str())]).inc();
    }

    /// `count` executions or slots ended with `status` at once (misfired slots recorded together).
    pub(crate) fn finished_many(&self, status: ExecutionStatus, count: u64) {
        self.finished.get_or_create(&[("status", status.as_str())]).inc_by(count);
    }

    /// A database operation failed.
    pub(crate) fn database_error(&self) {
        self.database_errors.inc();
    }

    /// Counts an alert by what became of it (see [`ALERT_RESULTS`]).
    pub(crate) fn alert(&self, result: &'static str) {
        self.alerts.get_or_create(&[("result", result)]).inc();
    }

    /// The counters, then the gauges in `scrape`, in the Prometheus text format.
    fn render(&self, scrape: &Registry) -> String {
        let mut text = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        let _ = prometheus_text::encode(&mut text, scrape);
        text
    }
}

impl Engine {
    /// `GET /metrics`: this instance's counters and the cluster's gauges, in the Prometheus text format
    /// ([`METRICS_CONTENT_TYPE`]). A gauge whose query fails is left out (and counted as a database error).
    pub async fn metrics_text(&self) -> String {
        let mut scrape = Registry::with_prefix("jobs");
        let (leader, epoch) = match self.role() {
            Role::Leader { epoch } => (1, Some(epoch)),
            Role::Follower => (0, None),
        };
        let leader_gauge = Gauge::<i64>::default();
        leader_gauge.set(leader);
        scrape.register("leader", "1 while this instance is the leader, else 0", leader_gauge);
        let epoch = match epoch {
            Some(epoch) => Some(epoch),
            None => match self.store.leader(&self.lock_key).await {
                Ok(leader) => leader.map(|leader| leader.epoch),
                Err(error) => {
                    self.metrics.database_error();
                    tracing::warn!(%error, "metrics: cannot read the leader epoch");
                    None
                }
            },
        };
        if let Some(epoch) = epoch {
            let epoch_gauge = Gauge::<i64>::default();
            epoch_gauge.set(epoch);
            scrape.register("leader_epoch", "The current leader's epoch, bumped by every election", epoch_gauge);
        }
        self.register_backlogs(&mut scrape);
        match self.registry.list(None, None).await {
            Ok(views) => {
                let executors = Family::<Labels, Gauge>::default();
                for state in STATES {
                    for health in HEALTHS {
                        let _ = executors.get_or_create(&[("state", state.as_str()), ("health", health.as_str())]);
                    }
                }
                let mut running = 0_i64;
                for view in &views {
                    let labels = [("state", view.state.as_str()), ("health", view.executor.health.as_str())];
                    executors.get_or_create(&labels).inc();
                    running += i64::from(view.running);
                }
                scrape.register(
                    "executors",
                    "Registered executor instances by state (active, maintenance, offline) and health",
                    executors,
                );
                let running_gauge = Gauge::<i64>::default();
                running_gauge.set(running);
                scrape.register("executions_running", "Executions running on an executor instance", running_gauge);
            }
            Err(error) => {
                self.metrics.database_error();
                tracing::warn!(%error, "metrics: cannot read the executors");
            }
        }
        self.metrics.render(&scrape)
    }

    /// What waits inside this instance: the dispatch queue, the writer's backlog, and each pool's connections.
    fn register_backlogs(&self, scrape: &mut Registry) {
        let queued = Gauge::<i64>::default();
        queued.set(i64::try_from(self.dispatcher.queued()).unwrap_or(i64::MAX));
        scrape.register(
            "dispatch_queue_depth",
            "Executions this instance holds to send or is sending (waiting for a free executor slot or worker)",
            queued,
        );
        let backlog = Gauge::<i64>::default();
        backlog.set(i64::try_from(self.settler.writer.backlog()).unwrap_or(i64::MAX));
        scrape.register(
            "writer_backlog",
            "Claims, marks and ends of executions waiting to be written in a batch; callbacks are answered 503 \
             while it stays full",
            backlog,
        );
        let connections = Family::<Labels, Gauge>::default();
        for (pool, store) in [("work", &self.store), ("control", &self.control)] {
            let usage = store.pool_usage();
            connections.get_or_create(&[("pool", pool), ("state", "idle")]).set(i64::from(usage.idle));
            connections
                .get_or_create(&[("pool", pool), ("state", "in_use")])
                .set(i64::from(usage.open.saturating_sub(usage.idle)));
        }
        scrape.register(
            "pool_connections",
            "Database connections by pool (work; control: heartbeats, registration, presence, readiness) and state",
            connections,
        );
    }
}

#[cfg(test)]
mod tests;
