//! Leadership: while this instance leads, it runs the leader's loops, each a task of its own with its own parts:
//!
//! - `planning` ([`Planner`]): turns schedules into written fires and hands them to the dispatcher;
//! - `queue` ([`Queue`]): starts pending executions that are due (triggers, retries, waiting sequential fires);
//! - `sweeps` ([`Sweeps`]): times out overdue attempts and fails the work of instances that went offline;
//! - `retention`: deletes old executions in small batches;
//! - `health checks` and their alerts.
//!
//! Followers run none of them: what they write reaches the leader through the database, and the leader's
//! mailboxes are closed on them, so they buffer nothing.

use std::sync::Arc;

use tokio::task::JoinHandle;

use jobs_registry::HealthChecker;

use crate::Engine;
use crate::planner::{Planner, PlannerParts};
use crate::queue::Queue;
use crate::sweeps::Sweeps;
use jobs_model::millis_i64;

/// The leader's loops for one epoch.
pub(crate) struct Leadership {
    engine: Arc<Engine>,
    loops: Vec<(&'static str, JoinHandle<()>)>,
}

impl Leadership {
    pub(crate) fn start(engine: &Arc<Engine>, epoch: i64) -> Self {
        engine.changes.open();
        engine.queue.open();
        let mut loops = Vec::new();
        let planner = Planner::new(PlannerParts {
            store: engine.store.clone(),
            dispatcher: engine.dispatcher.clone(),
            settler: engine.settler.clone(),
            metrics: engine.metrics.clone(),
            clock: engine.clock.clone(),
            changes: engine.changes.clone(),
            lock_key: engine.lock_key.clone(),
            epoch,
            misfire_grace_ms: millis_i64(engine.config.misfire_grace.get()),
        });
        loops.push(("planning", tokio::spawn(planner.run())));
        let queue = Queue {
            store: engine.store.clone(),
            dispatcher: engine.dispatcher.clone(),
            settler: engine.settler.clone(),
            metrics: engine.metrics.clone(),
            clock: engine.clock.clone(),
            mailbox: engine.queue.clone(),
            epoch,
            took_over_at: engine.clock.now(),
        };
        loops.push(("queue", tokio::spawn(queue.run())));
        let sweeps = Sweeps {
            store: engine.store.clone(),
            registry: engine.registry.clone(),
            settler: engine.settler.clone(),
            alerts: engine.alerts.clone(),
            metrics: engine.metrics.clone(),
            clock: engine.clock.clone(),
            epoch,
            settled: Default::default(),
            forget_offline_after_ms: engine.retention.forget_offline_after_ms(),
        };
        loops.push(("sweeps", tokio::spawn(sweeps.run())));
        let retention = crate::retention::run(engine.store.clone(), engine.retention.clone());
        loops.push(("retention", tokio::spawn(retention)));
        let health_alerts = engine.alerts.clone().watch_health(engine.registry.health_changes());
        loops.push(("health alerts", tokio::spawn(health_alerts)));
        if engine.health_check.enabled {
            match HealthChecker::new(engine.registry.clone(), engine.health_check.clone(), engine.tls.as_deref()) {
                Ok(checker) => loops.push(("health checks", tokio::spawn(checker.run()))),
                Err(error) => tracing::error!(%error, "cannot start health checks"),
            }
        }
        tracing::info!(epoch, loops = ?loops.iter().map(|(name, _)| *name).collect::<Vec<_>>(), "leading");
        Self { engine: engine.clone(), loops }
    }

    /// Ends every loop and closes the mailboxes.
    pub(crate) async fn stop(self) {
        self.engine.changes.close();
        self.engine.queue.close();
        for (name, handle) in self.loops {
            handle.abort();
            if let Err(error) = handle.await
                && error.is_panic()
            {
                tracing::error!(loop_name = name, "leader loop panicked");
            }
        }
    }
}
