//! Keeps this instance's row in `scheduler_instances` fresh so that the status page lists it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use jobs_model::Timestamp;
use jobs_storage::SchedulerInstance;

use crate::Engine;

/// While the row cannot be written, it is tried again this often, so that readiness returns soon after the
/// database does.
const RETRY: Duration = Duration::from_secs(1);

pub(crate) async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut role = engine.role.clone();
    let heartbeat = engine.config.heartbeat_interval.get();
    let mut failing = false;
    loop {
        let instance = SchedulerInstance {
            instance_id: engine.instance_id.clone(),
            address: engine.advertised_url.clone(),
            role: engine.role().as_str().to_owned(),
            started_at: engine.started_at,
            last_seen_at: Timestamp::now(),
        };
        let written = match engine.control.upsert_instance(&instance).await {
            Ok(()) => true,
            Err(error) => {
                if failing {
                    tracing::debug!(%error, "still cannot write this instance's row");
                } else {
                    tracing::warn!(%error, "cannot write this instance's row; not ready until it can");
                }
                false
            }
        };
        if written && failing {
            tracing::info!("this instance's row is written again; ready");
        }
        failing = !written;
        engine.present.store(written, Ordering::Release);
        let interval = if written { heartbeat } else { heartbeat.min(RETRY) };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Ok(()) = role.changed() => {}
            () = crate::engine::stopped(&mut shutdown) => break,
        }
    }
    if let Err(error) = engine.control.delete_instance(&engine.instance_id).await {
        tracing::warn!(%error, "cannot remove this instance's row");
    }
}
