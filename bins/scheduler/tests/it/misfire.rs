//! Durability across a restart: slots missed while no scheduler ran are fired late within `misfire_grace`,
//! and older ones follow the task's misfire policy.

use std::time::Duration;

use serde_json::json;

use crate::support::{TestApp, spawn_app_from, test_config, wait_for};

fn config(path: &std::path::Path) -> scheduler::Config {
    let mut config = test_config(&format!("sqlite://{}?mode=rwc", path.display()));
    config.scheduler.misfire_grace = jobs_model::Duration::from_secs(2);
    config
}

async fn executions(app: &TestApp, task: &str) -> Vec<serde_json::Value> {
    let (_, page) = app.get(&format!("/api/v1/executions?task_id={task}&limit=500")).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_missed_while_down_follow_the_misfire_policy() {
    let path = std::env::temp_dir().join(format!("jobs-misfire-{}.db", uuid_like()));
    let app = spawn_app_from(config(&path)).await;
    for (name, policy) in [("once", "fire_once"), ("skipped", "skip"), ("all", "fire_all")] {
        app.create_task(json!({"name": name, "cron_expression": "* * * * * *", "misfire_policy": policy})).await;
    }
    wait_for("a first fire", Duration::from_secs(10), || async {
        (!executions(&app, "once").await.is_empty()).then_some(())
    })
    .await;
    app.stop().await;

    // Down for six seconds: four or more slots are older than the two-second grace.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let app = spawn_app_from(config(&path)).await;
    let missed = |executions: &[serde_json::Value]| executions.iter().filter(|e| e["status"] == "missed").count();
    // The new leader's first planning pass writes the catch-up of all three tasks in one batch.
    let skipped = wait_for("the restart's misfires to be recorded", Duration::from_secs(30), || async {
        let skipped = executions(&app, "skipped").await;
        (missed(&skipped) >= 2).then_some(skipped)
    })
    .await;
    assert!(missed(&skipped) >= 2, "skip records old slots as missed: {skipped:?}");
    assert_eq!(gaps(&skipped), 0, "every slot of a skip task has a row, fired or missed");
    let once = executions(&app, "once").await;
    assert_eq!(missed(&once), 0, "fire_once records nothing as missed");
    assert_eq!(gaps(&once), 1, "fire_once folds the old slots into one catch-up fire");
    let folded: u64 = once.iter().filter_map(|e| e["missed_slots"].as_u64()).sum();
    assert!(folded > 0 && folded == missing_slots(&once), "the catch-up fire counts the slots it stands for: {once:?}");
    let all = executions(&app, "all").await;
    assert_eq!(missed(&all), 0);
    assert_eq!(gaps(&all), 0, "fire_all fires every old slot");
    app.stop().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_catchup_fires_only_the_newest_late_slots_and_records_the_rest() {
    let path = std::env::temp_dir().join(format!("jobs-catchup-{}.db", uuid_like()));
    let mut config = config(&path);
    config.scheduler.misfire_grace = jobs_model::Duration::from_secs(60);
    let app = spawn_app_from(config.clone()).await;
    let (status, body) =
        app.post("/api/v1/tasks", json!({"name": "bad", "cron_expression": "* * * * * *", "max_catchup": 20000})).await;
    assert_eq!(status, 400, "{body}");
    app.create_task(json!({"name": "capped", "cron_expression": "* * * * * *", "max_catchup": 1})).await;
    let (_, task) = app.get("/api/v1/tasks/capped").await;
    assert_eq!(task["max_catchup"], 1, "{task}");
    wait_for("a first fire", Duration::from_secs(10), || async {
        (!executions(&app, "capped").await.is_empty()).then_some(())
    })
    .await;
    app.stop().await;

    // Down for six seconds, all within the grace: without the cap every slot would fire late.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let app = spawn_app_from(config).await;
    let capped = |executions: &[serde_json::Value]| {
        executions
            .iter()
            .filter(|e| {
                e["status"] == "missed" && e["error"].as_str().is_some_and(|error| error.contains("max_catchup"))
            })
            .count()
    };
    let history = wait_for("the capped catch-up to be recorded", Duration::from_secs(30), || async {
        let history = executions(&app, "capped").await;
        (capped(&history) >= 3).then_some(history)
    })
    .await;
    assert_eq!(gaps(&history), 0, "every slot has a row, fired or recorded missed: {history:?}");
    app.stop().await;
    let _ = std::fs::remove_file(&path);
}

/// The slots of `executions`, in order.
fn slots(executions: &[serde_json::Value]) -> Vec<i64> {
    let mut slots: Vec<i64> = executions
        .iter()
        .filter_map(|e| e["scheduled_at"].as_str())
        .filter_map(jobs_model::Timestamp::parse_rfc3339)
        .map(jobs_model::Timestamp::as_millis)
        .collect();
    slots.sort_unstable();
    slots
}

/// Gaps between consecutive slots (none twice: the unique key would refuse it).
fn gaps(executions: &[serde_json::Value]) -> usize {
    slots(executions).windows(2).filter(|pair| pair[1] - pair[0] != 1000).count()
}

/// Slots absent between the first and the last execution.
fn missing_slots(executions: &[serde_json::Value]) -> u64 {
    slots(executions).windows(2).map(|pair| u64::try_from((pair[1] - pair[0]) / 1000 - 1).unwrap_or(0)).sum()
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), jobs_model::Timestamp::now().as_millis())
}
