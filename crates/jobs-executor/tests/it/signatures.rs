//! Credentials: with a secret the SDK signs what it sends and takes only signed `/execute` and `/cancel`.

use serde_json::{Value, json};

use jobs_executor::{ExecutorHandle, JobContext, JobError};
use jobs_model::Timestamp;
use jobs_model::protocol::{CallbackStatus, CancelRequest};
use jobs_model::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};

use crate::support::{FakeScheduler, dispatch_request, executor, start, wait_for};

const SECRET: &str = "shared-secret-for-tests";
const TOKEN: &str = "t0ken-for-tests";

async fn report(ctx: JobContext) -> Result<Value, JobError> {
    ctx.log("generating");
    Ok(json!({"rows": 42}))
}

async fn forever(_ctx: JobContext) -> Result<(), JobError> {
    std::future::pending().await
}

/// `POST {executor}{path}` with exactly `body`, signed with `secret` at `at` when given.
async fn post(handle: &ExecutorHandle, path: &str, body: &[u8], signature: Option<(&str, i64)>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", handle.base_url()))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some((secret, at)) = signature {
        request = request
            .header(TIMESTAMP_HEADER, at.to_string())
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), at, body));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The test's clock in unix seconds, as signatures take it.
fn unix_now() -> i64 {
    Timestamp::now().unix_seconds()
}

#[track_caller]
fn check_refused((status, body): (u16, Value), code: &str, message: &str) {
    assert_eq!((status, &body["error"]["code"]), (401, &json!(code)), "{body}");
    let text = body["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "`{text}` should contain `{message}`");
}

#[tokio::test]
async fn execute_and_cancel_need_the_schedulers_signature() {
    let fake = FakeScheduler::start().await;
    let handle =
        start(executor([fake.url.clone()]).secret(SECRET).handler("report", report).handler("forever", forever)).await;
    handle.registered().await;
    let request = dispatch_request(&fake, "report", json!({}));
    let body = serde_json::to_vec(&request).unwrap();

    check_refused(post(&handle, "/execute", &body, None).await, "unauthorized", "takes only signed requests");
    check_refused(
        post(&handle, "/execute", &body, Some(("not-the-secret", unix_now()))).await,
        "invalid_signature",
        "does not match",
    );
    check_refused(
        post(&handle, "/execute", &body, Some((SECRET, unix_now() - 301))).await,
        "invalid_signature",
        "away from",
    );
    check_refused(
        post(&handle, "/execute", &body, Some((SECRET, unix_now() + 301))).await,
        "invalid_signature",
        "away from",
    );
    let other = serde_json::to_vec(&dispatch_request(&fake, "report", json!({}))).unwrap();
    let at = unix_now();
    let tampered = reqwest::Client::new()
        .post(format!("{}/execute", handle.base_url()))
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, at.to_string())
        .header(SIGNATURE_HEADER, sign(SECRET.as_bytes(), at, &other))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 401);
    assert!(fake.callbacks_for(request.execution_id).is_empty(), "a refused dispatch never runs");

    assert_eq!(
        post(&handle, "/execute", &body, Some((SECRET, unix_now()))).await,
        (202, json!({"status": "accepted"}))
    );
    assert_eq!(fake.callback(request.execution_id).await.status, CallbackStatus::Success);

    let running = dispatch_request(&fake, "forever", json!({}));
    assert_eq!(
        post(&handle, "/execute", &serde_json::to_vec(&running).unwrap(), Some((SECRET, unix_now()))).await.0,
        202
    );
    let cancel = serde_json::to_vec(&CancelRequest { execution_id: running.execution_id }).unwrap();
    check_refused(post(&handle, "/cancel", &cancel, None).await, "unauthorized", "takes only signed requests");
    check_refused(
        post(&handle, "/cancel", &cancel, Some(("not-the-secret", unix_now()))).await,
        "invalid_signature",
        "",
    );
    assert_eq!(
        post(&handle, "/cancel", &cancel, Some((SECRET, unix_now()))).await,
        (200, json!({"status": "cancelled"}))
    );

    let health = reqwest::get(format!("{}/health", handle.base_url())).await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "/health needs no signature");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_request_to_the_scheduler_is_signed_and_carries_the_token() {
    let fake = FakeScheduler::start().await;
    let handle = start(executor([fake.url.clone()]).secret(SECRET).api_token(TOKEN).handler("report", report)).await;
    handle.registered().await;
    wait_for("a heartbeat", || fake.heartbeats().pop()).await;
    let request = dispatch_request(&fake, "report", json!({}));
    let body = serde_json::to_vec(&request).unwrap();
    assert_eq!(post(&handle, "/execute", &body, Some((SECRET, unix_now()))).await.0, 202);
    fake.callback(request.execution_id).await;
    handle.shutdown().await.unwrap();

    let requests = fake.requests();
    let id = request.execution_id;
    for (method, path) in [
        ("POST", "/api/v1/executors/register".to_owned()),
        ("POST", format!("/api/v1/executions/{id}/callback")),
        ("DELETE", format!("/api/v1/executors/{}", fake.registrations()[0].1)),
    ] {
        assert!(requests.iter().any(|r| r.method == method && r.path == path), "no {method} {path} in {requests:?}");
    }
    assert!(requests.iter().any(|r| r.path.ends_with("/heartbeat")), "{requests:?}");
    for request in &requests {
        let verified = verify(
            SECRET.as_bytes(),
            request.timestamp.as_deref(),
            request.signature.as_deref(),
            &request.body,
            unix_now(),
        );
        assert_eq!(verified, Ok(()), "{} {}", request.method, request.path);
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer t0ken-for-tests"),
            "{} {}",
            request.method,
            request.path
        );
    }
}

#[tokio::test]
async fn without_credentials_nothing_is_signed() {
    let fake = FakeScheduler::start().await;
    let handle = start(executor([fake.url.clone()]).handler("report", report)).await;
    handle.registered().await;
    let request = dispatch_request(&fake, "report", json!({}));
    assert_eq!(post(&handle, "/execute", &serde_json::to_vec(&request).unwrap(), None).await.0, 202);
    fake.callback(request.execution_id).await;
    handle.shutdown().await.unwrap();
    for request in fake.requests() {
        assert_eq!(
            (request.timestamp, request.signature, request.authorization),
            (None, None, None),
            "{}",
            request.path
        );
    }
}
