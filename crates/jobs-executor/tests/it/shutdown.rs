//! Graceful shutdown: drain, callbacks, deregistration.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use jobs_executor::{JobContext, JobError};
use jobs_model::protocol::CallbackStatus;

use crate::support::{
    Event, FakeScheduler, dispatch_request, eventually, execute, executor, free_port, start, wait_for,
};

async fn echo(ctx: JobContext) -> Result<jobs_executor::Parameters, JobError> {
    Ok(ctx.parameters().clone())
}

#[tokio::test]
async fn shutdown_waits_for_running_handlers_then_deregisters() {
    let fake = FakeScheduler::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let blocked = {
        let gate = gate.clone();
        move |_ctx: JobContext| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await?;
                Ok("done")
            }
        }
    };
    let handle = start(executor([fake.url.clone()]).handler("blocked", blocked).handler("echo", echo)).await;
    let executor_id = handle.registered().await;
    let base_url = handle.base_url().to_owned();
    let running = dispatch_request(&fake, "blocked", json!({}));
    assert_eq!(execute(&handle, &running).await.0, 202);

    let shutdown = tokio::spawn(handle.shutdown());
    let client = reqwest::Client::new();
    // Dispatches that arrive before the shutdown began just run.
    let refused = eventually("a 503", || async {
        let request = dispatch_request(&fake, "echo", json!({}));
        let response = client.post(format!("{base_url}/execute")).json(&request).send().await.unwrap();
        if response.status().as_u16() != 503 {
            return None;
        }
        Some(response.json::<serde_json::Value>().await.unwrap())
    })
    .await;
    assert_eq!(refused["error"]["code"], "shutting_down");
    assert!(fake.deregistrations().is_empty(), "deregistered while a handler still runs");
    let health = client.get(format!("{base_url}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);

    gate.add_permits(1);
    shutdown.await.unwrap().unwrap();
    let events = fake.events();
    let callback_at = events
        .iter()
        .position(|e| matches!(e, Event::Callback(id, c) if *id == running.execution_id && c.status == CallbackStatus::Success))
        .expect("a callback");
    let deregister_at = events.iter().position(|e| matches!(e, Event::Deregister(id) if *id == executor_id));
    assert!(deregister_at.is_some_and(|at| at > callback_at), "{events:?}");
    assert!(client.get(format!("{base_url}/health")).send().await.is_err(), "the server still runs");
}

#[tokio::test]
async fn shutdown_interrupts_handlers_that_outlive_the_timeout() {
    let fake = FakeScheduler::start().await;
    let forever = |_ctx: JobContext| std::future::pending::<Result<(), JobError>>();
    let builder = executor([fake.url.clone()]).handler("forever", forever).shutdown_timeout(Duration::from_millis(100));
    let handle = start(builder).await;
    let executor_id = handle.registered().await;
    let request = dispatch_request(&fake, "forever", json!({}));
    assert_eq!(execute(&handle, &request).await.0, 202);

    handle.shutdown().await.unwrap();
    let callback = fake.callbacks_for(request.execution_id).pop().expect("a callback");
    assert_eq!(callback.status, CallbackStatus::Failed);
    assert_eq!(callback.error.as_deref(), Some("interrupted: the executor instance shut down"));
    assert_eq!(fake.deregistrations(), [executor_id]);
}

#[tokio::test]
async fn shutdown_before_any_registration_returns() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let handle = start(executor([dead]).handler("echo", echo)).await;
    assert_eq!(handle.executor_id(), None);
    tokio::time::timeout(Duration::from_secs(15), handle.shutdown()).await.unwrap().unwrap();
}

#[tokio::test]
async fn run_until_serves_until_the_future_completes() {
    let fake = FakeScheduler::start().await;
    let executor = executor([fake.url.clone()]).handler("echo", echo).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(executor.run_until(listener, async {
        stopped.await.ok();
    }));
    let (_, executor_id) = wait_for("a registration", || fake.registrations().pop()).await;
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(fake.deregistrations(), [executor_id]);
}
