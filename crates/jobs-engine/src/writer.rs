//! Group commit for the hot path: claims, "accepted" marks and finishes of executions are queued and written in
//! batches, one transaction per batch, so that a thousand fires in one second cost tens of commits, not thousands.
//!
//! A batch forms from whatever waits while the previous batches are being written: alone, a change is written at
//! once; under load, changes share commits. A failed batch (a deadlock, a lost connection) is retried change by
//! change, so one bad change fails only its own caller.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use jobs_model::{ExecutionId, ExecutionStatus, ExecutorId, Timestamp};
use jobs_storage::{Change, Store};

/// Most changes in one transaction: long enough to share commits, short enough to keep row locks brief.
const MAX_BATCH: usize = 128;
/// Most first-attempt marks in one batch (one statement).
const MAX_MARKS: usize = 500;
/// Batches written at once; the pool's other connections stay free for reads and the planner.
const CONCURRENT_BATCHES: usize = 3;
/// Changes waiting beyond this make callers wait for room (backpressure) rather than grow memory.
const QUEUE: usize = 16 * 1024;
/// Changes taken off the channel into the next batches at most: the rest wait in the bounded channel, so that
/// memory stays bounded and callers feel the backpressure.
const READY: usize = MAX_BATCH * CONCURRENT_BATCHES * 2;
/// How long an executor's callback waits for room in the queue before it is answered 503 with `Retry-After`
/// (the executor keeps the result and sends it again) instead of holding its connection.
const CALLBACK_ROOM: Duration = Duration::from_secs(2);
/// A batch taking longer than this (a connection hung half-open) fails, so that its callers are answered.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a first attempt's "accepted" mark waits for its callback, which makes the mark unnecessary.
const MARK_DELAY: Duration = Duration::from_secs(1);

type Reply = oneshot::Sender<Result<bool, jobs_storage::Error>>;

struct Job {
    change: Change,
    reply: Option<Reply>,
}

/// The handle the dispatcher and the callback path write through.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Job>,
    /// Changes taken off the channel and not yet written.
    taken: Arc<std::sync::atomic::AtomicUsize>,
    /// Executions whose end waits in this writer: not to be timed out meanwhile.
    finishing: Arc<std::sync::Mutex<std::collections::HashSet<ExecutionId>>>,
}

impl Writer {
    /// Starts the writer on the current runtime; it stops when every handle is dropped.
    pub(crate) fn start(store: Store) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let taken = Arc::default();
        tokio::spawn(run(store, receiver, Arc::clone(&taken)));
        Self { sender, taken, finishing: Arc::default() }
    }

    /// Whether an end of `id` waits in this writer (reported in time, not yet written).
    pub(crate) fn is_finishing(&self, id: ExecutionId) -> bool {
        self.finishing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id)
    }

    /// Changes waiting to be written (the writer's backlog).
    pub(crate) fn backlog(&self) -> usize {
        let queued = self.sender.max_capacity() - self.sender.capacity();
        queued + self.taken.load(std::sync::atomic::Ordering::Relaxed)
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
    /// the mark changes nothing. A first attempt's mark waits a moment and is dropped if its callback comes first.
    pub(crate) async fn accepted(&self, id: ExecutionId, attempt: u32, at: Timestamp) {
        let job = Job { change: Change::Accepted { id, attempt, at }, reply: None };
        if self.sender.send(job).await.is_err() {
            tracing::warn!(execution_id = %id, "writer stopped; the attempt stays `sending` until its callback");
        }
    }

    /// [`Store::finish_attempt`], batched, with the lines reported with the end. While the backlog stays full
    /// for [`CALLBACK_ROOM`], it fails `Unavailable` (503 with `Retry-After` to the executor, which sends it again)
    /// rather than queueing without bound.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish(
        &self,
        id: ExecutionId,
        attempt: u32,
        status: ExecutionStatus,
        result: Option<serde_json::Value>,
        error: Option<String>,
        logs: Vec<String>,
        at: Timestamp,
    ) -> Result<bool, jobs_storage::Error> {
        let change = Change::Finish { id, attempt, status, result, error, logs, at };
        let (reply, answer) = oneshot::channel();
        let _finishing = Finishing::new(&self.finishing, id);
        match self.sender.send_timeout(Job { change, reply: Some(reply) }, CALLBACK_ROOM).await {
            Ok(()) => answer.await.map_err(|_| stopped())?,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(jobs_storage::Error::Unavailable(format!(
                "the scheduler's write queue is full ({} changes waiting); send the result again later",
                self.backlog()
            ))),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(stopped()),
        }
    }

    async fn apply(&self, change: Change) -> Result<bool, jobs_storage::Error> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Job { change, reply: Some(reply) }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// An end waiting in the writer, for as long as it waits.
