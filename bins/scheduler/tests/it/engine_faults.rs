//! Regression tests for faults the engine had under load: each names what it proves.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use jobs_model::{Execution, ExecutionId, ExecutionStatus, TaskId, Timestamp, TriggerType};
use jobs_storage::Backend;

use crate::fake_executor::FakeExecutor;
use crate::support::{TestApp, spawn_app, spawn_app_on, spawn_app_with, wait_for};

const DEADLINE: Duration = Duration::from_secs(30);

async fn trigger(app: &TestApp, task: &str) -> String {
    let (status, body) = app.post(&format!("/api/v1/tasks/{task}/trigger"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    body["execution_id"].as_str().expect("execution_id").to_owned()
}

async fn callback(app: &TestApp, execution: &str) {
    let (status, body) =
        app.post(&format!("/api/v1/executions/{execution}/callback"), json!({"status": "success"})).await;
    assert_eq!(status, 200, "{body}");
}

/// A pending row as another instance writes it: the leader learns of it from the database only.
fn pending(task: TaskId, name: &str, at: Timestamp) -> Execution {
    Execution {
        id: ExecutionId::new(),
        task_id: task,
        task_name: name.to_owned(),
        trigger_type: TriggerType::Manual,
        status: ExecutionStatus::Pending,
        scheduled_at: at,
        parameters: Default::default(),
        executor_id: None,
        attempt: 0,
        retries: 0,
        retry_at: None,
        deadline_at: None,
        created_at: at,
        started_at: None,
        finished_at: None,
        result: None,
        error: None,
        missed_slots: 0,
        upstream_execution_id: None,
        fire_id: None,
        shard: None,
        epoch: None,
    }
}

/// Twelve sequential tasks with a hundred fires queued each used to fill the leader's whole read of pending work, so
/// a trigger written by a follower waited minutes; the queue now offers only each task's head.
#[tokio::test]
async fn a_follower_trigger_is_not_starved_by_queued_sequential_fires() {
    let Some(app) = spawn_app_on(Backend::MySql).await else { return };
    let executor = FakeExecutor::start().await;
    let mut names: Vec<String> = (0..12).map(|n| format!("queued-{n}")).collect();
    names.push("urgent".to_owned());
    let declared: Vec<&str> = names.iter().map(String::as_str).collect();
    executor.register(&app, "worker", &declared).await;
    let store = app.store().expect("a MySQL store");
    let now = Timestamp::now();
    for name in &names[..12] {
        let task =
            app.create_task(json!({"name": name, "execution_mode": "sequential", "timeout_seconds": 3600})).await;
        let id = TaskId::parse(task["id"].as_str().expect("id")).expect("a task id");
        // One running (the executor never calls back), a hundred waiting behind it.
        trigger(&app, name).await;
        for _ in 0..100 {
            store.insert_execution(&pending(id, name, now)).await.expect("queued fire");
        }
    }
    wait_for("the twelve heads running", DEADLINE, || async { (executor.executed().len() == 12).then_some(()) }).await;
    let urgent = app.create_task(json!({"name": "urgent", "execution_mode": "parallel"})).await;
    let urgent_id = TaskId::parse(urgent["id"].as_str().expect("id")).expect("a task id");
    let row = pending(urgent_id, "urgent", Timestamp::now());
    store.insert_execution(&row).await.expect("a follower's trigger");
    wait_for("the follower's trigger to go out", DEADLINE, || async {
        executor.executed().iter().any(|body| body["execution_id"] == row.id.to_string()).then_some(())
    })
    .await;
    assert_eq!(executor.executed().len(), 13, "no queued sequential fire started while its head runs");
    app.stop().await;
}

/// A `skip` task whose executor never answers used to hold every worker (each fire took a worker, then waited for
/// the task's lock), so every other task stopped; now its fires wait for the task's lock without a worker.
#[tokio::test]
async fn an_unresponsive_executor_delays_only_its_own_task() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.scheduler.max_workers = 2;
        config.scheduler.dispatch_timeout = jobs_model::Duration::from_secs(60);
        config.health_check.enabled = false;
    })
    .await
    .expect("SQLite");
    // Accepts connections and never answers.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let black_hole_url = format!("http://{}", black_hole.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = black_hole.accept().await {
            connections.push(socket);
        }
    });
    let (status, body) = app
        .post(
            "/api/v1/executors/register",
            json!({"name": "stuck", "instance_id": "stuck-1", "base_url": black_hole_url, "tasks": [{"task_name": "stuck"}]}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let healthy = FakeExecutor::start().await;
    healthy.register(&app, "healthy-1", &["fine-a", "fine-b"]).await;
    app.create_task(json!({"name": "stuck", "cron_expression": "* * * * * *", "execution_mode": "skip"})).await;
    app.create_task(json!({"name": "fine-a", "cron_expression": "* * * * * *"})).await;
    app.create_task(json!({"name": "fine-b", "cron_expression": "* * * * * *", "execution_mode": "skip"})).await;
    // Ten fires of the healthy tasks while the stuck task's first send still hangs (60 s).
    wait_for("the healthy tasks to keep firing", DEADLINE, || async { (healthy.executed().len() >= 10).then_some(()) })
        .await;
    held.abort();
    app.stop().await;
}

/// Ends reached through every path are counted: a task deleted while triggers race in ends each of its executions
/// exactly once, and the metrics agree with the table.
#[tokio::test]
async fn every_end_is_counted_when_a_task_is_deleted_under_triggers() {
    let app = spawn_app().await;
    let executor = FakeExecutor::start().await;
    executor.register(&app, "worker", &["doomed"]).await;
    app.create_task(json!({"name": "doomed", "timeout_seconds": 3600})).await;
    for _ in 0..5 {
        trigger(&app, "doomed").await;
    }
    let racing: Vec<_> = (0..20)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/tasks/doomed/trigger");
            tokio::spawn(async move { client.post(url).json(&json!({})).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let deleted = app.client.delete(app.url("/api/v1/tasks/doomed?force=true")).send().await.expect("sent");
    assert_eq!(deleted.status().as_u16(), 204);
    for request in racing {
        let status = request.await.expect("joined").expect("answered");
        assert!(status == 202 || status == 404, "a trigger answered {status}");
    }
    let executions = wait_for("every execution of the deleted task to end", DEADLINE, || async {
        // The task is gone (filtering by it is a 404): every execution in this database is one of its.
        let (code, page) = app.get("/api/v1/executions?limit=500").await;
        assert_eq!(code, 200, "{page}");
        let all = page["items"].as_array().cloned().unwrap_or_default();
        all.iter().all(|execution| !matches!(execution["status"].as_str(), Some("pending" | "running"))).then_some(all)
    })
    .await;
    let mut by_status: HashMap<String, f64> = HashMap::new();
    for execution in &executions {
        *by_status.entry(execution["status"].as_str().unwrap_or_default().to_owned()).or_default() += 1.0;
    }
    assert!(by_status.get("cancelled").copied().unwrap_or(0.0) >= 5.0, "{by_status:?}");
    for status in ["cancelled", "failed", "success", "timeout", "skipped"] {
        let counted = app.metric(&format!("jobs_executions_finished_total{{status=\"{status}\"}}")).await;
        assert_eq!(counted, by_status.get(status).copied().unwrap_or(0.0), "`{status}` counted as in the table");
    }
    app.stop().await;
}

/// `least_loaded` used to count a finished run until its snapshot was reloaded, so a tie went round robin to the
/// busy instance; counts now drop as executions end.
#[tokio::test]
async fn least_loaded_never_picks_the_busy_instance() {
    let app = spawn_app().await;
    let a = FakeExecutor::start().await;
    let b = FakeExecutor::start().await;
    a.register(&app, "a", &["balanced"]).await;
    b.register(&app, "b", &["balanced"]).await;
    app.create_task(json!({"name": "balanced", "load_balance_strategy": "least_loaded", "timeout_seconds": 3600}))
        .await;
    // The first run is never called back: its instance stays busy.
    trigger(&app, "balanced").await;
    let busy = wait_for("the first run", DEADLINE, || async {
        match (a.executed().len(), b.executed().len()) {
            (1, 0) => Some(a.clone()),
            (0, 1) => Some(b.clone()),
            _ => None,
        }
    })
    .await;
    let free = if busy.base_url == a.base_url { b.clone() } else { a.clone() };
    for n in 1..=10 {
        let execution = trigger(&app, "balanced").await;
        wait_for("the run to be received", DEADLINE, || async {
            let received = busy.executed().len() + free.executed().len();
            (received == n + 1).then_some(())
        })
        .await;
        callback(&app, &execution).await;
    }
    assert_eq!(busy.executed().len(), 1, "the busy instance got no second run");
    assert_eq!(free.executed().len(), 10);
    app.stop().await;
}
