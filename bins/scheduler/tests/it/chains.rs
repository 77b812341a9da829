//! Task chains on every backend, with an SDK executor over HTTP: `on_success` and `on_failure` trigger their tasks
//! once per end, after retries, with the upstream's result; cycles and unknown names are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{Executor, JobContext, JobError};
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app_on, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

/// Every run by task name: its execution id, attempt and parameters.
type Runs = Arc<Mutex<Vec<(String, String, u32, Value)>>>;

/// `a` returns its run number; `b` fails its first attempt of each execution and then returns what it got from
/// upstream; `bad` always fails; `c` and `rescue` only record.
async fn chain_executor(app: &TestApp, runs: &Runs) -> jobs_executor::ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let mut builder = Executor::builder("chains").instance_id("chains-1").scheduler_urls([app.address.clone()]);
    for name in ["a", "b", "c", "bad", "rescue"] {
        let runs = runs.clone();
        builder = builder.handler(name, move |ctx: JobContext| {
            let parameters = Value::Object(ctx.parameters().clone());
            let run = {
                let mut runs = runs.lock().expect("runs");
                runs.push((name.to_owned(), ctx.execution_id().to_string(), ctx.attempt(), parameters.clone()));
                runs.iter().filter(|(task, ..)| task == name).count()
            };
            let attempt = ctx.attempt();
            async move {
                match name {
                    "a" => Ok(json!({"run": run})),
                    "b" if attempt == 1 => Err(JobError::new("b fails its first attempt")),
                    "b" => Ok(json!({"from_a": parameters["upstream"]})),
                    "bad" => Err(JobError::new("bad always fails")),
                    _ => Ok(json!({})),
                }
            }
        });
    }
    let handle = builder.build().expect("executor builds").start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

async fn execution(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every execution of a task, whatever its status.
async fn all_of(app: &TestApp, task: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/v1/executions?task_id={task}&limit=500")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn chains(backend: Backend) {
    let Some(app) = spawn_app_on(backend).await else { return };
    let runs = Runs::default();
    let executor = chain_executor(&app, &runs).await;

    for name in ["c", "rescue"] {
        app.create_task(json!({"name": name})).await;
    }
    let backoff = json!({"type": "fixed", "delay_seconds": 0});
    let b = app.create_task(json!({"name": "b", "on_success": ["c"], "max_retry": 1, "retry_backoff": backoff})).await;
    assert_eq!(b["on_success"], json!(["c"]), "{b}");
    assert_eq!(b["on_failure"], json!([]), "{b}");
    app.create_task(json!({"name": "a", "on_success": ["b"], "parameters": {"upstream": "own", "keep": 1}})).await;
    app.create_task(json!({"name": "bad", "on_success": ["c"], "on_failure": ["rescue"]})).await;

    // A cycle is refused with the cycle spelled out; so is a name that is no task.
    let (status, refused) = app.put("/api/v1/tasks/c", json!({"name": "c", "on_success": ["a"]})).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["message"], "the chains would make a cycle: c → a → b → c", "{refused}");
    let (status, refused) = app.post("/api/v1/tasks", json!({"name": "d", "on_failure": ["d"]})).await;
    assert_eq!(status, 409, "{refused}");
    let (status, refused) = app.put("/api/v1/tasks/c", json!({"name": "c", "on_success": ["nope"]})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("`nope` does not exist")), "{refused}");

    // Each run of a: b fails once and retries, then c runs exactly once.
    for _ in 0..3 {
        let (status, body) = app.post("/api/v1/tasks/a/trigger", json!({})).await;
        assert_eq!(status, 202, "{body}");
    }
    let c_runs = wait_for("three runs of c", DEADLINE, || async {
        let c = app.executions("c", "success").await;
        (c.len() >= 3).then_some(c)
    })
    .await;
    // `bad` fails: `rescue` runs, and `c` does not.
    let (status, body) = app.post("/api/v1/tasks/bad/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let rescued = wait_for("rescue", DEADLINE, || async {
        let rescued = app.executions("rescue", "success").await;
        (!rescued.is_empty()).then_some(rescued)
    })
    .await;
    assert_eq!(rescued.len(), 1);
    let bad_run = execution(&app, rescued[0]["upstream_execution_id"].as_str().expect("an upstream")).await;
    assert_eq!((bad_run["task_name"].clone(), bad_run["status"].clone()), (json!("bad"), json!("failed")));
    // The chain is written with the upstream's end, so nothing of `bad`'s can still be on its way to `c`.
    assert_eq!(all_of(&app, "c").await.len(), 3, "c runs once per successful a, and never for bad");
    assert_eq!(all_of(&app, "b").await.len(), 3, "one b per a");

    let recorded = runs.lock().expect("runs").clone();
    let attempts_of = |task: &str| -> HashMap<String, Vec<u32>> {
        let mut attempts: HashMap<String, Vec<u32>> = HashMap::new();
        for (name, id, attempt, _) in &recorded {
            if name == task {
                attempts.entry(id.clone()).or_default().push(*attempt);
            }
        }
        attempts
    };
    assert!(attempts_of("b").values().all(|attempts| attempts == &[1, 2]), "b retried once each: {recorded:?}");
    assert_eq!(attempts_of("c").len(), 3, "c ran three times: {recorded:?}");

    // Each c links back through b to an a, with the upstream's result under `parameters.upstream`.
    for c in &c_runs {
        assert_eq!(c["trigger_type"], "chain", "{c}");
        let b_run = execution(&app, c["upstream_execution_id"].as_str().expect("c has an upstream")).await;
        assert_eq!((b_run["task_name"].clone(), b_run["retries"].clone()), (json!("b"), json!(1)), "{b_run}");
        assert_eq!(c["parameters"]["upstream"], b_run["result"], "{c}");
        assert_eq!(b_run["downstream_execution_ids"], json!([c["id"].clone()]), "{b_run}");
        let a_run = execution(&app, b_run["upstream_execution_id"].as_str().expect("b has an upstream")).await;
        assert_eq!(a_run["task_name"], "a", "{a_run}");
        assert_eq!(a_run["trigger_type"], "manual", "{a_run}");
        assert_eq!(a_run["upstream_execution_id"], Value::Null, "{a_run}");
        // The upstream's result replaces the task's own `upstream` parameter; the others stay.
        assert_eq!(b_run["parameters"]["upstream"], a_run["result"], "{b_run}");
        assert_eq!(b_run["result"]["from_a"], a_run["result"], "{b_run}");
    }
    let trigger_filter = app.get("/api/v1/executions?trigger_type=chain&limit=100").await;
    assert_eq!(trigger_filter.0, 200, "{}", trigger_filter.1);
    assert_eq!(app.metric("jobs_fires_planned_total{trigger=\"chain\"}").await, 7.0, "3 b, 3 c and 1 rescue");

    // A paused downstream task is passed over.
    let (status, body) = app.post("/api/v1/tasks/rescue/pause", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post("/api/v1/tasks/bad/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let failed_id = body["execution_id"].as_str().expect("an id").to_owned();
    let failed = wait_for("bad to fail again", DEADLINE, || async {
        let failed = execution(&app, &failed_id).await;
        (failed["status"] == "failed").then_some(failed)
    })
    .await;
    assert_eq!(failed["downstream_execution_ids"], json!([]), "{failed}");
    assert_eq!(all_of(&app, "rescue").await.len(), 1);

    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_on_sqlite() {
    chains(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_on_mysql() {
    chains(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_on_postgres() {
    chains(Backend::Postgres).await;
}
