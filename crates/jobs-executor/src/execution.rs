//! One execution: hold it until its instant if it came early, start its handler, watch it, and report the
//! outcome to the scheduler.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

use jobs_model::Timestamp;
use jobs_model::protocol::{AppendLogsRequest, CallbackRequest, CallbackStatus, DispatchRequest};

use crate::backoff::Backoff;
use crate::context::JobContext;
use crate::executions::{Admission, StopReason, TaskOutput};
use crate::executor::Shared;
use crate::handler::{Handler, JobError};
use crate::logs::{LogBuffer, LogStream};

/// Attempts per callback url before the next url is tried.
const CALLBACK_ATTEMPTS_PER_URL: u32 = 3;
/// Times the whole list of callback urls is tried.
const CALLBACK_PASSES: u32 = 2;
const CALLBACK_BACKOFF_INITIAL: Duration = Duration::from_millis(200);
const CALLBACK_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a held execution that the instance dropped at shutdown is reported.
const NOT_STARTED_AT_SHUTDOWN: &str = "not started: the executor instance shut down before the scheduled time";

/// What became of a dispatch.
#[derive(Debug)]
pub(crate) enum Dispatched {
    Accepted,
    Duplicate,
    UnknownTask,
    AttemptRunning { attempt: u32 },
    Busy { running: usize },
    ShuttingDown,
}

/// Takes `request` unless the dispatch is refused: its handler starts in the background at once, or, with early
/// delivery, at `scheduled_at` by this process's clock when the fire arrived before then.
pub(crate) fn dispatch(shared: &Arc<Shared>, request: DispatchRequest) -> Dispatched {
    let Some(handler) = shared.handlers.get(&request.task_name).cloned() else {
        return Dispatched::UnknownTask;
    };
    let held = shared.early_delivery && request.scheduled_at > Timestamp::now();
    let request = Arc::new(request);
    let buffer = Arc::new(LogBuffer::default());
    let ctx = JobContext::new(request.clone(), buffer.clone());
    let spawn = || tokio::spawn(run(shared.clone(), held, handler, ctx));
    match shared.executions.admit(request.execution_id, request.attempt, held, spawn) {
        Admission::Accepted(handle) => {
            if held {
                tracing::info!(execution_id = %request.execution_id, task = %request.task_name, attempt = request.attempt, scheduled_at = %request.scheduled_at, "execution held until its instant");
            } else {
                tracing::info!(execution_id = %request.execution_id, task = %request.task_name, attempt = request.attempt, "execution started");
            }
            let logs =
                LogStream::start(shared.client.clone(), request.execution_id, request.callback_url.clone(), buffer);
            tokio::spawn(supervise(shared.clone(), request, handle, logs));
            Dispatched::Accepted
        }
        Admission::Duplicate => Dispatched::Duplicate,
        Admission::AttemptRunning { attempt } => Dispatched::AttemptRunning { attempt },
        Admission::Busy { running } => Dispatched::Busy { running },
        Admission::ShuttingDown => Dispatched::ShuttingDown,
    }
}

/// The task of one execution: if `held`, wait for its instant and start unless stopped meanwhile; then run the
/// handler within its timeout.
async fn run(shared: Arc<Shared>, held: bool, handler: Handler, ctx: JobContext) -> TaskOutput {
    if held {
        wait_until(ctx.scheduled_at()).await;
        shared.executions.start(ctx.execution_id(), ctx.attempt())?;
        tracing::info!(execution_id = %ctx.execution_id(), task = %ctx.task_name(), attempt = ctx.attempt(), "execution started");
    }
    let timeout = ctx.timeout();
    // Calling the handler inside the task makes a panic in it a `JoinError` too.
    let future = handler.call(ctx);
    let Some(limit) = timeout else {
        return Ok(future.await);
    };
    let outcome = tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| Err(JobError::new(format!("timed out after {}s", limit.as_secs()))));
    Ok(outcome)
}

/// Sleeps until this process's clock reads `at` or later, checking the clock again after each sleep in case it
/// was set back meanwhile.
async fn wait_until(at: Timestamp) {
    loop {
        let left = at.millis_since(Timestamp::now());
        if left <= 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(left.unsigned_abs())).await;
    }
}

