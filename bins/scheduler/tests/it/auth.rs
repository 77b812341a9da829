//! Security: `auth.api_tokens` guard `/api/v1`, `auth.executor_secret` signs both ways, `/health` stays open.

#![allow(clippy::result_large_err, reason = "figment::Jail closures return figment::Error, as its API requires")]

use std::time::Duration;

use figment::Jail;
use reqwest::Method;
use serde_json::{Value, json};

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_model::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use jobs_model::{Secret, Timestamp};
use jobs_storage::Backend;
use scheduler::Config;

use crate::support::{TestApp, spawn_app_with, wait_for};

const TOKEN: &str = "t0ken-for-tests";
const OTHER_TOKEN: &str = "another-t0ken";
const SECRET: &str = "shared-secret-for-tests";
const REGISTRATION: &str = r#"{"name":"signed","instance_id":"signed-1","base_url":"http://127.0.0.1:9"}"#;

type Headers = Vec<(&'static str, String)>;

async fn spawn(tokens: &[&str], secret: Option<&str>, configure: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.auth.api_tokens = tokens.iter().map(|token| Secret::new(*token)).collect();
        config.auth.executor_secret = secret.map(Secret::new);
        configure(config);
    })
    .await;
    app.expect("SQLite is always available")
}

/// The test's clock in unix seconds, as signatures take it.
fn unix_now() -> i64 {
    Timestamp::now().unix_seconds()
}

fn bearer(token: &str) -> Headers {
    vec![("authorization", format!("Bearer {token}"))]
}

fn signed(secret: &str, at: i64, body: &str) -> Headers {
    vec![(TIMESTAMP_HEADER, at.to_string()), (SIGNATURE_HEADER, sign(secret.as_bytes(), at, body.as_bytes()))]
}

/// `method path` with exactly `body` (JSON when not empty) and `headers`: the status and the answer.
async fn call(app: &TestApp, method: Method, path: &str, body: &str, headers: Headers) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).body(body.to_owned());
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[track_caller]
fn check_refused(response: (u16, Value), code: &str, message: &str) {
    let (status, body) = response;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let text = body["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "`{text}` should contain `{message}`");
    for secret in [TOKEN, OTHER_TOKEN, SECRET, "wrong-token"] {
        assert!(!text.contains(secret), "the answer echoes a credential: {text}");
    }
}

#[track_caller]
fn check_ok(response: (u16, Value)) -> Value {
    let (status, body) = response;
    assert!((200..300).contains(&status), "{status}: {body}");
    body
}

#[test]
fn the_auth_section_is_off_by_default_and_reads_like_any_other() {
    Jail::expect_with(|jail| {
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.auth, jobs_api::AuthConfig::default());
        jail.create_file("config.yaml", "auth:\n  api_tokens: [\"t0ken-a\"]\n")?;
        // A secret that reads as a number is refused, not turned into one; quoted, it is a string.
        jail.set_env("JOBS_AUTH__EXECUTOR_SECRET", "0123456");
        let error = Config::load(Some("config.yaml".as_ref())).expect_err("a number is not a secret").to_string();
        assert!(error.contains("AUTH.EXECUTOR_SECRET") && error.contains("quote a secret"), "{error}");
        jail.set_env("JOBS_AUTH__EXECUTOR_SECRET", "\"0123456\"");
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.auth.api_tokens, [Secret::new("t0ken-a")]);
        assert_eq!(config.auth.executor_secret, Some(Secret::new("0123456")));
        let shown = format!("{config:?}");
        assert!(!shown.contains("t0ken-a") && !shown.contains("123456"), "{shown}");
        jail.set_env("JOBS_AUTH__API_TOKENS", "[t0ken-b, t0ken-c]");
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.auth.api_tokens, [Secret::new("t0ken-b"), Secret::new("t0ken-c")]);
        Ok(())
    });
}

#[track_caller]
fn rejects(yaml: &str, expected: &str) {
    Jail::expect_with(|jail| {
        jail.create_file("bad.yaml", yaml)?;
        let error = Config::load(Some("bad.yaml".as_ref())).expect_err("the config is rejected").to_string();
        assert!(error.contains(expected), "`{error}` should mention `{expected}`");
        Ok(())
    });
}

#[test]
fn empty_credentials_are_config_errors() {
    rejects("auth:\n  api_tokens: [\"\"]\n", "auth.api_tokens[0] must not be empty");
    rejects("auth:\n  api_tokens: [ok, \"tök\"]\n", "auth.api_tokens[1] must be printable ASCII");
    rejects("auth:\n  executor_secret: \"\"\n", "auth.executor_secret must not be empty");
    rejects("auth:\n  api_token: x\n", "api_token");
}

