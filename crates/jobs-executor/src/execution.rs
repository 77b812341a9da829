//! One execution: start its handler, watch it, and report the outcome to the scheduler.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

use jobs_model::protocol::{AppendLogsRequest, CallbackRequest, CallbackStatus, DispatchRequest};

use crate::backoff::Backoff;
use crate::context::JobContext;
use crate::executions::{Admission, StopReason};
use crate::executor::Shared;
use crate::handler::{JobError, Outcome};
use crate::logs::{LogBuffer, LogStream};

/// Attempts per callback url before the next url is tried.
const CALLBACK_ATTEMPTS_PER_URL: u32 = 3;
/// Times the whole list of callback urls is tried.
const CALLBACK_PASSES: u32 = 2;
const CALLBACK_BACKOFF_INITIAL: Duration = Duration::from_millis(200);
const CALLBACK_BACKOFF_MAX: Duration = Duration::from_secs(5);

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

/// Starts the handler of `request` in the background unless the dispatch is refused.
pub(crate) fn dispatch(shared: &Arc<Shared>, request: DispatchRequest) -> Dispatched {
    let Some(handler) = shared.handlers.get(&request.task_name).cloned() else {
        return Dispatched::UnknownTask;
    };
    let request = Arc::new(request);
    let buffer = Arc::new(LogBuffer::default());
    let ctx = JobContext::new(request.clone(), buffer.clone());
    let spawn = || {
        tokio::spawn(async move {
            let timeout = ctx.timeout();
            // Calling the handler inside the task makes a panic in it a `JoinError` too.
            let future = handler.call(ctx);
            let Some(limit) = timeout else {
                return future.await;
            };
            tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| Err(JobError::new(format!("timed out after {}s", limit.as_secs()))))
        })
    };
    match shared.executions.admit(request.execution_id, request.attempt, spawn) {
        Admission::Accepted(handle) => {
            tracing::info!(execution_id = %request.execution_id, task = %request.task_name, attempt = request.attempt, "execution started");
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

/// Waits for the handler, then reports its outcome (unless it was cancelled) and leaves the table.
async fn supervise(shared: Arc<Shared>, request: Arc<DispatchRequest>, handle: JoinHandle<Outcome>, logs: LogStream) {
    let id = request.execution_id;
    let joined = handle.await;
    let unsent = logs.finish().await;
    let report = match joined {
        Ok(Ok(result)) => Some(CallbackRequest {
            status: CallbackStatus::Success,
            attempt: Some(request.attempt),
            result,
            error: None,
            logs: unsent,
        }),
        Ok(Err(error)) => Some(failed(&request, error.message().to_owned(), unsent)),
        Err(error) => match shared.executions.stop_reason(id) {
            Some(StopReason::Cancelled) => {
                tracing::info!(execution_id = %id, task = %request.task_name, "execution cancelled");
                send_remaining_logs(&shared, &request, unsent).await;
                None
            }
            Some(StopReason::Shutdown) => {
                Some(failed(&request, "interrupted: the executor instance shut down".to_owned(), unsent))
            }
            None => Some(failed(&request, join_error_message(error), unsent)),
        },
    };
    if let Some(report) = report {
        tracing::info!(execution_id = %id, task = %request.task_name, status = ?report.status, error = report.error.as_deref(), "execution finished");
        deliver(&shared, &request, &report).await;
    }
    shared.executions.finish(id);
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
                match shared.client.callback(url, report).await {
                    Ok(()) => return,
                    Err(error) if error.is_transient() => {
                        tracing::warn!(execution_id = %id, url = %url, attempt, error = %error, "callback failed, retrying");
                    }
                    Err(error) => {
                        tracing::warn!(execution_id = %id, url = %url, error = %error, "callback refused");
                        return;
                    }
                }
                tokio::time::sleep(backoff.next_delay()).await;
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