/// Waits for the execution's task, then reports its outcome (unless the scheduler moved on) and leaves the table.
async fn supervise(
    shared: Arc<Shared>,
    request: Arc<DispatchRequest>,
    handle: JoinHandle<TaskOutput>,
    logs: LogStream,
) {
    let (id, attempt) = (request.execution_id, request.attempt);
    let joined = handle.await;
    // Let the handlers due at the same instant start before this one's report goes out: a burst of fires
    // released together starts on time, and the reports follow.
    tokio::task::yield_now().await;
    let unsent = logs.finish().await;
    let report = match joined {
        Ok(Ok(Ok(result))) => Some(CallbackRequest {
            status: CallbackStatus::Success,
            attempt: Some(attempt),
            result,
            error: None,
            logs: unsent,
        }),
        Ok(Ok(Err(error))) => Some(failed(&request, error.message().to_owned(), unsent)),
        Ok(Err(reason)) => stopped(&shared, &request, reason, unsent).await,
        Err(error) => match shared.executions.stop_reason(id, attempt) {
            Some(reason) => stopped(&shared, &request, reason, unsent).await,
            None => Some(failed(&request, join_error_message(error), unsent)),
        },
    };
    if let Some(report) = report {
        tracing::info!(execution_id = %id, task = %request.task_name, status = ?report.status, error = report.error.as_deref(), "execution finished");
        // The handler is done: its slot takes new work while the report is delivered (the outbox is bounded; past
        // it, the slot stays taken until the report is through).
        shared.executions.reporting(id, attempt);
        deliver(&shared, &request, &report).await;
    }
    shared.executions.finish(id, attempt);
}

/// The report of an execution stopped from outside: none when the scheduler already moved on, a failure when the
/// instance shuts down.
async fn stopped(
    shared: &Shared,
    request: &DispatchRequest,
    reason: StopReason,
    unsent: Vec<String>,
) -> Option<CallbackRequest> {
    let (id, task) = (request.execution_id, &request.task_name);
    match reason {
        StopReason::Cancelled => {
            tracing::info!(execution_id = %id, task = %task, "execution cancelled");
            send_remaining_logs(shared, request, unsent).await;
            None
        }
        StopReason::Superseded => {
            tracing::info!(execution_id = %id, task = %task, attempt = request.attempt, "held attempt dropped for a later one");
            None
        }
        StopReason::ShutdownWhileHeld => Some(failed(request, NOT_STARTED_AT_SHUTDOWN.to_owned(), unsent)),
        StopReason::Shutdown => {
            Some(failed(request, "interrupted: the executor instance shut down".to_owned(), unsent))
        }
    }
}

fn failed(request: &DispatchRequest, error: String, logs: Vec<String>) -> CallbackRequest {
    CallbackRequest {
        status: CallbackStatus::Failed,
        attempt: Some(request.attempt),
        result: None,
        error: Some(error),
        logs,
    }
}

fn join_error_message(error: JoinError) -> String {
    if !error.is_panic() {
        return "the handler was aborted".to_owned();
    }
    match panic_text(error.into_panic().as_ref()) {
        Some(text) => format!("handler panicked: {text}"),
        None => "handler panicked".to_owned(),
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Posts the callback to `callback_url`, retrying, then to the other scheduler instances.
async fn deliver(shared: &Shared, request: &DispatchRequest, report: &CallbackRequest) {
    let id = request.execution_id;
    let urls = shared.client.callback_urls(&request.callback_url, id);
    let mut backoff = Backoff::new(CALLBACK_BACKOFF_INITIAL, CALLBACK_BACKOFF_MAX);
    for _ in 0..CALLBACK_PASSES {
        for url in &urls {
            for attempt in 1..=CALLBACK_ATTEMPTS_PER_URL {
                let delay = backoff.next_delay();
                match shared.client.callback(url, report).await {
                    Ok(()) => return,
                    Err(error) if error.is_transient() => {
                        tracing::warn!(execution_id = %id, url = %url, attempt, error = %error, "callback failed, retrying");
                        // A scheduler that sheds load says when to come back; its answer wins over the backoff.
                        tokio::time::sleep(error.retry_after().map_or(delay, |asked| asked.max(delay))).await;
                    }
                    Err(error) => {
                        tracing::warn!(execution_id = %id, url = %url, error = %error, "callback refused");
                        return;
                    }
                }
            }
        }
    }
    tracing::error!(execution_id = %id, "callback undeliverable: no scheduler instance answered");
}

/// Best effort: the lines a cancelled handler logged after the last batch.
async fn send_remaining_logs(shared: &Shared, request: &DispatchRequest, lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let body = AppendLogsRequest { lines };
    if let Err(error) = shared.client.append_logs(&request.callback_url, request.execution_id, &body).await {
        tracing::debug!(execution_id = %request.execution_id, error = %error, "log lines of a cancelled execution dropped");
    }
}
