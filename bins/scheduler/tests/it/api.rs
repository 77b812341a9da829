//! Bad input on the seed's endpoints gets a 4xx with the error body, never a 5xx.

use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

#[track_caller]
fn check(response: (u16, Value), status: u16, code: &str, message: &str) {
    let (got, body) = response;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let text = body["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "`{text}` should contain `{message}`");
}

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn task_fields_are_validated() {
    let app = spawn_app().await;
    let task = |extra: Value| {
        let mut body = json!({"name": "t", "cron_expression": "0 0 * * * *"});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    check(
        app.post("/api/v1/tasks", task(json!({"cron_expression": "61 * * * *"}))).await,
        400,
        "invalid_input",
        "invalid cron expression `61 * * * *`",
    );
    check(app.post("/api/v1/tasks", task(json!({"timezone": "Mars/Base"}))).await, 400, "invalid_input", "Mars/Base");
    check(
        app.post("/api/v1/tasks", task(json!({"execution_mode": "serial"}))).await,
        400,
        "invalid_input",
        "invalid `execution_mode`: `serial` is not one of sequential, parallel, skip, replace",
    );
    check(
        app.post("/api/v1/tasks", task(json!({"load_balance_strategy": "fastest"}))).await,
        400,
        "invalid_input",
        "fastest",
    );
    check(
        app.post("/api/v1/tasks", task(json!({"misfire_policy": "later"}))).await,
        400,
        "invalid_input",
        "misfire_policy",
    );
    check(app.post("/api/v1/tasks", task(json!({"name": "bad name"}))).await, 400, "invalid_input", "invalid `name`");
    check(
        app.post("/api/v1/tasks", task(json!({"timeout_seconds": 0}))).await,
        400,
        "invalid_input",
        "invalid `timeout_seconds`",
    );
    check(
        app.post("/api/v1/tasks", task(json!({"max_retry": 1000}))).await,
        400,
        "invalid_input",
        "invalid `max_retry`",
    );
    check(app.post("/api/v1/tasks", task(json!({"max_retry": -1}))).await, 422, "invalid_body", "max_retry");
    check(app.post("/api/v1/tasks", task(json!({"parameters": [1, 2]}))).await, 422, "invalid_body", "parameters");
    check(app.post("/api/v1/tasks", task(json!({"colour": "red"}))).await, 422, "invalid_body", "colour");
    check(
        app.post("/api/v1/tasks", json!({"cron_expression": "* * * * *"})).await,
        400,
        "invalid_input",
        "invalid `name`: is required",
    );
    app.create_task(task(json!({}))).await;
    check(app.post("/api/v1/tasks", task(json!({}))).await, 409, "conflict", "task `t` already exists");
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_the_error_body() {
    let app = spawn_app().await;
    check(
        raw(&app, reqwest::Method::POST, "/api/v1/tasks", Some("application/json"), "{not json").await,
        400,
        "invalid_json",
        "",
    );
    check(
        raw(&app, reqwest::Method::POST, "/api/v1/tasks", None, "{}").await,
        415,
        "unsupported_media_type",
        "application/json",
    );
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    check(
        raw(&app, reqwest::Method::POST, "/api/v1/tasks", Some("application/json"), &huge).await,
        413,
        "payload_too_large",
        "",
    );
    check(app.get("/api/v1/nowhere").await, 404, "not_found", "no such route");
    check(raw(&app, reqwest::Method::DELETE, "/api/v1/executions", None, "").await, 405, "method_not_allowed", "");
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_filters_400() {
    let app = spawn_app().await;
    let unknown = "0190f5a0-0000-7000-8000-000000000000";
    check(app.post("/api/v1/tasks/nope/trigger", json!({})).await, 404, "not_found", "task `nope` not found");
    check(app.get(&format!("/api/v1/tasks/{unknown}")).await, 404, "not_found", "not found");
    check(
        app.put(&format!("/api/v1/executors/{unknown}/status"), json!({"status": "maintenance"})).await,
        404,
        "not_found",
        "not found",
    );
    check(
        app.put("/api/v1/executors/not-an-id/status", json!({"status": "maintenance"})).await,
        404,
        "not_found",
        "executor `not-an-id` not found",
    );
    check(app.get(&format!("/api/v1/executions/{unknown}")).await, 404, "not_found", "not found");
    check(
        app.post(&format!("/api/v1/executions/{unknown}/callback"), json!({"status": "success"})).await,
        404,
        "not_found",
        "not found",
    );
    check(app.get("/api/v1/executions?status=done").await, 400, "invalid_input", "invalid `status`: `done`");
    check(app.get("/api/v1/executions?limit=100000").await, 400, "invalid_input", "invalid `limit`");
    check(app.get("/api/v1/executions?limit=ten").await, 400, "invalid_input", "limit");
    check(app.get("/api/v1/executions?task_id=ghost").await, 404, "not_found", "task `ghost` not found");
    check(app.get("/api/v1/executions?from=yesterday").await, 400, "invalid_input", "invalid `from`");
    check(
        app.get("/api/v1/cron/preview?expression=*%20*%20*%20*%20*&timezone=Nowhere").await,
        400,
        "invalid_input",
        "Nowhere",
    );
    check(
        app.get("/api/v1/cron/preview?expression=*%20*%20*%20*%20*&count=0").await,
        400,
        "invalid_input",
        "invalid `count`",
    );
    check(app.get("/api/v1/cron/preview").await, 400, "invalid_input", "expression");
    app.stop().await;
}

#[tokio::test]
async fn registration_and_status_are_validated() {
    let app = spawn_app().await;
    let register = |extra: Value| {
        let mut body = json!({"name": "g", "instance_id": "i", "base_url": "http://127.0.0.1:1"});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    check(
        app.post("/api/v1/executors/register", register(json!({"base_url": "localhost:9090"}))).await,
        400,
        "invalid_input",
        "invalid `base_url`",
    );
    check(
        app.post("/api/v1/executors/register", register(json!({"name": ""}))).await,
        400,
        "invalid_input",
        "invalid `name`",
    );
    check(
        app.post("/api/v1/executors/register", register(json!({"weight": 0}))).await,
        400,
        "invalid_input",
        "invalid `weight`",
    );
    check(
        app.post("/api/v1/executors/register", register(json!({"tasks": [{"task_name": "x", "cron": "nope"}]}))).await,
        400,
        "invalid_input",
        "invalid cron expression `nope`",
    );
    check(
        app.post(
            "/api/v1/executors/register",
            register(json!({"tasks": [{"task_name": "x", "cron": "* * * * *", "execution_mode": "serial"}]})),
        )
        .await,
        400,
        "invalid_input",
        "invalid `tasks[0].execution_mode`: `serial` is not one of sequential, parallel, skip, replace",
    );
    check(
        app.post("/api/v1/executors/register", register(json!({"tasks": [{"cron": "* * * * *"}]}))).await,
        422,
        "invalid_body",
        "task_name",
    );
    let (status, registered) = app.post("/api/v1/executors/register", register(json!({}))).await;
    assert_eq!(status, 201, "{registered}");
    let id = registered["executor_id"].as_str().expect("id").to_owned();
    check(
        app.put(&format!("/api/v1/executors/{id}/status"), json!({"status": "asleep"})).await,
        400,
        "invalid_input",
        "invalid `status`: `asleep`",
    );
    let (status, back) = app.put(&format!("/api/v1/executors/{id}/status"), json!({"status": "active"})).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("active")));
    check(
        app.post(&format!("/api/v1/executions/{id}/callback"), json!({"status": "maybe"})).await,
        422,
        "invalid_body",
        "status",
    );
    app.stop().await;
}

#[tokio::test]
async fn cron_preview_answers_from_the_planner_schedule() {
    let app = spawn_app().await;
    let (status, preview) = app
        .get("/api/v1/cron/preview?expression=0%2030%202%20*%20*%20*&timezone=America/New_York&count=3&from=2026-03-07T12:00:00Z")
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["fire_times"],
        json!(["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]),
        "the skipped 02:30 runs once just after the jump"
    );
    app.stop().await;
}