#[tokio::test]
async fn api_tokens_guard_every_api_route_but_not_health() {
    let app = spawn(&[TOKEN, OTHER_TOKEN], None, |_| {}).await;
    let task = r#"{"name":"guarded","cron_expression":"0 0 2 * * *"}"#;
    let routes = [
        (Method::POST, "/api/v1/tasks", task),
        (Method::GET, "/api/v1/tasks", ""),
        (Method::GET, "/api/v1/tasks/guarded", ""),
        (Method::GET, "/api/v1/executors", ""),
        (Method::GET, "/api/v1/executions", ""),
        (Method::GET, "/api/v1/scheduler/status", ""),
        (Method::GET, "/api/v1/cron/preview?expression=0%200%202%20*%20*%20*&count=2", ""),
        (Method::GET, "/api/v1/openapi.json", ""),
    ];
    for (method, path, body) in routes {
        let missing = "missing `Authorization: Bearer <token>` header";
        check_refused(call(&app, method.clone(), path, body, Vec::new()).await, "unauthorized", missing);
        check_refused(
            call(&app, method.clone(), path, body, bearer("wrong-token")).await,
            "unauthorized",
            "invalid API token",
        );
        let basic = vec![("authorization", "Basic dXNlcjpwYXNz".to_owned())];
        check_refused(call(&app, method.clone(), path, body, basic).await, "unauthorized", "is not `Bearer <token>`");
        check_ok(call(&app, method, path, body, bearer(TOKEN)).await);
    }
    check_ok(call(&app, Method::GET, "/api/v1/tasks/guarded", "", bearer(OTHER_TOKEN)).await);
    // Unknown routes and methods under /api/v1 say nothing without a token.
    check_refused(call(&app, Method::GET, "/api/v1/nothing-here", "", Vec::new()).await, "unauthorized", "missing");
    check_refused(call(&app, Method::PATCH, "/api/v1/executors", "", Vec::new()).await, "unauthorized", "missing");
    assert_eq!(call(&app, Method::GET, "/api/v1/nothing-here", "", bearer(TOKEN)).await.0, 404);
    // Without `executor_secret`, a signature opens nothing.
    let signature = signed(SECRET, unix_now(), REGISTRATION);
    let register = call(&app, Method::POST, "/api/v1/executors/register", REGISTRATION, signature).await;
    check_refused(register, "unauthorized", "missing `Authorization: Bearer <token>` header");

    let (status, health) = call(&app, Method::GET, "/health", "", Vec::new()).await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");
    app.stop().await;
}

