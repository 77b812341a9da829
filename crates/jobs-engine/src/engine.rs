//! The engine: the services every instance serves, and, while this instance leads, the leader's loops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use jobs_balance::Manager;
use jobs_election::{Lease, Role};
use jobs_model::{Secret, TaskId, Timestamp};
use jobs_registry::{HealthCheckConfig, HealthChecker, Registry};
use jobs_storage::Store;

use crate::alerts::{Alerter, AlertsConfig};
use crate::clock::Clock;
use crate::dispatcher::{Dispatcher, DispatcherParts};
use crate::heartbeats::Reports;
use crate::leader::Leadership;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::queue::Wake;
use crate::sent::Sent;
use crate::settle::Settler;
use crate::writer::Writer;
use crate::{ExecutorClient, Result, RetentionConfig, SchedulerConfig};
use jobs_model::millis_i64;

#[cfg(test)]
mod tests;

/// What the engine is built from.
#[derive(Debug)]
pub struct EngineParts {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub strategies: Arc<Manager>,
    pub client: Arc<dyn ExecutorClient>,
    pub config: SchedulerConfig,
    /// This instance's id (resolved, never empty).
    pub instance_id: String,
    /// The election's lock key (resolved), which scopes the leader epoch.
    pub lock_key: String,
    /// How executors reach this instance, e.g. `http://10.0.0.5:8080`; callbacks go to `{base}/api/v1/executions/{id}/callback`.
    pub advertised_url: String,
    pub role: watch::Receiver<Role>,
    /// Valid while this instance may dispatch; checked right before each dispatch.
    pub lease: Lease,
    /// The leader's active health checks of executor instances.
    pub health_check: HealthCheckConfig,
    /// How long executions are kept; the leader deletes older ones in small batches.
    pub retention: RetentionConfig,
    /// Webhooks for failed executions and instances that go down.
    pub alerts: AlertsConfig,
    /// `auth.executor_secret`, which also signs alert webhooks.
    pub executor_secret: Option<Secret>,
    /// Where the engine reads the time.
    pub clock: Arc<dyn Clock>,
    /// Outgoing HTTPS (health checks, alert webhooks): trusted roots and a client certificate; `None` trusts the
    /// platform's roots and presents none.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The scheduler core shared by the API and the background loops.
#[derive(Debug)]
pub struct Engine {
    pub(crate) store: Store,
    /// The same database on the control plane's own connections: presence and readiness never queue behind work.
    pub(crate) control: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) strategies: Arc<Manager>,
    pub(crate) config: SchedulerConfig,
    pub(crate) instance_id: String,
    pub(crate) lock_key: String,
    pub(crate) advertised_url: String,
    pub(crate) role: watch::Receiver<Role>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The one place where executions end.
    pub(crate) settler: Arc<Settler>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) alerts: Arc<Alerter>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) started_at: Timestamp,
    pub(crate) health_check: HealthCheckConfig,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) retention: RetentionConfig,
    /// Tasks changed through this instance, for the planner (closed unless leading).
    pub(crate) changes: Arc<Mailbox<TaskId>>,
    /// Hints for the pending queue (closed unless leading).
    pub(crate) queue: Arc<Mailbox<Wake>>,
    /// Settles what heartbeats report, after they are answered.
    pub(crate) reports: Arc<Reports>,
    /// Whether this instance's last refresh of its row in the database succeeded: it can write, and the cluster
    /// sees it.
    pub(crate) present: AtomicBool,
}

/// How long `GET /ready` waits for the database's answer.
const READY_PING_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long `GET /ready` waits for a connection of the work pool before it says the instance is degraded.
const WORK_POOL_PROBE: std::time::Duration = std::time::Duration::from_millis(250);

/// How an instance that can serve serves (see [`Engine::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Everything answers in time.
    Ready,
    /// Serving, but the work waits: the reason says for what (a saturated work pool). Load balancers keep
    /// sending; an operator looks.
    Degraded(String),
}

