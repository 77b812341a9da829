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

/// A running execution `overdue_ms` past its deadline, on `executor`.
async fn running(
    engine: &crate::Engine,
    task: &jobs_model::Task,
    executor: jobs_model::ExecutorId,
    overdue_ms: i64,
) -> jobs_model::Execution {
    let now = Timestamp::now();
    let mut execution =
        jobs_model::Execution::pending(task, jobs_model::TriggerType::Manual, now, Default::default(), now);
    execution.status = jobs_model::ExecutionStatus::Running;
    execution.executor_id = Some(executor);
    execution.attempt = 1;
    execution.started_at = Some(now.add_millis(-60_000));
    execution.deadline_at = Some(now.add_millis(-overdue_ms));
    engine.store.insert_execution(&execution).await.unwrap();
    execution
}

#[tokio::test]
async fn a_running_execution_is_timed_out_only_past_the_grace_a_late_report_may_need() {
    let engine = leader(Arc::new(Taking::default())).await;
    let task = engine.create_task(jobs_model::TaskSpec::named("slow".to_owned())).await.unwrap();
    let executor = register(&engine, "busy", "slow").await;
    let just_late = running(&engine, &task, executor, 1_000).await;
    let long_late = running(&engine, &task, executor, 10_000).await;

    sweeps(&engine, None).time_out_overdue().await.unwrap();
    let status = |id| {
        let store = engine.store.clone();
        async move { store.get_execution(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(just_late.id).await, jobs_model::ExecutionStatus::Running, "its report may still be queued");
    assert_eq!(status(long_late.id).await, jobs_model::ExecutionStatus::Timeout);
}
