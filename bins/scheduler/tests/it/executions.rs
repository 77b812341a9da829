//! Execution semantics through the API: modes, retries, timeouts, cancel, lost work, strategies, logs,
//! idempotent callbacks.

use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_storage::Backend;

use crate::fake_executor::FakeExecutor;
use crate::support::{TestApp, spawn_app, spawn_app_with, wait_for};

/// An SDK executor whose `nap` handler sleeps `parameters.ms` milliseconds.
async fn napper(app: &TestApp, instance: &str) -> ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("nappers")
        .instance_id(instance)
        .scheduler_urls([app.address.clone()])
        .handler("nap", |ctx: JobContext| async move {
            let ms = ctx.parameters().get("ms").and_then(Value::as_u64).unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, JobError>(json!({"slept_ms": ms}))
        })
        .build()
        .expect("executor builds");
    let handle = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

async fn all_executions(app: &TestApp, task: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/v1/executions?task_id={task}&limit=500")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn execution(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/executions/{id}")).await.1
}

async fn trigger(app: &TestApp, task: &str) -> String {
    let (status, triggered) = app.post(&format!("/api/v1/tasks/{task}/trigger"), json!({})).await;
    assert_eq!(status, 202, "{triggered}");
    triggered["execution_id"].as_str().expect("execution id").to_owned()
}

async fn wait_status(app: &TestApp, id: &str, status: &str) -> Value {
    wait_for(&format!("execution {id} to be {status}"), Duration::from_secs(20), || async {
        let execution = execution(app, id).await;
        (execution["status"] == status).then_some(execution)
    })
    .await
}

fn millis(value: &Value) -> i64 {
    value.as_str().and_then(jobs_model::Timestamp::parse_rfc3339).map_or(0, jobs_model::Timestamp::as_millis)
}

async fn pause(app: &TestApp, task: &str) {
    let (status, _) = app.post(&format!("/api/v1/tasks/{task}/pause"), json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_never_overlaps_and_never_drops() {
    let app = spawn_app().await;
    let executor = napper(&app, "seq-1").await;
    app.create_task(json!({"name": "nap", "cron_expression": "* * * * * *", "execution_mode": "sequential",
                           "parameters": {"ms": 1500}}))
        .await;
    wait_for("four fires written", Duration::from_secs(30), || async {
        (all_executions(&app, "nap").await.len() >= 4).then_some(())
    })
    .await;
    pause(&app, "nap").await;
    let executions = wait_for("the queue to drain", Duration::from_secs(30), || async {
        let executions = all_executions(&app, "nap").await;
        executions.iter().all(|e| e["status"] == "success").then_some(executions)
    })
    .await;
    assert!(executions.len() >= 4, "every fire ran: {}", executions.len());
    let mut runs: Vec<(i64, i64)> =
        executions.iter().map(|e| (millis(&e["started_at"]), millis(&e["finished_at"]))).collect();
    runs.sort_unstable();
    for pair in runs.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {pair:?}");
    }
    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sequential_queue_says_so() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "slow", &["queue"]).await;
    app.create_task(json!({"name": "queue", "execution_mode": "sequential"})).await;
    let first = trigger(&app, "queue").await;
    wait_status(&app, &first, "running").await;
    let mut last = String::new();
    for _ in 0..=jobs_limit() {
        last = trigger(&app, "queue").await;
    }
    let skipped = wait_status(&app, &last, "skipped").await;
    assert!(
        skipped["error"].as_str().is_some_and(|e| e.contains("queue of sequential task `queue` is full")),
        "{skipped}"
    );
    let (_, pending) = app.get("/api/v1/executions?task_id=queue&status=pending&limit=500").await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(jobs_limit()), "the others wait in the queue");
    app.stop().await;
}