/// One scheduler instance as `GET /api/v1/scheduler/status` shows it.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub instance_id: String,
    pub address: String,
    pub role: InstanceRole,
    pub started_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// The whole cluster as this instance sees it.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    pub instance_id: String,
    pub role: Role,
    pub started_at: Timestamp,
    pub leader_id: Option<String>,
    pub leader_epoch: Option<i64>,
    pub leader_since: Option<Timestamp>,
    pub instances: Vec<InstanceStatus>,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Arc<Self> {
        let callback_base = format!("{}/api/v1/executions", parts.advertised_url.trim_end_matches('/'));
        let metrics = Arc::new(Metrics::default());
        let alerts = Arc::new(Alerter::new(
            &parts.alerts,
            parts.instance_id.clone(),
            parts.executor_secret,
            parts.store.clone(),
            metrics.clone(),
            parts.tls.clone(),
        ));
        let changes = Arc::new(Mailbox::default());
        let queue = Arc::new(Mailbox::default());
        let writer = Writer::start(parts.store.clone());
        let sent = Arc::new(Sent::default());
        let settler = Arc::new(Settler {
            store: parts.store.clone(),
            writer: writer.clone(),
            registry: parts.registry.clone(),
            client: parts.client.clone(),
            metrics: metrics.clone(),
            alerts: alerts.clone(),
            clock: parts.clock.clone(),
            queue: queue.clone(),
            sent: sent.clone(),
        });
        let health = if parts.health_check.enabled {
            HealthChecker::new(parts.registry.clone(), parts.health_check.clone(), parts.tls.as_deref()).ok()
        } else {
            None
        };
        let dispatcher = Arc::new(Dispatcher::new(DispatcherParts {
            store: parts.store.clone(),
            writer,
            registry: parts.registry.clone(),
            strategies: parts.strategies.clone(),
            client: parts.client,
            lease: parts.lease,
            settler: settler.clone(),
            queue: queue.clone(),
            clock: parts.clock.clone(),
            metrics: metrics.clone(),
            health,
            max_workers: parts.config.max_workers,
            early_delivery_ms: millis_i64(parts.config.early_delivery.get()),
            max_lateness_ms: millis_i64(parts.config.max_lateness.get()),
            callback_base,
            sent,
        }));
        let lost_after_ms =
            i64::try_from(parts.registry.heartbeat_interval_seconds()).unwrap_or(i64::MAX / 4_000) * 2_000 + 1_000;
        let reports = Arc::new(Reports {
            store: parts.store.clone(),
            settler: settler.clone(),
            role: parts.role.clone(),
            lock_key: parts.lock_key.clone(),
            clock: parts.clock.clone(),
            queue: queue.clone(),
            lost_after_ms,
            busy: Default::default(),
        });
        Arc::new(Self {
            reports,
            control: parts.store.control_plane(),
            store: parts.store,
            registry: parts.registry,
            strategies: parts.strategies,
            config: parts.config,
            instance_id: parts.instance_id,
            lock_key: parts.lock_key,
            advertised_url: parts.advertised_url,
            role: parts.role,
            dispatcher,
            settler,
            metrics,
            alerts,
            started_at: parts.clock.now(),
            clock: parts.clock,
            health_check: parts.health_check,
            tls: parts.tls,
            retention: parts.retention,
            changes,
            queue,
            present: AtomicBool::new(false),
        })
    }

    pub fn strategies(&self) -> &Arc<Manager> {
        &self.strategies
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    /// Whether this instance can serve now: `Err` says why not (the database does not answer, this instance's row
    /// cannot be written, or a single node does not lead yet). `GET /ready` answers 503 while it is `Err`, and 200
    /// `degraded` when the database answers on the control plane's connections but the work pool has none free.
    pub async fn readiness(&self) -> Result<Readiness, String> {
        let limit = self.control.acquire_timeout().min(READY_PING_LIMIT);
        match tokio::time::timeout(limit, self.control.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(format!("the database is unreachable: {error}")),
            Err(_) => return Err(format!("the database did not answer within {}ms", limit.as_millis())),
        }
        if !self.present.load(Ordering::Acquire) {
            return Err("this instance cannot write its row in the database yet".to_owned());
        }
        if self.store.backend() == jobs_storage::Backend::Sqlite && !self.role().is_leader() {
            return Err("the single node does not lead yet".to_owned());
        }
        match tokio::time::timeout(WORK_POOL_PROBE, self.store.ping()).await {
            Ok(Ok(())) => Ok(Readiness::Ready),
            Ok(Err(error)) => Ok(Readiness::Degraded(format!("the work pool fails: {error}"))),
            Err(_) => Ok(Readiness::Degraded(format!(
                "the work pool is saturated: no connection free within {}ms",
                WORK_POOL_PROBE.as_millis()
            ))),
        }
    }

    /// Tells the planner that a task changed (dropped unless this instance leads: a new leader reads every task).
    pub(crate) fn task_changed(&self, id: TaskId) {
        self.changes.post(id);
    }

    /// How many hints wait for the leader's loops (none while following).
    pub fn waiting_hints(&self) -> usize {
        self.changes.len() + self.queue.len()
    }

    /// Runs the leader's loops whenever this instance leads, until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let presence = tokio::spawn(crate::presence::run(self.clone(), shutdown.clone()));
        let alerts = tokio::spawn(self.alerts.clone().run(shutdown.clone()));
        let mut role = self.role.clone();
        loop {
            let current = *role.borrow_and_update();
            let leadership = match current {
                Role::Leader { epoch } => Some(Leadership::start(&self, epoch)),
                Role::Follower => None,
            };
            let stop = tokio::select! {
                changed = role.changed() => changed.is_err(),
                () = stopped(&mut shutdown) => true,
            };
            if let Some(leadership) = leadership {
                leadership.stop().await;
            }
            if stop {
                break;
            }
        }
        self.dispatcher.drain().await;
        let _ = presence.await;
        let _ = alerts.await;
    }

    /// This instance, the leader and every live instance.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        let leader = self.store.leader(&self.lock_key).await?;
        let live_after = self.clock.now().add_millis(-3 * millis_i64(self.config.heartbeat_interval.get()));
        let instances = self
            .store
            .list_instances()
            .await?
            .into_iter()
            .filter(|instance| instance.last_seen_at >= live_after || instance.instance_id == self.instance_id)
            .map(|instance| InstanceStatus {
                instance_id: instance.instance_id,
                address: instance.address,
                role: InstanceRole::parse(&instance.role),
                started_at: instance.started_at,
                last_seen_at: instance.last_seen_at,
            })
            .collect();
        Ok(ClusterStatus {
            instance_id: self.instance_id.clone(),
            role: self.role(),
            started_at: self.started_at,
            leader_id: leader.as_ref().map(|leader| leader.instance_id.clone()),
            leader_epoch: leader.as_ref().map(|leader| leader.epoch),
            leader_since: leader.as_ref().map(|leader| leader.acquired_at),
            instances,
        })
    }
}

/// Completes once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What an instance's row says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceRole {
    Leader,
    Follower,
    /// A word this build does not know (written by another version).
    Unknown,
}

impl InstanceRole {
    fn parse(word: &str) -> Self {
        match word {
            "leader" => Self::Leader,
            "follower" => Self::Follower,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Unknown => "unknown",
        }
    }
}