#[tokio::test]
async fn signatures_open_the_executor_routes_in_place_of_a_token() {
    let app = spawn(&[TOKEN], Some(SECRET), |config| config.server.max_body_bytes = 1024).await;
    let register = |headers: Headers| call(&app, Method::POST, "/api/v1/executors/register", REGISTRATION, headers);

    check_refused(
        register(Vec::new()).await,
        "unauthorized",
        "missing `Authorization: Bearer <token>` header or request signature",
    );
    check_refused(
        register(signed("not-the-secret", unix_now(), REGISTRATION)).await,
        "invalid_signature",
        "does not match",
    );
    check_refused(
        register(signed(SECRET, unix_now(), r#"{"name":"other"}"#)).await,
        "invalid_signature",
        "does not match",
    );
    check_refused(
        register(signed(SECRET, unix_now() - 301, REGISTRATION)).await,
        "invalid_signature",
        "away from this server's clock",
    );
    check_refused(
        register(signed(SECRET, unix_now() + 400, REGISTRATION)).await,
        "invalid_signature",
        "away from this server's clock",
    );
    let only_timestamp = vec![(TIMESTAMP_HEADER, unix_now().to_string())];
    check_refused(register(only_timestamp).await, "invalid_signature", "missing `X-Jobs-Signature` header");
    let garbled = vec![(TIMESTAMP_HEADER, "now".to_owned()), (SIGNATURE_HEADER, "sha256=00".to_owned())];
    check_refused(register(garbled).await, "invalid_signature", "`X-Jobs-Timestamp` is not a unix time");

    let registered = check_ok(register(signed(SECRET, unix_now(), REGISTRATION)).await);
    let id = registered["executor_id"].as_str().expect("executor id").to_owned();
    // A wrong token does not spoil a good signature; a token alone is enough too.
    let mut both = bearer("wrong-token");
    both.extend(signed(SECRET, unix_now(), REGISTRATION));
    check_ok(register(both).await);
    check_ok(register(bearer(TOKEN)).await);

    let heartbeat = r#"{"running_executions":[]}"#;
    let path = format!("/api/v1/executors/{id}/heartbeat");
    check_refused(call(&app, Method::POST, &path, heartbeat, Vec::new()).await, "unauthorized", "missing");
    check_refused(
        call(&app, Method::POST, &path, heartbeat, signed(SECRET, unix_now(), "{}")).await,
        "invalid_signature",
        "does not match",
    );
    check_ok(call(&app, Method::POST, &path, heartbeat, signed(SECRET, unix_now(), heartbeat)).await);

    // Callbacks and log lines: past the guard, the handler answers (the execution does not exist).
    let execution = "0190f1c4-0000-7000-8000-000000000000";
    for (path, body) in [
        (format!("/api/v1/executions/{execution}/callback"), r#"{"status":"success"}"#),
        (format!("/api/v1/executions/{execution}/logs"), r#"{"lines":["hello"]}"#),
    ] {
        check_refused(call(&app, Method::POST, &path, body, Vec::new()).await, "unauthorized", "missing");
        let (status, answer) = call(&app, Method::POST, &path, body, signed(SECRET, unix_now(), body)).await;
        assert_eq!((status, &answer["error"]["code"]), (404, &json!("not_found")), "{answer}");
    }

    // A signature opens only the executor routes.
    let tasks = call(&app, Method::GET, "/api/v1/tasks", "", signed(SECRET, unix_now(), "")).await;
    check_refused(tasks, "unauthorized", "missing `Authorization: Bearer <token>` header");
    let status = format!("/api/v1/executors/{id}/status");
    let maintenance = r#"{"status":"maintenance"}"#;
    let set_status = call(&app, Method::PUT, &status, maintenance, signed(SECRET, unix_now(), maintenance)).await;
    check_refused(set_status, "unauthorized", "missing");

    // The body a signature covers is bounded like any other.
    let large = format!(r#"{{"name":"{}"}}"#, "x".repeat(2048));
    let register_path = "/api/v1/executors/register";
    let (code, answer) = call(&app, Method::POST, register_path, &large, signed(SECRET, unix_now(), &large)).await;
    assert_eq!((code, &answer["error"]["code"]), (413, &json!("payload_too_large")), "{answer}");

    // Deregistration signs the empty body.
    let path = format!("/api/v1/executors/{id}");
    check_refused(
        call(&app, Method::DELETE, &path, "", signed(SECRET, unix_now(), "{}")).await,
        "invalid_signature",
        "",
    );
    assert_eq!(call(&app, Method::DELETE, &path, "", signed(SECRET, unix_now(), "")).await.0, 204);
    assert_eq!(call(&app, Method::GET, &path, "", bearer(TOKEN)).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_secret_alone_guards_only_the_executor_routes() {
    let app = spawn(&[], Some(SECRET), |_| {}).await;
    check_ok(call(&app, Method::GET, "/api/v1/tasks", "", Vec::new()).await);
    check_ok(call(&app, Method::GET, "/api/v1/executors", "", Vec::new()).await);
    let register = |headers: Headers| call(&app, Method::POST, "/api/v1/executors/register", REGISTRATION, headers);
    let needs_signature = "this route needs a signed request";
    check_refused(register(Vec::new()).await, "unauthorized", needs_signature);
    check_refused(register(bearer(TOKEN)).await, "unauthorized", needs_signature);
    check_refused(
        register(signed("not-the-secret", unix_now(), REGISTRATION)).await,
        "invalid_signature",
        "does not match",
    );
    let registered = check_ok(register(signed(SECRET, unix_now(), REGISTRATION)).await);
    let id = registered["executor_id"].as_str().expect("executor id");
    let path = format!("/api/v1/executors/{id}");
    check_refused(call(&app, Method::DELETE, &path, "", Vec::new()).await, "unauthorized", needs_signature);
    app.stop().await;
}

async fn work(ctx: JobContext) -> Result<Value, JobError> {
    ctx.log("signed log line");
    Ok(json!({ "n": ctx.parameters().get("n").cloned() }))
}

async fn start_executor(
    app: &TestApp,
    instance: &str,
    configure: impl FnOnce(jobs_executor::ExecutorBuilder) -> jobs_executor::ExecutorBuilder,
) -> ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let builder =
        Executor::builder("secure").instance_id(instance).scheduler_urls([app.address.clone()]).handler("work", work);
    configure(builder).build().expect("executor builds").start(listener).await.expect("executor starts")
}

async fn registered(handle: &ExecutorHandle) -> String {
    let id = tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    id.to_string()
}

/// Creates the task `work`, triggers it, and waits until its execution ends; returns the execution.
async fn run_work(app: &TestApp, token: Option<&str>) -> Value {
    let headers = || token.map(bearer).unwrap_or_default();
    check_ok(call(app, Method::POST, "/api/v1/tasks", r#"{"name":"work"}"#, headers()).await);
    let trigger = r#"{"parameters":{"n":7}}"#;
    let triggered = check_ok(call(app, Method::POST, "/api/v1/tasks/work/trigger", trigger, headers()).await);
    let id = triggered["execution_id"].as_str().expect("execution id").to_owned();
    wait_for("the execution to end", Duration::from_secs(20), || async {
        let (_, execution) = call(app, Method::GET, &format!("/api/v1/executions/{id}"), "", headers()).await;
        matches!(execution["status"].as_str(), Some("success" | "failed")).then_some(execution)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_executor_with_the_secret_runs_work_end_to_end() {
    let app = spawn(&[TOKEN], Some(SECRET), |_| {}).await;
    let executor = start_executor(&app, "secure-1", |builder| builder.secret(SECRET)).await;
    let id = registered(&executor).await;
    let path = format!("/api/v1/executors/{id}");
    let first = check_ok(call(&app, Method::GET, &path, "", bearer(TOKEN)).await)["last_heartbeat_at"].clone();
    wait_for("a signed heartbeat", Duration::from_secs(10), || async {
        let (_, view) = call(&app, Method::GET, &path, "", bearer(TOKEN)).await;
        (!view["last_heartbeat_at"].is_null() && view["last_heartbeat_at"] != first).then_some(())
    })
    .await;

    // The scheduler signs /execute, the SDK checks it, and signs its callback and log lines.
    let execution = run_work(&app, Some(TOKEN)).await;
    assert_eq!(execution["status"], "success", "{execution}");
    assert_eq!(execution["result"], json!({"n": 7}), "{execution}");
    let logs_path = format!("/api/v1/executions/{}/logs", execution["id"].as_str().expect("id"));
    wait_for("the signed log line", Duration::from_secs(10), || async {
        let (_, logs) = call(&app, Method::GET, &logs_path, "", bearer(TOKEN)).await;
        logs["items"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(|line| line["message"] == "signed log line"))
            .then_some(())
    })
    .await;

    // Deregistration on shutdown is signed too.
    executor.shutdown().await.expect("executor stops");
    assert_eq!(call(&app, Method::GET, &path, "", bearer(TOKEN)).await.0, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_executor_with_a_token_runs_work_in_a_token_only_cluster() {
    let app = spawn(&[TOKEN], None, |_| {}).await;
    let executor = start_executor(&app, "token-1", |builder| builder.api_token(TOKEN)).await;
    registered(&executor).await;
    let execution = run_work(&app, Some(TOKEN)).await;
    assert_eq!(execution["status"], "success", "{execution}");
    executor.shutdown().await.expect("executor stops");
    let (_, executors) = call(&app, Method::GET, "/api/v1/executors", "", bearer(TOKEN)).await;
    assert_eq!(executors, json!([]), "deregistered with its token");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_executor_with_a_wrong_secret_is_refused() {
    let app = spawn(&[], Some(SECRET), |_| {}).await;
    let executor = start_executor(&app, "wrong-1", |builder| builder.secret("not-the-secret")).await;
    // It keeps retrying (backoff from 100 ms), and is refused every time.
    let waited = tokio::time::timeout(Duration::from_secs(2), executor.registered()).await;
    assert!(waited.is_err(), "registered with a wrong secret");
    let (status, executors) = call(&app, Method::GET, "/api/v1/executors", "", Vec::new()).await;
    assert_eq!((status, executors), (200, json!([])));
    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_with_another_secret_refuses_the_schedulers_dispatch() {
    let app = spawn(&[TOKEN], Some(SECRET), |_| {}).await;
    // It registers with its token, but checks /execute against a different secret.
    let executor = start_executor(&app, "other-1", |builder| builder.api_token(TOKEN).secret("not-the-secret")).await;
    registered(&executor).await;
    let execution = run_work(&app, Some(TOKEN)).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    let error = execution["error"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP 401") && error.contains("invalid_signature"), "{error}");
    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}
