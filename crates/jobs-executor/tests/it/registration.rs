//! Registration, heartbeats and re-registration.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Semaphore;

use jobs_executor::{DeclaredTask, JobContext, JobError};

use crate::support::{FakeScheduler, dispatch_request, execute, executor, free_port, start, wait_for};

async fn echo(ctx: JobContext) -> Result<jobs_executor::Parameters, JobError> {
    Ok(ctx.parameters().clone())
}

#[tokio::test]
async fn registers_with_retry_when_the_scheduler_starts_late() {
    let port = free_port();
    let builder = executor([format!("http://127.0.0.1:{port}")])
        .declare(DeclaredTask {
            task_name: "daily_report".into(),
            cron: Some("0 0 2 * * *".into()),
            timeout: Some(300),
            ..Default::default()
        })
        .handler("daily_report", echo)
        .handler("echo", echo)
        .tag("blue");
    let handle = start(builder).await;
    // The scheduler is late: the first registration attempts are refused.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(handle.executor_id(), None);
    let fake = FakeScheduler::start_on(port).await;

    let (request, executor_id) = wait_for("a registration", || fake.registrations().pop()).await;
    assert_eq!(handle.registered().await, executor_id);
    assert_eq!(request.name, "test-group");
    assert_eq!(request.instance_id, "it-1");
    assert_eq!(request.base_url, format!("http://127.0.0.1:{}", handle.local_addr().port()));
    assert_eq!(request.health_check_url, Some(format!("{}/health", request.base_url)));
    assert_eq!(request.tags, ["blue"]);
    let tasks: Vec<(&str, Option<&str>)> =
        request.tasks.iter().map(|t| (t.task_name.as_str(), t.cron.as_deref())).collect();
    assert_eq!(tasks, [("daily_report", Some("0 0 2 * * *")), ("echo", None)]);
    assert_eq!(request.tasks[0].timeout, Some(300));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_next_scheduler_url_is_used_when_one_is_down() {
    let fake = FakeScheduler::start().await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let handle = start(executor([dead, fake.url.clone()]).handler("echo", echo)).await;
    let executor_id = handle.registered().await;
    assert_eq!(fake.registrations()[0].1, executor_id);
    handle.shutdown().await.unwrap();
    assert_eq!(fake.deregistrations(), [executor_id]);
}

#[tokio::test]
async fn a_heartbeat_answered_404_registers_again() {
    let fake = FakeScheduler::start().await;
    let handle = start(executor([fake.url.clone()]).handler("echo", echo)).await;
    let first = handle.registered().await;
    wait_for("a heartbeat", || fake.heartbeats().into_iter().find(|(id, _, known)| *id == first && *known)).await;

    fake.forget_executors();
    let (_, second) = wait_for("a second registration", || fake.registrations().get(1).cloned()).await;
    assert_ne!(first, second);
    assert!(fake.heartbeats().iter().any(|(id, _, known)| *id == first && !known));
    wait_for("a heartbeat with the new id", || {
        fake.heartbeats().into_iter().find(|(id, _, known)| *id == second && *known)
    })
    .await;
    assert_eq!(handle.executor_id(), Some(second));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeats_list_the_running_executions() {
    let fake = FakeScheduler::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let blocked = {
        let gate = gate.clone();
        move |_ctx: JobContext| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.map_err(JobError::from)?;
                Ok(())
            }
        }
    };
    let handle = start(executor([fake.url.clone()]).handler("blocked", blocked)).await;
    handle.registered().await;
    let request = dispatch_request(&fake, "blocked", json!({}));
    assert_eq!(execute(&handle, &request).await.0, 202);

    let id = request.execution_id;
    let (_, heartbeat, _) = wait_for("a heartbeat listing the execution", || {
        fake.heartbeats().into_iter().find(|(_, heartbeat, _)| heartbeat.running_executions.contains(&id))
    })
    .await;
    assert!(heartbeat.load.is_some_and(|load| load > 0.0));
    gate.add_permits(1);
    fake.callback(id).await;
    handle.shutdown().await.unwrap();
}
