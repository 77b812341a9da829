//! End to end: a scheduler and an SDK executor over real HTTP; an every-second task runs and succeeds.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use jobs_executor::{Executor, JobContext, JobError};
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app_on, wait_for};

async fn tick(ctx: JobContext) -> Result<serde_json::Value, JobError> {
    ctx.log("tick ran");
    Ok(json!({ "scheduled_at": ctx.scheduled_at(), "parameters": ctx.parameters() }))
}

/// Starts an SDK executor that can run `tick` and waits until it is registered.
pub(crate) async fn start_executor(app: &TestApp, instance: &str) -> jobs_executor::ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("e2e")
        .instance_id(instance)
        .scheduler_urls([app.address.clone()])
        .handler("tick", tick)
        .build()
        .expect("executor builds");
    let handle = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

async fn every_second_task_runs(backend: Backend) {
    let Some(app) = spawn_app_on(backend).await else { return };
    let executor = start_executor(&app, "e2e-1").await;
    let task = app
        .create_task(json!({
            "name": "tick",
            "cron_expression": "* * * * * *",
            "execution_mode": "parallel",
            "load_balance_strategy": "round_robin",
            "parameters": {"answer": 42}
        }))
        .await;
    assert_eq!(task["name"], "tick");
    let task_id = task["id"].as_str().expect("task id").to_owned();

    let done = wait_for("three successful executions", Duration::from_secs(30), || async {
        let done = app.executions(&task_id, "success").await;
        (done.len() >= 3).then_some(done)
    })
    .await;

    let slots: HashSet<&str> = done.iter().map(|execution| execution["scheduled_at"].as_str().expect("slot")).collect();
    assert_eq!(slots.len(), done.len(), "one execution per slot: {done:?}");
    for execution in &done {
        assert_eq!(execution["trigger_type"], "cron");
        assert_eq!(execution["task_name"], "tick");
        assert_eq!(execution["result"]["parameters"]["answer"], 42);
        assert_eq!(execution["result"]["scheduled_at"], execution["scheduled_at"]);
        assert!(execution["executor_id"].is_string());
    }
    let id = done[0]["id"].as_str().expect("execution id");
    let (status, detail) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["attempts"][0]["status"], "success", "{detail}");
    let lines = wait_for("the streamed log line", Duration::from_secs(10), || async {
        let (_, logs) = app.get(&format!("/api/v1/executions/{id}/logs")).await;
        let lines = logs["items"].as_array().cloned().unwrap_or_default();
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(lines[0]["message"], "tick ran");

    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_task_runs_on_sqlite() {
    every_second_task_runs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_task_runs_on_mysql() {
    every_second_task_runs(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_task_runs_on_postgres() {
    every_second_task_runs(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_without_executors_fails_with_the_reason() {
    let app = crate::support::spawn_app().await;
    let task = app.create_task(json!({"name": "orphan", "cron_expression": "* * * * * *"})).await;
    let task_id = task["id"].as_str().expect("task id").to_owned();
    let failed = wait_for("a failed execution", Duration::from_secs(15), || async {
        app.executions(&task_id, "failed").await.into_iter().next()
    })
    .await;
    let error = failed["error"].as_str().expect("an error message");
    assert!(error.contains("no active healthy executor instance declared task `orphan`"), "{error}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_trigger_merges_parameters() {
    let app = crate::support::spawn_app().await;
    let executor = start_executor(&app, "e2e-manual").await;
    app.create_task(json!({"name": "tick", "parameters": {"source": "a", "force": false}})).await;
    let (status, answer) = app.post("/api/v1/tasks/tick/trigger", json!({"parameters": {"force": true}})).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["execution_id"].as_str().expect("execution id").to_owned();
    let execution = wait_for("the manual execution to succeed", Duration::from_secs(15), || async {
        let (_, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
        (execution["status"] == "success").then_some(execution)
    })
    .await;
    assert_eq!(execution["trigger_type"], "manual");
    assert_eq!(execution["parameters"], json!({"source": "a", "force": true}));
    let (_, manual) = app.get("/api/v1/executions?task_id=tick&trigger_type=manual").await;
    assert_eq!(manual["items"].as_array().map(Vec::len), Some(1));
    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}
