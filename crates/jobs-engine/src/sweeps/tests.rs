//! The offline sweep on a real (SQLite) database.

use std::sync::Arc;

use jobs_model::Timestamp;

use crate::sweeps::Sweeps;
use crate::testing::{Taking, leader, register};

fn sweeps(engine: &crate::Engine, forget_offline_after_ms: Option<i64>) -> Sweeps {
    Sweeps {
        store: engine.store.clone(),
        registry: engine.registry.clone(),
        settler: engine.settler.clone(),
        alerts: engine.alerts.clone(),
        metrics: engine.metrics.clone(),
        clock: engine.clock.clone(),
        epoch: 1,
        settled: Default::default(),
        forget_offline_after_ms,
    }
}

#[tokio::test]
async fn an_instance_offline_past_the_retention_is_forgotten_and_a_recent_one_kept() {
    let engine = leader(Arc::new(Taking::default())).await;
    let gone = register(&engine, "gone", "nightly").await;
    let recent = register(&engine, "recent", "nightly").await;
    let day = 86_400_000;
    let now = Timestamp::now();
    engine.store.record_heartbeat(gone, now.add_millis(-3 * day)).await.unwrap();
    engine.store.record_heartbeat(recent, now.add_millis(-day / 2)).await.unwrap();

    let sweeps = sweeps(&engine, Some(day));
    sweeps.offline_instances(true).await.unwrap();
    assert!(engine.registry.get(gone).await.is_err(), "offline for three days, past a one-day retention");
    assert!(engine.registry.get(recent).await.is_ok(), "offline for half a day: kept");
    assert!(sweeps.settled_lock().contains_key(&recent), "its work settled, not looked at again at once");

    let keep_forever = self::sweeps(&engine, None);
    engine.store.record_heartbeat(recent, now.add_millis(-30 * day)).await.unwrap();
    keep_forever.offline_instances(true).await.unwrap();
    assert!(engine.registry.get(recent).await.is_ok(), "0s keeps offline instances");
}
