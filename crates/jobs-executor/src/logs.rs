//! Log lines of running executions, batched to the scheduler in the background.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use jobs_model::ExecutionId;
use jobs_model::protocol::AppendLogsRequest;

use crate::client::SchedulerClient;

/// How long the flusher waits after a first line for more lines to send in the same batch.
const BATCH_DELAY: Duration = Duration::from_millis(50);

/// The lines an execution logged and has not sent yet.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    state: Mutex<LogState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct LogState {
    pending: Vec<String>,
    /// Set once the execution reported (or for a detached context): later lines are dropped.
    closed: bool,
}

impl LogBuffer {
    /// A buffer that keeps nothing.
    pub(crate) fn detached() -> Self {
        Self { state: Mutex::new(LogState { pending: Vec::new(), closed: true }), notify: Notify::new() }
    }

    pub(crate) fn push(&self, line: String) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.pending.push(line);
        drop(state);
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Puts lines that could not be sent back in front of the lines logged meanwhile.
    fn put_back(&self, mut lines: Vec<String>) {
        let mut state = self.lock();
        lines.append(&mut state.pending);
        state.pending = lines;
    }

    fn close(&self) -> Vec<String> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.pending)
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // The state stays consistent even if a holder panicked: every update is a single move.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background task that sends an execution's lines while it runs.
#[derive(Debug)]
pub(crate) struct LogStream {
    buffer: Arc<LogBuffer>,
    stop: oneshot::Sender<()>,
    flusher: JoinHandle<()>,
}

impl LogStream {
    /// Starts sending the lines of `buffer` to `callback_url`'s logs endpoint (or another scheduler's).
    pub(crate) fn start(
        client: Arc<SchedulerClient>,
        execution_id: ExecutionId,
        callback_url: String,
        buffer: Arc<LogBuffer>,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let flusher = tokio::spawn({
            let buffer = buffer.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = buffer.notify.notified() => {}
                        _ = &mut stopped => return,
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(BATCH_DELAY) => {}
                        _ = &mut stopped => return,
                    }
                    let lines = buffer.take();
                    if lines.is_empty() {
                        continue;
                    }
                    let body = AppendLogsRequest { lines };
                    if let Err(error) = client.append_logs(&callback_url, execution_id, &body).await {
                        tracing::debug!(%execution_id, error = %error, "log lines kept for the callback");
                        buffer.put_back(body.lines);
                    }
                }
            }
        });
        Self { buffer, stop, flusher }
    }

    /// Stops the stream and returns the lines that were not sent.
    pub(crate) async fn finish(self) -> Vec<String> {
        // The flusher may already be gone; then there is nobody to stop.
        let _ = self.stop.send(());
        if let Err(error) = self.flusher.await {
            tracing::warn!(error = %error, "log flusher failed");
        }
        self.buffer.close()
    }
}
