//! Every call of the seed README, with its bodies verbatim, answers 2xx.

use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn the_seed_readme_calls_work_as_written() {
    let app = spawn_app().await;

    let (status, registered) = app
        .post(
            "/api/v1/executors/register",
            json!({
              "name": "data-processor",
              "instance_id": "executor-001",
              "base_url": "http://localhost:9090",
              "health_check_url": "http://localhost:9090/health",
              "tasks": [
                {
                  "task_name": "daily_report",
                  "cron": "0 0 2 * * *",
                  "execution_mode": "sequential",
                  "load_balance_strategy": "round_robin",
                  "timeout": 300
                }
              ]
            }),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let executor_id = registered["executor_id"].as_str().expect("executor_id").to_owned();
    assert!(registered["heartbeat_interval_seconds"].as_u64().is_some_and(|s| s >= 1));
    assert_eq!(registered["created_tasks"], json!(["daily_report"]));

    let (status, daily) = app.get("/api/v1/tasks/daily_report").await;
    assert_eq!(status, 200);
    assert_eq!(daily["execution_mode"], "sequential");
    assert_eq!(daily["timeout_seconds"], 300);
    assert_eq!(daily["cron_expression"], "0 0 2 * * *");

    let task = app
        .create_task(json!({
          "name": "hourly_sync",
          "cron_expression": "0 0 * * * *",
          "execution_mode": "parallel",
          "load_balance_strategy": "least_loaded",
          "max_retry": 3,
          "timeout_seconds": 600,
          "parameters": {
            "source": "database_a",
            "target": "database_b"
          }
        }))
        .await;
    let task_id = task["id"].as_str().expect("task id").to_owned();
    assert!(task["next_fire_at"].is_string());

    let (status, triggered) =
        app.post(&format!("/api/v1/tasks/{task_id}/trigger"), json!({"parameters": {"force": true}})).await;
    assert_eq!(status, 202, "{triggered}");
    assert!(triggered["execution_id"].is_string());

    let (status, history) = app.get(&format!("/api/v1/executions?task_id={task_id}&status=success&limit=10")).await;
    assert_eq!(status, 200, "{history}");
    assert!(history["items"].is_array());

    let (status, changed) = app
        .put(&format!("/api/v1/executors/{executor_id}/status"), json!({"status": "maintenance", "reason": "系统升级"}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["status"], "maintenance");
    assert_eq!(changed["status_reason"], "系统升级");

    let (status, cluster) = app.get("/api/v1/scheduler/status").await;
    assert_eq!(status, 200);
    assert_eq!(cluster["role"], "leader");
    assert_eq!(cluster["instances"].as_array().map(Vec::len), Some(1), "{cluster}");

    let (status, executors) = app.get("/api/v1/executors").await;
    assert_eq!(status, 200);
    assert_eq!(executors[0]["instance_id"], "executor-001");
    assert_eq!(executors[0]["tasks"], json!(["daily_report"]));

    let (status, again) = app
        .post(
            "/api/v1/executors/register",
            json!({"name": "data-processor", "instance_id": "executor-001", "base_url": "http://localhost:9090",
                   "tasks": [{"task_name": "daily_report", "cron": "*/5 * * * * *"}]}),
        )
        .await;
    assert_eq!(status, 200, "registering again is idempotent: {again}");
    assert_eq!(again["executor_id"], executor_id.as_str());
    assert_eq!(again["existing_tasks"], json!(["daily_report"]));
    let (_, daily) = app.get("/api/v1/tasks/daily_report").await;
    assert_eq!(daily["cron_expression"], "0 0 2 * * *", "a registration never overwrites a task");

    let (status, health) = app.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    app.stop().await;
}
