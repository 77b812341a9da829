//! Group commit for the hot path: claims, "accepted" marks and finishes of executions are queued and written in
//! batches, one transaction per batch, so that a thousand fires in one second cost tens of commits, not thousands.
//!
//! A batch forms from whatever waits while the previous batches are being written: alone, a change is written at
//! once; under load, changes share commits. A failed batch (a deadlock, a lost connection) is retried change by
//! change, so one bad change fails only its own caller.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use jobs_model::{ExecutionId, ExecutionStatus, ExecutorId, Timestamp};
use jobs_storage::{Change, Store};

/// Most changes in one transaction: long enough to share commits, short enough to keep row locks brief.
const MAX_BATCH: usize = 128;
/// Batches written at once; the pool's other connections stay free for reads and the planner.
const CONCURRENT_BATCHES: usize = 3;
/// Changes waiting beyond this make callers wait for room (backpressure) rather than grow memory.
const QUEUE: usize = 16 * 1024;
/// A batch taking longer than this (a connection hung half-open) fails, so that its callers are answered.
const BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

type Reply = oneshot::Sender<Result<bool, jobs_storage::Error>>;

struct Job {
    change: Change,
    reply: Option<Reply>,
}

/// The handle the dispatcher and the callback path write through.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer on the current runtime; it stops when every handle is dropped.
    pub(crate) fn start(store: Store) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, receiver));
        Self { sender }
    }

    /// [`Store::start_attempt`], batched.
    pub(crate) async fn claim(
        &self,
        id: ExecutionId,
        attempt: u32,
        executor_id: ExecutorId,
        at: Timestamp,
        deadline: Timestamp,
    ) -> Result<bool, jobs_storage::Error> {
        self.apply(Change::Claim { id, attempt, executor_id, at, deadline }).await
    }

    /// Records that the instance took the attempt, without waiting: a callback may already have ended it, and then
    /// the mark changes nothing.
    pub(crate) async fn accepted(&self, id: ExecutionId, attempt: u32, at: Timestamp) {
        let job = Job { change: Change::Accepted { id, attempt, at }, reply: None };
        if self.sender.send(job).await.is_err() {
            tracing::warn!(execution_id = %id, "writer stopped; the attempt stays `sending` until its callback");
        }
    }

    /// [`Store::finish_attempt`], batched.
    pub(crate) async fn finish(
        &self,
        id: ExecutionId,
        attempt: u32,
        status: ExecutionStatus,
        result: Option<serde_json::Value>,
        error: Option<String>,
        at: Timestamp,
    ) -> Result<bool, jobs_storage::Error> {
        self.apply(Change::Finish { id, attempt, status, result, error, at }).await
    }

    async fn apply(&self, change: Change) -> Result<bool, jobs_storage::Error> {
        let (reply, answer) = oneshot::channel();
        let stopped = || jobs_storage::Error::Unavailable("the execution writer has stopped".to_owned());
        self.sender.send(Job { change, reply: Some(reply) }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Store, mut receiver: mpsc::Receiver<Job>) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    loop {
        // Wait for room first, so that what arrives meanwhile joins the next batch.
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let Some(first) = receiver.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            write(&store, batch).await;
            drop(permit);
        });
    }
}

async fn write(store: &Store, mut batch: Vec<Job>) {
    // One lock order for every batch: by execution, then in arrival order.
    batch.sort_by_key(|job| job.change.execution_id());
    let changes: Vec<Change> = batch.iter().map(|job| job.change.clone()).collect();
    let result = match tokio::time::timeout(BATCH_TIMEOUT, store.apply_changes(&changes)).await {
        Ok(result) => result,
        Err(_) => Err(jobs_storage::Error::Unavailable(format!("a batch of writes took over {BATCH_TIMEOUT:?}"))),
    };
    match result {
        Ok(applied) => {
            for (job, applied) in batch.into_iter().zip(applied) {
                if let Some(reply) = job.reply {
                    let _ = reply.send(Ok(applied));
                }
            }
        }
        // The database is out of reach: one by one would only wait out the outage once per change.
        Err(error) if error.kind() == jobs_model::ErrorKind::Unavailable => {
            tracing::warn!(%error, changes = batch.len(), "batched write failed: the database is unavailable");
            for job in batch {
                reply_or_log(job, Err(jobs_storage::Error::Unavailable(error.to_string())));
            }
        }
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, changes = batch.len(), "batched write failed; writing its changes one by one");
            for job in batch {
                let result = store.apply_changes(std::slice::from_ref(&job.change)).await;
                let result = result.map(|applied| applied.first().copied().unwrap_or(false));
                reply_or_log(job, result);
            }
        }
        Err(error) => {
            if let Some(job) = batch.pop() {
                reply_or_log(job, Err(error));
            }
        }
    }
}

fn reply_or_log(job: Job, result: Result<bool, jobs_storage::Error>) {
    match job.reply {
        Some(reply) => {
            let _ = reply.send(result);
        }
        None => {
            if let Err(error) = result {
                tracing::warn!(execution_id = %job.change.execution_id(), %error, "could not record a write");
            }
        }
    }
}
