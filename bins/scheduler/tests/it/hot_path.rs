//! The hot path seen from an executor: fires claimed ahead of their instant go out early only to instances that asked
//! for it, a claimed instance that refuses passes the fire to the next one, and a first attempt that succeeds shows
//! as one attempt.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_executor::FakeExecutor;
use crate::support::{spawn_app, wait_for};

fn millis(value: &Value) -> i64 {
    value.as_str().and_then(jobs_model::Timestamp::parse_rfc3339).map_or(0, jobs_model::Timestamp::as_millis)
}

/// How much earlier than its `scheduled_at` each fire reached the executor (negative: late).
fn leads(executor: &FakeExecutor) -> Vec<i64> {
    executor
        .executed()
        .iter()
        .map(|body| millis(&body["scheduled_at"]) - body["received_at"].as_i64().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn fires_go_out_early_only_to_executors_that_ask() {
    let app = spawn_app().await;
    let early = FakeExecutor::start().await;
    early.register_with(&app, "early-1", &["early"], json!({"early_delivery_ms": 1000})).await;
    let plain = FakeExecutor::start().await;
    plain.register(&app, "plain-1", &["plain"]).await;
    for name in ["early", "plain"] {
        app.create_task(json!({"name": name, "cron_expression": "* * * * * *", "execution_mode": "parallel"})).await;
    }
    wait_for("three fires at each executor", Duration::from_secs(30), || async {
        (early.executed().len() >= 3 && plain.executed().len() >= 3).then_some(())
    })
    .await;

    let early_leads = leads(&early);
    assert!(
        early_leads.iter().any(|lead| *lead > 200),
        "an executor that registered early delivery gets fires ahead of their instant: {early_leads:?}"
    );
    assert!(early_leads.iter().all(|lead| *lead <= 1000), "never earlier than it asked: {early_leads:?}");
    let plain_leads = leads(&plain);
    assert!(plain_leads.iter().all(|lead| *lead <= 0), "the others get each fire at its instant: {plain_leads:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_early_delivery_beyond_a_minute_is_refused() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/executors/register",
            json!({"name": "fake", "instance_id": "greedy", "base_url": "http://127.0.0.1:9", "early_delivery_ms": 60_001}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("early_delivery_ms")), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_claimed_instance_that_refuses_passes_the_fire_on() {
    let app = spawn_app().await;
    let busy = FakeExecutor::start().await;
    busy.answer_execute_with(429);
    let busy_id = busy.register(&app, "busy-1", &["tick"]).await;
    let free = FakeExecutor::start().await;
    let free_id = free.register(&app, "free-1", &["tick"]).await;
    app.create_task(json!({"name": "tick", "cron_expression": "* * * * * *", "load_balance_strategy": "round_robin"}))
        .await;
    // Round robin claims every other fire for the busy instance: those reach the free one as attempt 2.
    let passed_on = wait_for("a fire refused by its claimed instance", Duration::from_secs(30), || async {
        free.executed().into_iter().find(|body| body["attempt"] == 2)
    })
    .await;
    let id = passed_on["execution_id"].as_str().expect("execution id");
    let (status, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(status, 200, "{execution}");
    let attempts = execution["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{execution}");
    assert_eq!(
        (attempts[0]["executor_id"].as_str(), attempts[0]["status"].as_str()),
        (Some(busy_id.as_str()), Some("rejected"))
    );
    assert!(attempts[0]["error"].as_str().is_some_and(|error| error.contains("busy-1")), "{execution}");
    assert_eq!(attempts[1]["executor_id"].as_str(), Some(free_id.as_str()), "{execution}");

    // The first attempts the free instance took succeed as one attempt each, with no read before the update.
    let first = wait_for("a first attempt taken by the free instance", Duration::from_secs(30), || async {
        free.executed().into_iter().find(|body| body["attempt"] == 1)
    })
    .await;
    let id = first["execution_id"].as_str().expect("execution id");
    let (status, applied) = app
        .post(
            &format!("/api/v1/executions/{id}/callback"),
            json!({"status": "success", "attempt": 1, "result": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    let (_, done) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(
        (done["status"].as_str(), done["executor_id"].as_str()),
        (Some("success"), Some(free_id.as_str())),
        "{done}"
    );
    let attempts = done["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 1, "{done}");
    assert_eq!((attempts[0]["attempt"].as_u64(), attempts[0]["status"].as_str()), (Some(1), Some("success")), "{done}");
    assert_eq!(attempts[0]["executor_id"].as_str(), Some(free_id.as_str()));
    assert_eq!(done["result"], json!({"n": 1}));
    let (status, again) = app
        .post(&format!("/api/v1/executions/{id}/callback"), json!({"status": "failed", "attempt": 1, "error": "late"}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        app.get(&format!("/api/v1/executions/{id}")).await.1["status"],
        "success",
        "a final status never changes"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_claimed_fire_cancelled_before_its_instant_is_not_sent() {
    let app = spawn_app().await;
    let plain = FakeExecutor::start().await;
    plain.register(&app, "plain-1", &["tick"]).await;
    let task = app.create_task(json!({"name": "tick", "cron_expression": "* * * * * *"})).await;
    let task_id = task["id"].as_str().expect("task id").to_owned();
    // A fire is written (claimed for the only instance) well before its instant: catch one and cancel it.
    let claimed =
        wait_for("a fire claimed ahead of its instant", Duration::from_secs(30), || async {
            let (_, page) = app.get(&format!("/api/v1/executions?task_id={task_id}&status=pending&limit=50")).await;
            let now = jobs_model::Timestamp::now().as_millis();
            page["items"].as_array().cloned().unwrap_or_default().into_iter().find(|execution| {
                execution["executor_id"].is_string() && millis(&execution["scheduled_at"]) > now + 300
            })
        })
        .await;
    let id = claimed["id"].as_str().expect("execution id");
    let (status, cancelled) = app.post(&format!("/api/v1/executions/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    let slot = millis(&claimed["scheduled_at"]);
    wait_for("two later fires", Duration::from_secs(30), || async {
        plain.executed().iter().filter(|body| millis(&body["scheduled_at"]) > slot).nth(1).map(|_| ())
    })
    .await;
    assert!(
        plain.executed().iter().all(|body| body["execution_id"].as_str() != Some(id)),
        "the cancelled fire was sent: {:?}",
        plain.executed()
    );
    let (_, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(execution["status"], "cancelled", "{execution}");
    app.stop().await;
}
