//! The executor registry through the API: health thresholds, maintenance, deregistration, heartbeat timeouts,
//! and an SDK executor that rides out a scheduler restart on a fresh database.

use std::time::Duration;

use serde_json::{Value, json};

use jobs_storage::Backend;

use crate::fake_executor::FakeExecutor;
use crate::support::{TestApp, spawn_app, spawn_app_from, spawn_app_with, test_config, wait_for};

async fn executor(app: &TestApp, id: &str) -> Value {
    let (status, executor) = app.get(&format!("/api/v1/executors/{id}")).await;
    assert_eq!(status, 200, "{executor}");
    executor
}

/// Triggers `task` and waits until it was dispatched (`running`: a fake executor never calls back) or failed.
async fn run_once(app: &TestApp, task: &str) -> Value {
    let (status, triggered) = app.post(&format!("/api/v1/tasks/{task}/trigger"), json!({})).await;
    assert_eq!(status, 202, "{triggered}");
    let id = triggered["execution_id"].as_str().expect("execution id").to_owned();
    wait_for("the execution to be dispatched", Duration::from_secs(10), || async {
        let (_, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
        (execution["status"] != "pending").then_some(execution)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_mark_unhealthy_and_healthy_again() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.health_check.interval = jobs_model::Duration::from_millis(200);
        config.health_check.timeout = jobs_model::Duration::from_millis(500);
        config.health_check.failure_threshold = 2;
        config.health_check.recovery_threshold = 3;
    })
    .await
    .expect("sqlite");
    let fake = FakeExecutor::start().await;
    let id = fake.register(&app, "fake-1", &["work"]).await;
    app.create_task(json!({"name": "work"})).await;

    fake.set_healthy(false);
    let down = wait_for("the instance to turn unhealthy", Duration::from_secs(10), || async {
        let executor = executor(&app, &id).await;
        (executor["health"] == "unhealthy").then_some(executor)
    })
    .await;
    assert!(down["consecutive_failures"].as_u64().is_some_and(|failures| failures >= 2), "{down}");
    let failed = run_once(&app, "work").await;
    assert_eq!(failed["status"], "failed", "an unhealthy instance gets no work: {failed}");

    fake.set_healthy(true);
    wait_for("the instance to recover", Duration::from_secs(10), || async {
        (executor(&app, &id).await["health"] == "healthy").then_some(())
    })
    .await;
    let done = run_once(&app, "work").await;
    assert_eq!(done["status"], "running", "the recovered instance takes work again: {done}");
    assert_eq!(fake.executed().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_excludes_an_instance_until_it_is_active_again() {
    let app = spawn_app().await;
    let (first, second) = (FakeExecutor::start().await, FakeExecutor::start().await);
    let first_id = first.register(&app, "fake-1", &["work"]).await;
    second.register(&app, "fake-2", &["work"]).await;
    app.create_task(json!({"name": "work", "load_balance_strategy": "round_robin"})).await;

    let (status, changed) = app
        .put(
            &format!("/api/v1/executors/{first_id}/status"),
            json!({"status": "maintenance", "reason": "kernel upgrade", "by": "ops"}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["status"].as_str(), changed["status_changed_by"].as_str()), (Some("maintenance"), Some("ops")));
    assert!(changed["status_changed_at"].is_string());
    for _ in 0..4 {
        run_once(&app, "work").await;
    }
    wait_for("four executions on the active instance", Duration::from_secs(10), || async {
        (second.executed().len() == 4).then_some(())
    })
    .await;
    assert_eq!(first.executed().len(), 0, "maintenance takes no new work");
    let (_, listed) = app.get("/api/v1/executors?status=maintenance").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let (status, _) = app.put(&format!("/api/v1/executors/{first_id}/status"), json!({"status": "active"})).await;
    assert_eq!(status, 200);
    for _ in 0..4 {
        run_once(&app, "work").await;
    }
    wait_for("all eight executions delivered", Duration::from_secs(10), || async {
        (first.executed().len() + second.executed().len() == 8).then_some(())
    })
    .await;
    assert_eq!(first.executed().len(), 2, "back to active, round robin reaches it again");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_instance_is_gone() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    let id = fake.register(&app, "fake-1", &["work"]).await;
    app.create_task(json!({"name": "work"})).await;
    let (status, _) = app
        .client
        .delete(app.url(&format!("/api/v1/executors/{id}")))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("sent");
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/api/v1/executors/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = app.post(&format!("/api/v1/executors/{id}/heartbeat"), json!({"running_executions": []})).await;
    assert_eq!(status, 404, "a heartbeat from a forgotten instance says so, so that the SDK registers again");
    assert_eq!(run_once(&app, "work").await["status"], "failed");
    assert!(fake.executed().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_heartbeats_goes_offline() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.executors.offline_after = jobs_model::Duration::from_secs(1);
    })
    .await
    .expect("sqlite");
    let fake = FakeExecutor::start().await;
    let id = fake.register(&app, "silent", &["work"]).await;
    app.create_task(json!({"name": "work"})).await;
    assert_eq!(executor(&app, &id).await["status"], "active");
    wait_for("the instance to go offline", Duration::from_secs(10), || async {
        (executor(&app, &id).await["status"] == "offline").then_some(())
    })
    .await;
    let (_, offline) = app.get("/api/v1/executors?status=offline").await;
    assert_eq!(offline.as_array().map(Vec::len), Some(1));
    assert_eq!(run_once(&app, "work").await["status"], "failed", "an offline instance gets no work");
    let (status, _) = app.post(&format!("/api/v1/executors/{id}/heartbeat"), json!({"running_executions": []})).await;
    assert_eq!(status, 200);
    assert_eq!(executor(&app, &id).await["status"], "active", "a heartbeat brings it back");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_registers_again_after_a_restart_on_a_fresh_database() {
    let first = spawn_app().await;
    let port: u16 = first.address.rsplit(':').next().and_then(|port| port.parse().ok()).expect("port");
    let handle = crate::e2e::start_executor(&first, "survivor").await;
    first.stop().await;

    // Same address, empty database: the SDK's next heartbeat gets 404 and it registers again.
    let mut config = test_config("sqlite::memory:");
    config.server.port = port;
    let second = spawn_app_from(config).await;
    let executors = wait_for("the executor to register with the new scheduler", Duration::from_secs(20), || async {
        let (_, executors) = second.get("/api/v1/executors").await;
        executors.as_array().filter(|list| !list.is_empty()).cloned()
    })
    .await;
    assert_eq!(executors[0]["instance_id"], "survivor");
    handle.shutdown().await.expect("executor stops");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_instance_is_passed_over() {
    let app = spawn_app().await;
    let (busy, free) = (FakeExecutor::start().await, FakeExecutor::start().await);
    busy.answer_execute_with(503);
    busy.register(&app, "busy", &["work"]).await;
    free.register(&app, "free", &["work"]).await;
    app.create_task(json!({"name": "work", "load_balance_strategy": "round_robin"})).await;
    for _ in 0..4 {
        assert_eq!(run_once(&app, "work").await["status"], "running");
    }
    wait_for("every execution to end on the free instance", Duration::from_secs(10), || async {
        (free.executed().len() == 4).then_some(())
    })
    .await;
    busy.answer_execute_with(429);
    free.answer_execute_with(503);
    let (_, triggered) = app.post("/api/v1/tasks/work/trigger", json!({})).await;
    let id = triggered["execution_id"].as_str().expect("execution id").to_owned();
    let failed = wait_for("the execution to fail", Duration::from_secs(10), || async {
        let (_, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
        (execution["status"] == "failed").then_some(execution)
    })
    .await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("busy (HTTP 429)") && error.contains("busy (HTTP 503)"), "{error}");
    app.stop().await;
}

/// A heartbeat of an instance holding tens of thousands of executions is taken, past the API's usual body limit:
/// refused, the instance would turn offline with all its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_listing_many_executions_is_taken() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    let id = fake.register(&app, "fake-busy", &["work"]).await;
    let running: Vec<String> = (0..60_000).map(|_| jobs_model::ExecutionId::new().to_string()).collect();
    let (status, body) =
        app.post(&format!("/api/v1/executors/{id}/heartbeat"), json!({"running_executions": running})).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}
