//! Broadcast tasks on every backend, with three SDK executor instances over HTTP: each fire runs once on every
//! active, healthy instance, each execution told its shard; maintenance shrinks the fire; a failed shard retries on
//! its own instance; `skip` skips a whole fire while a shard of the previous one runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app_on, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);
const INSTANCES: [&str; 3] = ["bc-0", "bc-1", "bc-2"];

/// Every run seen by an instance: (task, instance, execution id, attempt, shard index, shard total).
type Runs = Arc<Mutex<Vec<(String, String, String, u32, u32, u32)>>>;

/// Instance `instance` of group `bcast`: `spread` records its shard, `flaky` fails its first attempt on `bc-1`,
/// and `slow` takes 2.5 s on `bc-2`.
async fn instance(app: &TestApp, instance: &'static str, runs: &Runs) -> ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let mut builder = Executor::builder("bcast").instance_id(instance).scheduler_urls([app.address.clone()]);
    for task in ["spread", "flaky", "slow"] {
        let runs = runs.clone();
        builder = builder.handler(task, move |ctx: JobContext| {
            let shard = ctx.shard().expect("a broadcast execution knows its shard");
            runs.lock().expect("runs").push((
                task.to_owned(),
                instance.to_owned(),
                ctx.execution_id().to_string(),
                ctx.attempt(),
                shard.index,
                shard.total,
            ));
            let attempt = ctx.attempt();
            async move {
                match (task, instance) {
                    ("flaky", "bc-1") if attempt == 1 => Err(JobError::new("bc-1 fails its first attempt")),
                    ("slow", "bc-2") => {
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        Ok(json!({}))
                    }
                    _ => Ok(json!({"shard": shard.index})),
                }
            }
        });
    }
    let handle = builder.build().expect("executor builds").start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

async fn executions_of(app: &TestApp, task: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/v1/executions?task_id={task}&limit=500")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// A task's executions by fire: the fire id, or the execution's own id when it was never split.
fn fires(executions: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut fires: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for execution in executions {
        let fire = execution["fire_id"].as_str().or(execution["id"].as_str()).expect("an id").to_owned();
        fires.entry(fire).or_default().push(execution.clone());
    }
    fires
}

/// A task's executions once none is open.
async fn settled(app: &TestApp, task: &str) -> Vec<Value> {
    wait_for("the task's last fire to end", DEADLINE, || async {
        let executions = executions_of(app, task).await;
        executions.iter().all(|e| e["status"] != "pending" && e["status"] != "running").then_some(executions)
    })
    .await
}

fn shard_of(execution: &Value) -> (u64, u64) {
    (execution["shard"]["index"].as_u64().expect("an index"), execution["shard"]["total"].as_u64().expect("a total"))
}

async fn broadcast(backend: Backend) {
    let Some(app) = spawn_app_on(backend).await else { return };
    let runs = Runs::default();
    let mut executors = Vec::new();
    for name in INSTANCES {
        executors.push(instance(&app, name, &runs).await);
    }
    let (_, listed) = app.get("/api/v1/executors").await;
    let ids: BTreeMap<String, String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|executor| {
            (executor["instance_id"].as_str().unwrap().to_owned(), executor["id"].as_str().unwrap().to_owned())
        })
        .collect();

    // Every second, on all three; then bc-2 goes into maintenance and later fires have two shards.
    let body = json!({"name": "spread", "cron_expression": "* * * * * *", "load_balance_strategy": "broadcast"});
    app.create_task(body).await;
    let full = |executions: &[Value], total: usize| {
        fires(executions)
            .values()
            .filter(|shards| shards.len() == total && shards.iter().all(|s| s["status"] == "success"))
            .count()
    };
    wait_for("ten fires on three instances", DEADLINE, || async {
        (full(&executions_of(&app, "spread").await, 3) >= 10).then_some(())
    })
    .await;
    let (status, body) = app
        .put(&format!("/api/v1/executors/{}/status", ids["bc-2"]), json!({"status": "maintenance", "reason": "test"}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for("three fires on the two active instances", DEADLINE, || async {
        (full(&executions_of(&app, "spread").await, 2) >= 3).then_some(())
    })
    .await;
    let (status, body) = app.post("/api/v1/tasks/spread/pause", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let spread = settled(&app, "spread").await;
    let recorded = runs.lock().expect("runs").clone();
    let (mut of_three, mut of_two) = (0, 0);
    for (fire, shards) in fires(&spread) {
        let total = shards.len();
        assert!(total == 3 || total == 2, "fire {fire}: {shards:?}");
        let mut seen: Vec<(u64, u64)> = shards.iter().map(shard_of).collect();
        seen.sort_unstable();
        let expected: Vec<(u64, u64)> = (0..total as u64).map(|index| (index, total as u64)).collect();
        assert_eq!(seen, expected, "fire {fire} has each shard once");
        assert!(shards.iter().any(|shard| shard["id"] == fire.as_str()), "the fire id is its first shard's id");
        let slots: BTreeSet<&str> = shards.iter().map(|shard| shard["scheduled_at"].as_str().unwrap()).collect();
        assert_eq!(slots.len(), 1, "one slot per fire");
        for shard in &shards {
            assert_eq!(shard["status"], "success", "{shard}");
            // Shard i ran on the i-th instance by instance id.
            let index = shard_of(shard).0 as usize;
            let ran_on: Vec<&String> = recorded
                .iter()
                .filter(|run| run.0 == "spread" && run.2 == shard["id"].as_str().unwrap())
                .map(|run| &run.1)
                .collect();
            assert_eq!(ran_on, [INSTANCES[index]], "{shard}");
        }
        if total == 3 { of_three += 1 } else { of_two += 1 }
    }
    assert!(of_three >= 10 && of_two >= 3, "{of_three} fires of three, {of_two} of two");
    assert_eq!(
        app.metric("jobs_fires_planned_total{trigger=\"cron\"}").await as usize,
        fires(&spread).len(),
        "a fire counts once"
    );
    let (status, _) = app.put(&format!("/api/v1/executors/{}/status", ids["bc-2"]), json!({"status": "active"})).await;
    assert_eq!(status, 200);
    wait_for("bc-2 back among the candidates", DEADLINE, || async {
        let (_, candidates) = app.get(&format!("/api/v1/executors/{}", ids["bc-2"])).await;
        (candidates["status"] == "active").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A failed shard retries on its own instance; the fire ends with every shard successful.
    let backoff = json!({"type": "fixed", "delay_seconds": 0});
    let body = json!({"name": "flaky", "load_balance_strategy": "broadcast", "max_retry": 2, "retry_backoff": backoff});
    app.create_task(body).await;
    let (status, triggered) = app.post("/api/v1/tasks/flaky/trigger", json!({})).await;
    assert_eq!(status, 202, "{triggered}");
    let fire_id = triggered["execution_id"].as_str().expect("an id").to_owned();
    let flaky = wait_for("every flaky shard to succeed", DEADLINE, || async {
        let executions = executions_of(&app, "flaky").await;
        (executions.len() == 3 && executions.iter().all(|e| e["status"] == "success")).then_some(executions)
    })
    .await;
    assert!(flaky.iter().all(|e| e["fire_id"] == fire_id.as_str()), "{flaky:?}");
    let retried: Vec<&Value> = flaky.iter().filter(|e| e["retries"] == 1).collect();
    assert_eq!(retried.len(), 1, "{flaky:?}");
    assert_eq!(shard_of(retried[0]), (1, 3));
    let recorded = runs.lock().expect("runs").clone();
    let attempts: Vec<(&str, u32)> = recorded
        .iter()
        .filter(|run| run.0 == "flaky" && run.2 == retried[0]["id"].as_str().unwrap())
        .map(|run| (run.1.as_str(), run.3))
        .collect();
    assert_eq!(attempts, [("bc-1", 1), ("bc-1", 2)], "the retry stays on the shard's instance");
    // The console's history shows the fire as one line that opens into its shards.
    let page = app.client.get(app.url("/ui/tasks/flaky")).send().await.expect("request sent");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("a page");
    assert_eq!(page.matches("<details class=\"shards\">").count(), 1, "{page}");
    assert!(page.contains("3 of 3 shards"), "{page}");

    // `skip`: while bc-2's slow shard runs, the next fires are skipped whole, before they are split.
    let body = json!({"name": "slow", "cron_expression": "* * * * * *", "load_balance_strategy": "broadcast", "execution_mode": "skip"});
    app.create_task(body).await;
    wait_for("a skipped fire and two full ones", DEADLINE, || async {
        let executions = executions_of(&app, "slow").await;
        let skipped = executions.iter().filter(|e| e["status"] == "skipped").count();
        (skipped >= 2 && full(&executions, 3) >= 2).then_some(())
    })
    .await;
    let (status, body) = app.post("/api/v1/tasks/slow/pause", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let slow = settled(&app, "slow").await;
    for (fire, shards) in fires(&slow) {
        if shards.iter().any(|shard| shard["status"] == "skipped") {
            assert_eq!(shards.len(), 1, "a skipped fire is skipped whole: {fire}: {shards:?}");
            assert!(shards[0].get("shard").is_none(), "{shards:?}");
        } else {
            assert_eq!(shards.len(), 3, "{fire}: {shards:?}");
        }
    }

    for executor in executors {
        executor.shutdown().await.expect("executor stops");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_on_sqlite() {
    broadcast(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_on_mysql() {
    broadcast(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_on_postgres() {
    broadcast(Backend::Postgres).await;
}
