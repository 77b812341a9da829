//! The engine: the services every instance serves, and the leader's planner and dispatcher.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, watch};

use jobs_balance::Manager;
use jobs_election::{Lease, Role};
use jobs_model::{Secret, Timestamp};
use jobs_registry::{HealthCheckConfig, HealthChecker, Registry};
use jobs_storage::Store;

use crate::alerts::{Alerter, AlertsConfig};
use crate::dispatcher::{Dispatcher, DispatcherParts};
use crate::metrics::Metrics;
use crate::outcomes::Outcomes;
use crate::planner::{Planner, PlannerEvent};
use crate::writer::Writer;
use crate::{ExecutorClient, Result, RetentionConfig, SchedulerConfig};

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
}

/// The scheduler core shared by the API and the background loops.
#[derive(Debug)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) strategies: Arc<Manager>,
    pub(crate) config: SchedulerConfig,
    pub(crate) instance_id: String,
    pub(crate) lock_key: String,
    pub(crate) advertised_url: String,
    pub(crate) role: watch::Receiver<Role>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) outcomes: Arc<Outcomes>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) alerts: Arc<Alerter>,
    /// Batches the hot path's writes (claims, accepted marks, finishes) into shared commits.
    pub(crate) writer: Writer,
    pub(crate) started_at: Timestamp,
    health_check: HealthCheckConfig,
    retention: RetentionConfig,
    events: mpsc::UnboundedSender<PlannerEvent>,
    event_receiver: Arc<Mutex<mpsc::UnboundedReceiver<PlannerEvent>>>,
}

/// One scheduler instance as `GET /api/v1/scheduler/status` shows it.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub instance_id: String,
    pub address: String,
    pub role: String,
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
        ));
        let outcomes = Arc::new(Outcomes::new(
            parts.store.clone(),
            parts.registry.clone(),
            parts.client.clone(),
            metrics.clone(),
            alerts.clone(),
        ));
        let health = if parts.health_check.enabled {
            HealthChecker::new(parts.registry.clone(), parts.health_check.clone()).ok()
        } else {
            None
        };
        let writer = Writer::start(parts.store.clone());
        let dispatcher = Arc::new(Dispatcher::new(DispatcherParts {
            store: parts.store.clone(),
            writer: writer.clone(),
            registry: parts.registry.clone(),
            strategies: parts.strategies.clone(),
            client: parts.client,
            lease: parts.lease,
            outcomes: outcomes.clone(),
            metrics: metrics.clone(),
            health,
            max_workers: parts.config.max_workers,
            callback_base,
        }));
        let (events, event_receiver) = mpsc::unbounded_channel();
        Arc::new(Self {
            store: parts.store,
            registry: parts.registry,
            strategies: parts.strategies,
            config: parts.config,
            instance_id: parts.instance_id,
            lock_key: parts.lock_key,
            advertised_url: parts.advertised_url,
            role: parts.role,
            dispatcher,
            outcomes,
            metrics,
            alerts,
            writer,
            started_at: Timestamp::now(),
            health_check: parts.health_check,
            retention: parts.retention,
            events,
            event_receiver: Arc::new(Mutex::new(event_receiver)),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
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

    /// Tells the planner (if this instance leads) that something it plans from changed.
    pub(crate) fn notify(&self, event: PlannerEvent) {
        // With no planner running the event has no reader; the next planner loads everything anyway.
        let _ = self.events.send(event);
    }

    /// Runs the leader's work whenever this instance leads, until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let presence = tokio::spawn(crate::presence::run(self.clone(), shutdown.clone()));
        let alerts = tokio::spawn(self.alerts.clone().run(shutdown.clone()));
        let mut role = self.role.clone();
        loop {
            let current = *role.borrow_and_update();
            let leading = match current {
                Role::Leader { epoch } => self.lead(epoch),
                Role::Follower => Vec::new(),
            };
            let stop = tokio::select! {
                changed = role.changed() => changed.is_err(),
                () = stopped(&mut shutdown) => true,
            };
            for task in leading {
                task.abort();
                let _ = task.await;
            }
            if stop {
                break;
            }
        }
        self.dispatcher.drain().await;
        let _ = presence.await;
        let _ = alerts.await;
    }

    /// Starts the leader's loops: the planner, the health checker when enabled, and retention.
    fn lead(self: &Arc<Self>, epoch: i64) -> Vec<tokio::task::JoinHandle<()>> {
        let planner = Planner::new(self.clone(), epoch);
        let receiver = self.event_receiver.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let mut events = receiver.lock().await;
            planner.run(&mut events).await;
        })];
        tasks.push(tokio::spawn(self.alerts.clone().watch_health(self.registry.health_changes())));
        if self.health_check.enabled {
            match HealthChecker::new(self.registry.clone(), self.health_check.clone()) {
                Ok(checker) => tasks.push(tokio::spawn(checker.run())),
                Err(error) => tracing::error!(%error, "cannot start health checks"),
            }
        }
        tasks.push(tokio::spawn(crate::retention::run(self.store.clone(), self.retention.clone())));
        tasks
    }

    /// This instance, the leader and every live instance.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        let leader = self.store.leader(&self.lock_key).await?;
        let live_after = Timestamp::now().add_millis(-3 * self.config.heartbeat_interval.get().as_millis() as i64);
        let instances = self
            .store
            .list_instances()
            .await?
            .into_iter()
            .filter(|instance| instance.last_seen_at >= live_after || instance.instance_id == self.instance_id)
            .map(|instance| InstanceStatus {
                instance_id: instance.instance_id,
                address: instance.address,
                role: instance.role,
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
