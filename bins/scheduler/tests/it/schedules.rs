//! Fixed-rate (`@every`) and one-shot (`@at`) schedules on every backend, with an SDK executor over HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use jobs_executor::{Executor, JobContext, JobError};
use jobs_model::Timestamp;
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app_on, wait_for};

type Slots = Arc<Mutex<Vec<(String, Timestamp)>>>;

/// An executor that records the task and slot of every run of `every`, `once` and `late`.
async fn recording_executor(app: &TestApp, slots: &Slots) -> jobs_executor::ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let mut builder = Executor::builder("schedules").instance_id("schedules-1").scheduler_urls([app.address.clone()]);
    for name in ["every", "once", "late"] {
        let slots = slots.clone();
        builder = builder.handler(name, move |ctx: JobContext| {
            slots.lock().expect("slots").push((name.to_owned(), ctx.scheduled_at()));
            async move { Ok::<_, JobError>(json!({})) }
        });
    }
    let handle = builder.build().expect("executor builds").start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

fn of(slots: &Slots, task: &str) -> Vec<Timestamp> {
    let slots = slots.lock().expect("slots");
    let mut of: Vec<Timestamp> = slots.iter().filter(|(name, _)| name == task).map(|(_, at)| *at).collect();
    of.sort_unstable();
    of
}

async fn every_and_at(backend: Backend) {
    let Some(app) = spawn_app_on(backend).await else { return };
    let slots = Slots::default();
    let executor = recording_executor(&app, &slots).await;

    // `@every 2s`: from the task's creation, each fire the previous one plus 2 s, whatever runs take.
    let before = Timestamp::now();
    let task =
        app.create_task(json!({"name": "every", "cron_expression": "@every 2s", "execution_mode": "parallel"})).await;
    let first = Timestamp::parse_rfc3339(task["next_fire_at"].as_str().expect("a first fire")).expect("an instant");
    let since_creation = first.millis_since(before);
    assert!((2000..3000).contains(&since_creation), "the first fire is 2 s after creation: {task}");
    let fired = wait_for("four fixed-rate fires", Duration::from_secs(30), || async {
        let fired = of(&slots, "every");
        (fired.len() >= 4).then_some(fired)
    })
    .await;
    let expected: Vec<Timestamp> = (0..fired.len() as i64).map(|k| first.add_millis(k * 2000)).collect();
    assert_eq!(fired, expected, "no drift: fire k is the first plus k periods");
    let (status, preview) =
        app.get("/api/v1/cron/preview?expression=%40every%2090s&count=2&from=2026-01-01T00:00:00Z").await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["fire_times"], json!(["2026-01-01T00:01:30+00:00", "2026-01-01T00:03:00+00:00"]));

    // `@at`: one fire at the instant, then the task is disabled and kept.
    let instant = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + 3) * 1000);
    let task = app.create_task(json!({"name": "once", "cron_expression": format!("@at {instant}")})).await;
    assert_eq!(task["next_fire_at"], json!(instant.to_string()), "{task}");
    let task_id = task["id"].as_str().expect("an id").to_owned();
    wait_for("the one-shot task to end", Duration::from_secs(30), || async {
        let (_, task) = app.get(&format!("/api/v1/tasks/{task_id}")).await;
        (task["enabled"] == json!(false)).then_some(())
    })
    .await;
    wait_for("the one-shot fire", Duration::from_secs(30), || async { (!of(&slots, "once").is_empty()).then_some(()) })
        .await;
    let (_, task) = app.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(task["next_fire_at"], json!(null), "{task}");
    assert_eq!(app.executions(&task_id, "success").await.len(), 1);
    assert_eq!(of(&slots, "once"), [instant]);

    // An instant already past is refused, unless the misfire policy fires missed slots: then it fires at once.
    let past = "@at 2026-01-01T00:00:00Z";
    let (status, refused) =
        app.post("/api/v1/tasks", json!({"name": "late", "cron_expression": past, "misfire_policy": "skip"})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|message| message.contains("has passed")), "{refused}");
    let late = app.create_task(json!({"name": "late", "cron_expression": past, "misfire_policy": "fire_once"})).await;
    assert_eq!(late["next_fire_at"], "2026-01-01T00:00:00Z", "{late}");
    wait_for("the late one-shot fire", Duration::from_secs(30), || async {
        (!of(&slots, "late").is_empty()).then_some(())
    })
    .await;

    // An instance that declares a one-shot task after its instant still registers; the task is stored disabled.
    let body = json!({
        "name": "late-declarer",
        "instance_id": "late-1",
        "base_url": "http://127.0.0.1:9",
        "tasks": [{"task_name": "new_year", "cron": past, "misfire_policy": "skip"}]
    });
    let (status, registered) = app.post("/api/v1/executors/register", body).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["created_tasks"], json!(["new_year"]), "{registered}");
    let (_, task) = app.get("/api/v1/tasks/new_year").await;
    assert_eq!((task["enabled"].clone(), task["next_fire_at"].clone()), (json!(false), json!(null)), "{task}");

    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_and_at_on_sqlite() {
    every_and_at(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_and_at_on_mysql() {
    every_and_at(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_and_at_on_postgres() {
    every_and_at(Backend::Postgres).await;
}