/// The sequential queue's bound (100).
fn jobs_limit() -> usize {
    100
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_records_skipped_fires() {
    let app = spawn_app().await;
    let executor = napper(&app, "skip-1").await;
    app.create_task(json!({"name": "nap", "cron_expression": "* * * * * *", "execution_mode": "skip",
                           "parameters": {"ms": 2500}}))
        .await;
    let skipped = wait_for("skipped fires", Duration::from_secs(20), || async {
        let skipped: Vec<Value> =
            all_executions(&app, "nap").await.into_iter().filter(|e| e["status"] == "skipped").collect();
        (skipped.len() >= 2).then_some(skipped)
    })
    .await;
    assert!(skipped[0]["error"].as_str().is_some_and(|e| e.contains("is still running")), "{}", skipped[0]);
    pause(&app, "nap").await;
    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_cancels_the_running_execution() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "r-1", &["long"]).await;
    app.create_task(json!({"name": "long", "execution_mode": "replace"})).await;
    let first = trigger(&app, "long").await;
    wait_status(&app, &first, "running").await;
    let second = trigger(&app, "long").await;
    let cancelled = wait_status(&app, &first, "cancelled").await;
    assert!(cancelled["error"].as_str().is_some_and(|e| e.contains(&format!("replaced by execution {second}"))));
    wait_status(&app, &second, "running").await;
    wait_for("the executor to be told", Duration::from_secs(10), || async {
        fake.cancelled().iter().any(|c| c["execution_id"] == first.as_str()).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_goes_to_another_instance_after_the_backoff() {
    let app = spawn_app().await;
    let (a, b) = (FakeExecutor::start().await, FakeExecutor::start().await);
    a.register(&app, "a", &["flaky"]).await;
    b.register(&app, "b", &["flaky"]).await;
    app.create_task(json!({"name": "flaky", "max_retry": 2, "retry_backoff": {"type": "fixed", "delay_seconds": 1}}))
        .await;
    let id = trigger(&app, "flaky").await;
    wait_status(&app, &id, "running").await;
    let (status, answer) = app
        .post(
            &format!("/api/v1/executions/{id}/callback"),
            json!({"status": "failed", "error": "disk full", "attempt": 1}),
        )
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("pending")), "{answer}");
    let retried = wait_for("the second attempt", Duration::from_secs(10), || async {
        let execution = execution(&app, &id).await;
        (execution["attempt"] == 2 && execution["status"] == "running").then_some(execution)
    })
    .await;
    let attempts = retried["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["error"], "disk full");
    assert_ne!(attempts[0]["executor_id"], attempts[1]["executor_id"], "the retry prefers the other instance");
    let waited = millis(&attempts[1]["started_at"]) - millis(&attempts[0]["finished_at"]);
    assert!(waited >= 1000, "the backoff was kept: {waited} ms");
    assert_eq!(retried["retries"], 1);
    assert_eq!(a.executed().len() + b.executed().len(), 2);

    let (_, answer) =
        app.post(&format!("/api/v1/executions/{id}/callback"), json!({"status": "success", "attempt": 2})).await;
    assert_eq!(answer["status"], "success");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_executor_times_out_and_is_told_to_cancel() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "silent", &["quiet"]).await;
    app.create_task(json!({"name": "quiet", "timeout_seconds": 1})).await;
    let id = trigger(&app, "quiet").await;
    let timed_out = wait_status(&app, &id, "timeout").await;
    assert!(timed_out["error"].as_str().is_some_and(|e| e.contains("timed out after 1s")), "{timed_out}");
    assert_eq!(timed_out["attempts"][0]["status"], "timeout");
    wait_for("the executor to receive /cancel", Duration::from_secs(10), || async {
        fake.cancelled().iter().any(|c| c["execution_id"] == id.as_str()).then_some(())
    })
    .await;
    let (status, late) = app.post(&format!("/api/v1/executions/{id}/callback"), json!({"status": "success"})).await;
    assert_eq!((status, late["applied"].as_bool()), (200, Some(false)), "{late}");
    assert_eq!(execution(&app, &id).await["status"], "timeout", "a late callback is not applied");
    let (_, logs) = app.get(&format!("/api/v1/executions/{id}/logs")).await;
    assert!(
        logs["items"].as_array().is_some_and(|lines| lines
            .iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.contains("late callback")))),
        "{logs}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cancel_tells_the_executor_and_does_not_retry() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "c-1", &["stoppable"]).await;
    app.create_task(json!({"name": "stoppable", "max_retry": 3})).await;
    let id = trigger(&app, "stoppable").await;
    wait_status(&app, &id, "running").await;
    let (status, cancelled) = app.post(&format!("/api/v1/executions/{id}/cancel"), json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    wait_for("the executor to receive /cancel", Duration::from_secs(10), || async {
        fake.cancelled().iter().any(|c| c["execution_id"] == id.as_str()).then_some(())
    })
    .await;
    let (status, again) = app.post(&format!("/api/v1/executions/{id}/cancel"), json!({})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("conflict")), "{again}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = execution(&app, &id).await;
    assert_eq!((after["status"].as_str(), after["retries"].as_u64()), (Some("cancelled"), Some(0)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_an_instance_stops_reporting_is_lost_and_retried_elsewhere() {
    let app = spawn_app().await;
    let (a, b) = (FakeExecutor::start().await, FakeExecutor::start().await);
    let a_id = a.register(&app, "a", &["fragile"]).await;
    app.create_task(json!({"name": "fragile", "max_retry": 1, "retry_backoff": {"type": "fixed", "delay_seconds": 0}}))
        .await;
    let id = trigger(&app, "fragile").await;
    wait_status(&app, &id, "running").await;
    let b_id = b.register(&app, "b", &["fragile"]).await;
    // Instance a restarted and no longer runs it: its heartbeats leave it out.
    let lost = wait_for("the execution to be retried", Duration::from_secs(15), || async {
        app.post(&format!("/api/v1/executors/{a_id}/heartbeat"), json!({"running_executions": []})).await;
        let execution = execution(&app, &id).await;
        (execution["attempt"] == 2).then_some(execution)
    })
    .await;
    assert!(lost["attempts"][0]["error"].as_str().is_some_and(|e| e.starts_with("lost")), "{lost}");
    assert_eq!(lost["attempts"][1]["executor_id"], b_id.as_str(), "{lost}");
    wait_for("b to receive it", Duration::from_secs(10), || async { (b.executed().len() == 1).then_some(()) }).await;

    // A deregistered instance's running work fails the same way (no retries left: it ends failed).
    let (status, _) = app
        .client
        .delete(app.url(&format!("/api/v1/executors/{b_id}")))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("sent");
    assert_eq!(status, 204);
    let failed = wait_status(&app, &id, "failed").await;
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("deregistered")), "{failed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_and_sticky_follow_the_live_state() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.expect("sqlite");
    let (a, b) = (FakeExecutor::start().await, FakeExecutor::start().await);
    let a_id = a.register(&app, "a", &["spread", "stick"]).await;
    b.register(&app, "b", &["spread", "stick"]).await;
    app.create_task(json!({"name": "spread", "load_balance_strategy": "least_loaded"})).await;
    for _ in 0..4 {
        let id = trigger(&app, "spread").await;
        wait_status(&app, &id, "running").await;
    }
    assert_eq!((a.executed().len(), b.executed().len()), (2, 2), "the less loaded instance gets each one");

    app.create_task(json!({"name": "stick", "load_balance_strategy": "sticky"})).await;
    let mut homes = Vec::new();
    for _ in 0..3 {
        let id = trigger(&app, "stick").await;
        homes.push(wait_status(&app, &id, "running").await["executor_id"].clone());
    }
    assert!(homes.windows(2).all(|pair| pair[0] == pair[1]), "sticky stays: {homes:?}");
    let home = homes[0].as_str().expect("id").to_owned();
    let (status, _) = app.put(&format!("/api/v1/executors/{home}/status"), json!({"status": "maintenance"})).await;
    assert_eq!(status, 200);
    let id = trigger(&app, "stick").await;
    let moved = wait_status(&app, &id, "running").await;
    assert_ne!(moved["executor_id"], home.as_str(), "sticky moves when its instance cannot take work");
    let _ = a_id;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_come_back_in_order_and_paginated() {
    let app = spawn_app().await;
    app.create_task(json!({"name": "chatty"})).await;
    let id = trigger(&app, "chatty").await;
    for batch in [["one", "two"], ["three", "four"]] {
        let (status, _) = app.post(&format!("/api/v1/executions/{id}/logs"), json!({"lines": batch})).await;
        assert_eq!(status, 200);
    }
    let (_, first) = app.get(&format!("/api/v1/executions/{id}/logs?limit=3")).await;
    let messages = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["message"].as_str().map(str::to_owned))
            .collect()
    };
    let first_page = messages(&first);
    assert_eq!(&first_page[..], ["one", "two", "three"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = app.get(&format!("/api/v1/executions/{id}/logs?limit=3&after={cursor}")).await;
    assert_eq!(messages(&second)[0], "four");
    let (status, _) =
        app.post("/api/v1/executions/0190f5a0-0000-7000-8000-000000000000/logs", json!({"lines": ["x"]})).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_callbacks_change_nothing() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "d-1", &["once"]).await;
    app.create_task(json!({"name": "once", "max_retry": 2})).await;
    let id = trigger(&app, "once").await;
    wait_status(&app, &id, "running").await;
    let report = json!({"status": "success", "result": {"rows": 1}});
    let (_, first) = app.post(&format!("/api/v1/executions/{id}/callback"), report.clone()).await;
    let (_, second) = app.post(&format!("/api/v1/executions/{id}/callback"), report).await;
    let (_, third) =
        app.post(&format!("/api/v1/executions/{id}/callback"), json!({"status": "failed", "error": "late"})).await;
    assert_eq!(
        (first["applied"].as_bool(), second["applied"].as_bool(), third["applied"].as_bool()),
        (Some(true), Some(false), Some(false))
    );
    let done = execution(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["result"]["rows"].as_u64(), done["retries"].as_u64()),
        (Some("success"), Some(1), Some(0))
    );
    app.stop().await;
}
