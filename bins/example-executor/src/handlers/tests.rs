//! Tests of the demo handlers, called with a detached context.

use serde_json::{Value, json};

use jobs_executor::{JobContext, Parameters};

use crate::handlers::{daily_report_task, echo, fail, hourly_sync, shard_report, sleep};

fn ctx(task_name: &str, parameters: Value) -> JobContext {
    let parameters: Parameters = serde_json::from_value(parameters).unwrap();
    JobContext::detached(task_name, parameters)
}

#[test]
fn daily_report_is_declared_like_the_seed() {
    let task = serde_json::to_value(daily_report_task()).unwrap();
    let seed = json!({"task_name": "daily_report", "cron": "0 0 2 * * *", "execution_mode": "sequential",
                      "load_balance_strategy": "round_robin", "timeout": 300});
    assert_eq!(task, seed);
}

#[tokio::test]
async fn echo_returns_its_parameters() {
    let result = echo(ctx("echo", json!({"a": 1, "b": "two"}))).await.unwrap();
    assert_eq!(Value::Object(result), json!({"a": 1, "b": "two"}));
}

#[tokio::test]
async fn hourly_sync_reports_source_and_target() {
    let result = hourly_sync(ctx("hourly_sync", json!({"source": "database_a", "target": "database_b"}))).await;
    assert_eq!(
        result.unwrap(),
        json!({"synced": true, "source": "database_a", "target": "database_b", "force": false})
    );
}

#[tokio::test]
async fn sleep_checks_its_seconds() {
    assert_eq!(sleep(ctx("sleep", json!({"seconds": 0}))).await.unwrap(), json!({"slept_seconds": 0.0}));
    let error = sleep(ctx("sleep", json!({"seconds": -1}))).await.unwrap_err();
    assert_eq!(error.message(), "`seconds` must be between 0 and 3600, not -1");
    let error = sleep(ctx("sleep", json!({"seconds": "ten"}))).await.unwrap_err();
    assert_eq!(error.message(), "`seconds` is not a number: \"ten\"");
}

#[tokio::test]
async fn fail_always_fails() {
    assert_eq!(fail(ctx("fail", json!({}))).await.unwrap_err().message(), "this task always fails");
    assert_eq!(fail(ctx("fail", json!({"message": "boom"}))).await.unwrap_err().message(), "boom");
}

#[tokio::test]
async fn shard_report_without_a_shard_takes_every_item() {
    let result = shard_report(ctx("shard_report", json!({"items": 10}))).await.unwrap();
    assert_eq!(result, json!({"shard": 0, "total": 1, "items": 10}));
    let error = shard_report(ctx("shard_report", json!({"items": "many"}))).await.unwrap_err();
    assert!(error.message().contains("not a whole number"), "{}", error.message());
}
