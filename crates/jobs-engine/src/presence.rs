//! Keeps this instance's row in `scheduler_instances` fresh so that the status page lists it.

use std::sync::Arc;

use tokio::sync::watch;

use jobs_model::Timestamp;
use jobs_storage::SchedulerInstance;

use crate::Engine;

pub(crate) async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut role = engine.role.clone();
    let interval = engine.config.heartbeat_interval.get();
    loop {
        let instance = SchedulerInstance {
            instance_id: engine.instance_id.clone(),
            address: engine.advertised_url.clone(),
            role: engine.role().as_str().to_owned(),
            started_at: engine.started_at,
            last_seen_at: Timestamp::now(),
        };
        if let Err(error) = engine.store.upsert_instance(&instance).await {
            tracing::warn!(%error, "cannot refresh this instance's row");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Ok(()) = role.changed() => {}
            () = crate::engine::stopped(&mut shutdown) => break,
        }
    }
    if let Err(error) = engine.store.delete_instance(&engine.instance_id).await {
        tracing::warn!(%error, "cannot remove this instance's row");
    }
}
