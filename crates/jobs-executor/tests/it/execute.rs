//! `POST /execute`, `POST /cancel` and `GET /health`: handlers, outcomes, callbacks and logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use jobs_executor::{ExecutorHandle, JobContext, JobError};
use jobs_model::protocol::CallbackStatus;

use crate::support::{
    FakeScheduler, dispatch_request, eventually, execute, executor, free_port, post_json, start, wait_for,
};

async fn report(ctx: JobContext) -> Result<Value, JobError> {
    ctx.log("generating");
    ctx.log(format!("attempt {}", ctx.attempt()));
    Ok(json!({"rows": 42}))
}

async fn fail(_ctx: JobContext) -> Result<(), JobError> {
    Err(JobError::new("the database is down"))
}

async fn panics(_ctx: JobContext) -> Result<(), JobError> {
    panic!("index out of bounds")
}

async fn forever(_ctx: JobContext) -> Result<(), JobError> {
    std::future::pending().await
}

async fn started(builder: jobs_executor::ExecutorBuilder) -> ExecutorHandle {
    let handle = start(builder).await;
    handle.registered().await;
    handle
}

#[tokio::test]
async fn a_handler_runs_and_reports_its_result_and_logs() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("report", report)).await;
    let request = dispatch_request(&fake, "report", json!({}));

    let (status, body) = execute(&handle, &request).await;
    assert_eq!((status, body), (202, json!({"status": "accepted"})));
    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Success);
    assert_eq!(callback.result, Some(json!({"rows": 42})));
    assert_eq!(callback.error, None);
    assert_eq!(fake.log_lines_for(request.execution_id), ["generating", "attempt 1"]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_handler_reports_failed() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("fail", fail)).await;
    let request = dispatch_request(&fake, "fail", json!({}));
    assert_eq!(execute(&handle, &request).await.0, 202);

    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Failed);
    assert_eq!(callback.error.as_deref(), Some("the database is down"));
    assert_eq!(callback.result, None);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_handler_reports_failed() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("panics", panics)).await;
    let request = dispatch_request(&fake, "panics", json!({}));
    assert_eq!(execute(&handle, &request).await.0, 202);

    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Failed);
    assert_eq!(callback.error.as_deref(), Some("handler panicked: index out of bounds"));
    // The executor keeps serving.
    assert_eq!(execute(&handle, &dispatch_request(&fake, "panics", json!({}))).await.0, 202);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_over_its_timeout_reports_failed() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("forever", forever)).await;
    let mut request = dispatch_request(&fake, "forever", json!({}));
    request.timeout_seconds = 1;
    assert_eq!(execute(&handle, &request).await.0, 202);

    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Failed);
    assert_eq!(callback.error.as_deref(), Some("timed out after 1s"));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_task_or_a_bad_body_is_refused() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("fail", fail)).await;

    let (status, body) = execute(&handle, &dispatch_request(&fake, "nope", json!({}))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_task");
    assert_eq!(body["error"]["message"], "task `nope` has no handler on executor instance `it-1`");

    let (status, body) = post_json(&handle, "/execute", &json!({"task_name": "fail"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_body");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_instance_answers_429() {
    let fake = FakeScheduler::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let blocked = {
        let gate = gate.clone();
        move |_ctx: JobContext| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await?;
                Ok(())
            }
        }
    };
    let handle = started(executor([fake.url.clone()]).handler("blocked", blocked).max_concurrency(1)).await;
    let first = dispatch_request(&fake, "blocked", json!({}));
    assert_eq!(execute(&handle, &first).await.0, 202);

    let (status, body) = execute(&handle, &dispatch_request(&fake, "blocked", json!({}))).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "busy");
    gate.add_permits(1);
    fake.callback(first.execution_id).await;
    assert_eq!(execute(&handle, &dispatch_request(&fake, "blocked", json!({}))).await.0, 202);
    gate.add_permits(1);
    handle.shutdown().await.unwrap();
}

/// Sets its flag when dropped, i.e. when the handler future holding it is aborted.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn cancel_aborts_the_handler_without_a_callback() {
    let fake = FakeScheduler::start().await;
    let dropped = Arc::new(AtomicBool::new(false));
    let cancellable = {
        let dropped = dropped.clone();
        move |ctx: JobContext| {
            let flag = DropFlag(dropped.clone());
            async move {
                let _flag = flag;
                ctx.log("waiting forever");
                std::future::pending::<Result<(), JobError>>().await
            }
        }
    };
    let handle = started(executor([fake.url.clone()]).handler("cancellable", cancellable)).await;
    let request = dispatch_request(&fake, "cancellable", json!({}));
    let id = request.execution_id;
    assert_eq!(execute(&handle, &request).await.0, 202);

    let cancel = json!({"execution_id": id});
    assert_eq!(post_json(&handle, "/cancel", &cancel).await, (200, json!({"status": "cancelled"})));
    wait_for("the handler to be dropped", || dropped.load(Ordering::SeqCst).then_some(())).await;
    // The execution leaves the table only after it reported (here: did not report).
    let body = eventually("the execution to leave", || async {
        let (status, body) = post_json(&handle, "/cancel", &cancel).await;
        (status == 404).then_some(body)
    })
    .await;
    assert_eq!(body["error"]["code"], "unknown_execution");
    assert!(fake.callbacks_for(id).is_empty());
    assert_eq!(fake.log_lines_for(id), ["waiting forever"]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_callback_goes_to_another_scheduler_when_the_callback_url_is_down() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("fail", fail)).await;
    let mut request = dispatch_request(&fake, "fail", json!({}));
    let dead = format!("http://127.0.0.1:{}", free_port());
    request.callback_url = format!("{dead}/api/v1/executions/{}/callback", request.execution_id);
    assert_eq!(execute(&handle, &request).await.0, 202);

    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Failed);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_answers_ok() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("fail", fail)).await;
    let response = reqwest::get(format!("{}/health", handle.base_url())).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    handle.shutdown().await.unwrap();
}

/// A scheduler that sheds a callback with `Retry-After` is waited on that long, and the finished handler's slot
/// takes new work meanwhile: the report waits in the outbox, not in the slot.
#[tokio::test]
async fn a_shed_callback_waits_as_asked_without_holding_its_slot() {
    let fake = FakeScheduler::start().await;
    let handle = started(executor([fake.url.clone()]).handler("report", report).max_concurrency(1)).await;
    fake.shed_callbacks(1);
    let first = dispatch_request(&fake, "report", json!({}));
    assert_eq!(execute(&handle, &first).await.0, 202);
    wait_for("the first callback to be refused", || fake.callback_arrivals(first.execution_id).first().copied()).await;

    // Its report is not through yet, and the one slot is free again.
    assert!(fake.callbacks_for(first.execution_id).is_empty());
    let second = dispatch_request(&fake, "report", json!({}));
    assert_eq!(execute(&handle, &second).await.0, 202, "the slot was given back while the report waits");
    let repeat = execute(&handle, &first).await;
    assert_eq!(repeat, (202, json!({"status": "duplicate"})), "the first is still known: a repeat is a duplicate");

    let report = fake.callback(first.execution_id).await;
    assert_eq!(report.status, CallbackStatus::Success);
    let arrivals = fake.callback_arrivals(first.execution_id);
    assert!(
        arrivals[1] - arrivals[0] >= std::time::Duration::from_millis(950),
        "Retry-After: 1 honoured: {arrivals:?}"
    );
    fake.callback(second.execution_id).await;
    handle.shutdown().await.unwrap();
}