struct Finishing<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<ExecutionId>>,
    id: ExecutionId,
}

impl<'a> Finishing<'a> {
    fn new(set: &'a std::sync::Mutex<std::collections::HashSet<ExecutionId>>, id: ExecutionId) -> Self {
        set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id);
        Self { set, id }
    }
}

impl Drop for Finishing<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

fn stopped() -> jobs_storage::Error {
    jobs_storage::Error::Unavailable("the execution writer has stopped".to_owned())
}

/// First attempts' "accepted" marks waiting for their callback, oldest first.
#[derive(Default)]
struct Held {
    order: VecDeque<(Instant, ExecutionId)>,
    jobs: HashMap<ExecutionId, Job>,
}

impl Held {
    fn hold(&mut self, id: ExecutionId, job: Job) {
        if self.jobs.insert(id, job).is_none() {
            self.order.push_back((Instant::now() + MARK_DELAY, id));
        }
    }

    /// The mark of an execution that just ended: no longer needed.
    fn drop_mark(&mut self, id: ExecutionId) {
        if let Some(job) = self.jobs.remove(&id)
            && let Some(reply) = job.reply
        {
            let _ = reply.send(Ok(false));
        }
    }

    fn next_due(&mut self) -> Option<Instant> {
        while let Some((_, id)) = self.order.front() {
            if self.jobs.contains_key(id) {
                return self.order.front().map(|(at, _)| *at);
            }
            self.order.pop_front();
        }
        None
    }

    /// The marks whose wait is over (all of them once `all`).
    fn take_due(&mut self, now: Instant, all: bool) -> Vec<Job> {
        let mut due = Vec::new();
        while let Some((at, id)) = self.order.front().copied() {
            if !all && at > now {
                break;
            }
            self.order.pop_front();
            due.extend(self.jobs.remove(&id));
        }
        due
    }
}

async fn run(store: Store, mut receiver: mpsc::Receiver<Job>, taken: Arc<std::sync::atomic::AtomicUsize>) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    let mut ready: VecDeque<Job> = VecDeque::new();
    // First attempts' marks whose wait is over: written in batches of their own, one statement each, which locks
    // its rows in id order like every other batch (mixed into a batch of single-row changes, it would not).
    let mut marks: VecDeque<Job> = VecDeque::new();
    let mut held = Held::default();
    let mut open = true;
    loop {
        taken.store(ready.len() + marks.len() + held.jobs.len(), std::sync::atomic::Ordering::Relaxed);
        // Whatever waits joins the next batches, up to `READY`; a batch goes out as soon as a connection's worth of
        // room is free.
        while ready.len() < READY
            && let Ok(job) = receiver.try_recv()
        {
            admit(job, &mut ready, &mut held);
        }
        let pending = !ready.is_empty() || !marks.is_empty();
        if pending && let Ok(permit) = permits.clone().try_acquire_owned() {
            spawn_batch(&store, &mut ready, &mut marks, permit);
            continue;
        }
        if !open && !pending {
            if held.jobs.is_empty() {
                return;
            }
            marks.extend(held.take_due(Instant::now(), true));
            continue;
        }
        let next_mark = held.next_due();
        tokio::select! {
            job = receiver.recv(), if open && ready.len() < READY => match job {
                Some(job) => admit(job, &mut ready, &mut held),
                None => open = false,
            },
            permit = permits.clone().acquire_owned(), if pending => {
                let Ok(permit) = permit else { return };
                spawn_batch(&store, &mut ready, &mut marks, permit);
            }
            () = sleep_until(next_mark), if next_mark.is_some() => {
                marks.extend(held.take_due(Instant::now(), false));
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn admit(job: Job, ready: &mut VecDeque<Job>, held: &mut Held) {
    match &job.change {
        Change::Accepted { id, attempt: 1, .. } => {
            let id = *id;
            held.hold(id, job);
        }
        Change::Finish { id, .. } => {
            held.drop_mark(*id);
            ready.push_back(job);
        }
        _ => ready.push_back(job),
    }
}

/// Writes the next batch: changes first, else first attempts' marks (never the two mixed).
fn spawn_batch(store: &Store, ready: &mut VecDeque<Job>, marks: &mut VecDeque<Job>, permit: OwnedSemaphorePermit) {
    let batch: Vec<Job> = if ready.is_empty() {
        let take = marks.len().min(MAX_MARKS);
        marks.drain(..take).collect()
    } else {
        let take = ready.len().min(MAX_BATCH);
        ready.drain(..take).collect()
    };
    let store = store.clone();
    tokio::spawn(async move {
        write(&store, batch).await;
        drop(permit);
    });
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
