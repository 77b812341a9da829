//! Dispatch: one sender per claimed fire, least_loaded across a batch, and what is shed when capacity or workers
//! run out.

use std::sync::Arc;
use std::time::Duration;

use jobs_model::protocol::{CallbackRequest, CallbackStatus};
use jobs_model::{Execution, ExecutionMode, ExecutionStatus, Parameters, TaskSpec, Timestamp, TriggerType};

use crate::testing::{Taking, leader, register, register_with};
use crate::{CallbackOutcome, Engine};

#[tokio::test]
async fn a_claimed_fire_read_before_its_end_is_not_sent_again() {
    let client = Arc::new(Taking::default());
    let engine = leader(client.clone()).await;
    let store = engine.store.clone();
    let mut spec = TaskSpec::named("burst".to_owned());
    spec.cron_expression = Some("0 0 3 * * *".to_owned());
    spec.execution_mode = ExecutionMode::Parallel;
    let task = Arc::new(engine.create_task(spec).await.unwrap());
    let executor = register(&engine, "plain-1", "burst").await;
    engine.registry.candidates("burst", None).await.unwrap();

    // A fire this leader claimed for the instance, as the planner writes it.
    let now = Timestamp::now();
    let mut fire = Execution::pending(&task, TriggerType::Cron, now, Parameters::default(), now);
    fire.executor_id = Some(executor);
    fire.attempt = 1;
    fire.epoch = Some(1);
    fire.started_at = Some(now);
    fire.deadline_at = Some(now.add_millis(60_000));
    store.insert_execution(&fire).await.unwrap();
    let stale = store.get_execution(fire.id).await.unwrap().unwrap();
    assert!(stale.is_preclaimed());

    let dispatcher = engine.dispatcher.clone();
    dispatcher.dispatch_at(stale.clone(), task.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dispatcher.in_flight.lock().unwrap().contains(&fire.id) {
        assert!(tokio::time::Instant::now() < deadline, "the fire was never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*client.0.lock().unwrap(), [(fire.id, 1)]);
    let success = CallbackRequest {
        status: CallbackStatus::Success,
        attempt: Some(1),
        result: None,
        error: None,
        logs: vec!["done".to_owned()],
    };
    engine.callback(fire.id, &success).await.unwrap();
    // The same report again (an executor that lost the answer): answered from one read, nothing written.
    let again = engine.callback(fire.id, &success).await.unwrap();
    assert!(matches!(again, CallbackOutcome::AlreadyFinal(ExecutionStatus::Success)), "{again:?}");

    // A queue pass that read the row while it was still claimed, and acts on it only now.
    assert!(dispatcher.owns(&stale), "the queue must leave a claimed fire its dispatcher handled alone");
    dispatcher.dispatch_at(stale.clone(), task.clone());
    assert!(!dispatcher.in_flight.lock().unwrap().contains(&fire.id), "not taken up again");
    assert_eq!(client.0.lock().unwrap().len(), 1, "sent once");
    // Its log lines landed with its end.
    let logs = store.logs(fire.id, None, 0).await.unwrap();
    assert_eq!(logs.iter().map(|line| line.message.as_str()).collect::<Vec<_>>(), ["done"]);
}

#[tokio::test]
async fn least_loaded_spreads_a_batch_of_claims_by_what_it_just_assigned() {
    let engine = leader(Arc::new(Taking::default())).await;
    let mut spec = TaskSpec::named("spread".to_owned());
    spec.cron_expression = Some("* * * * * *".to_owned());
    spec.execution_mode = ExecutionMode::Parallel;
    spec.load_balance_strategy = "least_loaded".to_owned();
    let task = engine.create_task(spec).await.unwrap();
    let (a, b) = (register(&engine, "a", "spread").await, register(&engine, "b", "spread").await);
    let now = Timestamp::now();
    // Instance a runs three executions already.
    for _ in 0..3 {
        let mut running = Execution::pending(&task, TriggerType::Manual, now, Parameters::default(), now);
        running.status = jobs_model::ExecutionStatus::Running;
        running.executor_id = Some(a);
        running.attempt = 1;
        running.started_at = Some(now);
        engine.store.insert_execution(&running).await.unwrap();
    }
    let mut fires: Vec<Execution> = (0..10)
        .map(|n| Execution::pending(&task, TriggerType::Cron, now.add_millis(n * 1_000), Parameters::default(), now))
        .collect();
    engine.dispatcher.preclaim(&task, &mut fires).await;
    let on = |id| fires.iter().filter(|fire| fire.executor_id == Some(id)).count();
    // b takes the first three, then equal load alternates: 3 or 4 on a, not none.
    assert!(on(a) >= 3 && on(b) >= 6, "a {} b {}", on(a), on(b));
}

/// A fire claimed in the database for `executor`, due `late_ms` ago, as the planner writes it.
async fn claimed_fire(
    engine: &Engine,
    task: &jobs_model::Task,
    executor: jobs_model::ExecutorId,
    late_ms: i64,
) -> Execution {
    let now = Timestamp::now();
    let scheduled = now.add_millis(-late_ms);
    let mut fire = Execution::pending(task, TriggerType::Cron, scheduled, Parameters::default(), now);
    fire.executor_id = Some(executor);
    fire.attempt = 1;
    fire.epoch = Some(1);
    fire.started_at = Some(scheduled);
    fire.deadline_at = Some(now.add_millis(60_000));
    engine.store.insert_execution(&fire).await.unwrap();
    fire
}

#[tokio::test]
async fn a_fire_finding_every_instance_at_its_max_concurrency_past_max_lateness_is_missed_as_overloaded() {
    let client = Arc::new(Taking::default());
    let engine = leader(client.clone()).await;
    let mut spec = TaskSpec::named("capped".to_owned());
    spec.cron_expression = Some("0 0 3 * * *".to_owned());
    spec.execution_mode = ExecutionMode::Parallel;
    let task = Arc::new(engine.create_task(spec).await.unwrap());
    let executor = register_with(&engine, "small", "capped", serde_json::json!({"max_concurrency": 1})).await;
    engine.registry.candidates("capped", None).await.unwrap();
    let (first, second) =
        (claimed_fire(&engine, &task, executor, 10_000).await, claimed_fire(&engine, &task, executor, 11_000).await);
    let dispatcher = engine.dispatcher.clone();
    dispatcher.dispatch_at(first.clone(), task.clone());
    dispatcher.dispatch_at(second.clone(), task.clone());
    // Whichever went first took the one slot; the other waited past max_lateness (5 s by default; both are 10 s late).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let shed = loop {
        let sent = client.0.lock().unwrap().clone();
        if let [(taken, 1)] = sent.as_slice() {
            let other = if *taken == first.id { second.id } else { first.id };
            let now = engine.store.get_execution(other).await.unwrap().unwrap();
            if now.status.is_final() {
                break now;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "sent {sent:?}, and the other fire never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shed.status, jobs_model::ExecutionStatus::Missed, "{shed:?}");
    assert!(shed.error.as_deref().is_some_and(|error| error.starts_with("overloaded")), "{shed:?}");
    assert_eq!(client.0.lock().unwrap().len(), 1, "the instance got one, never more than it holds");
}

#[test]
fn cron_fires_leave_a_share_of_the_workers_to_retries_triggers_and_chains() {
    use crate::dispatcher::cron_workers;
    assert_eq!([cron_workers(1), cron_workers(7), cron_workers(10), cron_workers(64)], [1, 7, 9, 56]);
}

#[tokio::test]
async fn a_cron_fire_finding_no_free_worker_within_max_lateness_is_shed_without_one() {
    let client = Arc::new(Taking::default());
    let engine = leader(client.clone()).await;
    let mut spec = TaskSpec::named("busy".to_owned());
    spec.cron_expression = Some("0 0 3 * * *".to_owned());
    spec.execution_mode = ExecutionMode::Parallel;
    let task = Arc::new(engine.create_task(spec).await.unwrap());
    let executor = register(&engine, "plain-1", "busy").await;
    engine.registry.candidates("busy", None).await.unwrap();
    let dispatcher = engine.dispatcher.clone();
    // Every worker busy, and staying so for the whole test.
    let all = u32::try_from(dispatcher.max_workers).unwrap();
    let _busy = dispatcher.permits.clone().acquire_many_owned(all).await.unwrap();

    let fire = claimed_fire(&engine, &task, executor, 0).await;
    dispatcher.dispatch_at(fire.clone(), task.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let shed = loop {
        let now = engine.store.get_execution(fire.id).await.unwrap().unwrap();
        if now.status.is_final() {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fire waited for a worker past max_lateness: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shed.status, ExecutionStatus::Missed, "{shed:?}");
    assert!(shed.error.as_deref().is_some_and(|error| error.contains("no dispatch worker")), "{shed:?}");
    assert!(client.0.lock().unwrap().is_empty(), "never sent");
}
