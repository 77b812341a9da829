//! The bench's plain executor (used by `burst` and `overload`): a minimal HTTP/1.1 server on loopback, not the
//! SDK (which takes an execution id it already has without a word), that registers, heartbeats, records every
//! `/execute` it receives, answers 202 at once and reports success from a spawned task.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use jobs_model::protocol::{DispatchRequest, RegisterResponse};
use jobs_model::{ExecutionId, Timestamp};

use crate::bench::support::Sample;
use crate::procs::{client, client_with_timeout, now_us, post};

/// Callbacks in flight at once.
const CALLBACKS: usize = 64;
/// Tries of one callback before it counts as failed.
const CALLBACK_TRIES: u32 = 4;
/// The largest request body the executor reads.
const MAX_BODY: usize = 1 << 20;

/// How the executor registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration<'a> {
    /// The executor group.
    pub(crate) name: &'a str,
    pub(crate) instance_id: &'a str,
    /// The `max_concurrency` it declares; `None` declares none (no limit).
    pub(crate) max_concurrency: Option<u32>,
}

/// One `/execute` as the executor received it.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) execution_id: ExecutionId,
    pub(crate) attempt: u32,
    pub(crate) task: Arc<str>,
    pub(crate) scheduled_at: Timestamp,
    /// Microseconds since the epoch, when the request's body had been read.
    pub(crate) received_us: i64,
}

impl Delivery {
    /// Receipt minus `scheduled_at`, in microseconds.
    pub(crate) fn lateness_us(&self) -> i64 {
        self.received_us - self.scheduled_at.as_millis() * 1000
    }
}

/// Deliveries sorted into first receipts and fires sent twice.
#[derive(Debug, Default)]
pub(crate) struct Sends {
    /// The first receipt of each execution, in the order received.
    pub(crate) first: Vec<Delivery>,
    /// Requests for an execution already received.
    pub(crate) same_execution: usize,
    /// Executions at attempt 1 beyond the first for a (task, scheduled_at).
    pub(crate) another_execution: usize,
}

impl Sends {
    pub(crate) fn of(received: &[Delivery]) -> Self {
        let mut sends = Self::default();
        let mut executions: HashSet<ExecutionId> = HashSet::new();
        let mut slots: HashMap<(Arc<str>, Timestamp), HashSet<ExecutionId>> = HashMap::new();
        for delivery in received {
            if delivery.attempt == 1 {
                slots.entry((delivery.task.clone(), delivery.scheduled_at)).or_default().insert(delivery.execution_id);
            }
            if executions.insert(delivery.execution_id) {
                sends.first.push(delivery.clone());
            } else {
                sends.same_execution += 1;
            }
        }
        sends.another_execution = slots.values().map(|ids| ids.len() - 1).sum();
        sends
    }

    /// Both kinds of fires sent twice.
    pub(crate) fn twice(&self) -> usize {
        self.same_execution + self.another_execution
    }
}

/// What the executor's connections and its heartbeats share.
#[derive(Debug)]
pub(crate) struct State {
    received: Mutex<Received>,
    /// Executions received and not yet called back, for the heartbeats.
    running: Mutex<HashSet<ExecutionId>>,
    /// The most executions held at once (received, not yet called back).
    held_max: AtomicUsize,
    callbacks: Semaphore,
    callbacks_failed: AtomicUsize,
    cancels: AtomicUsize,
    /// `/execute` bodies that were no dispatch.
    malformed: AtomicUsize,
    /// Every heartbeat sent, timed.
    heartbeats: Mutex<Vec<Sample>>,
    http: reqwest::Client,
}

/// Every delivery, and the tasks that have one.
#[derive(Debug, Default)]
struct Received {
    deliveries: Vec<Delivery>,
    tasks: HashSet<Arc<str>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// Distinct tasks with at least one delivery.
    pub(crate) fn tasks_received(&self) -> usize {
        lock(&self.received).tasks.len()
    }

    /// Every request received so far, in the order received.
    pub(crate) fn snapshot(&self) -> Vec<Delivery> {
        lock(&self.received).deliveries.clone()
    }

    pub(crate) fn callbacks_failed(&self) -> usize {
        self.callbacks_failed.load(Ordering::Relaxed)
    }

    pub(crate) fn cancels(&self) -> usize {
        self.cancels.load(Ordering::Relaxed)
    }

    pub(crate) fn malformed(&self) -> usize {
        self.malformed.load(Ordering::Relaxed)
    }

    pub(crate) fn held_max(&self) -> usize {
        self.held_max.load(Ordering::Relaxed)
    }

    /// Every heartbeat sent so far: its latency and whether it got a 2xx.
    pub(crate) fn heartbeats(&self) -> Vec<Sample> {
        lock(&self.heartbeats).clone()
    }

    /// The latencies of the heartbeats sent so far, in microseconds (to the error, for a failed one).
    pub(crate) fn heartbeat_latencies_us(&self) -> Vec<i64> {
        lock(&self.heartbeats).iter().map(|sample| sample.latency_us).collect()
    }

    /// Heartbeats that got no 2xx.
    pub(crate) fn heartbeats_failed(&self) -> usize {
        lock(&self.heartbeats).iter().filter(|sample| !sample.ok).count()
    }

    /// The status line of the answer to one request.
    fn handle(self: &Arc<Self>, method: &str, path: &str, body: &[u8]) -> &'static str {
        match (method, path) {
            ("POST", "/execute") => {
                let received_us = now_us();
                let Ok(dispatch) = serde_json::from_slice::<DispatchRequest>(body) else {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    return "400 Bad Request";
                };
                let task: Arc<str> = Arc::from(dispatch.task_name.as_str());
                {
                    let mut received = lock(&self.received);
                    received.tasks.insert(task.clone());
                    received.deliveries.push(Delivery {
                        execution_id: dispatch.execution_id,
                        attempt: dispatch.attempt,
                        task,
                        scheduled_at: dispatch.scheduled_at,
                        received_us,
                    });
                }
                {
                    let mut running = lock(&self.running);
                    running.insert(dispatch.execution_id);
                    self.held_max.fetch_max(running.len(), Ordering::Relaxed);
                }
                tokio::spawn(self.clone().call_back(dispatch));
                "202 Accepted"
            }
            ("POST", "/cancel") => {
                self.cancels.fetch_add(1, Ordering::Relaxed);
                "200 OK"
            }
            ("GET", "/health") => "200 OK",
            _ => "404 Not Found",
        }
    }

    /// Reports success of `dispatch`, trying again on a failure other than a refusal.
    async fn call_back(self: Arc<Self>, dispatch: DispatchRequest) {
        let Ok(_permit) = self.callbacks.acquire().await else { return };
        let body = json!({"status": "success", "attempt": dispatch.attempt});
        let mut done = false;
        for tried in 1..=CALLBACK_TRIES {
            match self.http.post(&dispatch.callback_url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    // Read to its end, the answer leaves its connection to the pool.
                    let _ = response.bytes().await;
                    done = true;
                    break;
                }
                Ok(response) if response.status().is_client_error() && response.status().as_u16() != 429 => break,
                _ => tokio::time::sleep(Duration::from_millis(200 * u64::from(tried))).await,
            }
        }
        if !done {
            self.callbacks_failed.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.running).remove(&dispatch.execution_id);
    }
}

/// The bench's own executor; it asks for no early delivery.
#[derive(Debug)]
pub(crate) struct PlainExecutor {
    pub(crate) state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
    /// `POST /api/v1/executors/{id}/heartbeat`.
    heartbeat_path: String,
    heartbeat_every: Duration,
}

impl PlainExecutor {
    /// Serves on a free loopback port and registers with the scheduler at `scheduler_url` as `registration` says,
    /// declaring `names` (no schedules).
    pub(crate) async fn start(
        scheduler_url: &str,
        registration: Registration<'_>,
        names: &[String],
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            received: Mutex::default(),
            running: Mutex::default(),
            held_max: AtomicUsize::new(0),
            callbacks: Semaphore::new(CALLBACKS),
            callbacks_failed: AtomicUsize::new(0),
            cancels: AtomicUsize::new(0),
            malformed: AtomicUsize::new(0),
            heartbeats: Mutex::default(),
            http: client(),
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        let tasks: Vec<Value> = names.iter().map(|name| json!({"task_name": name})).collect();
        let mut body = json!({
            "name": registration.name,
            "instance_id": registration.instance_id,
            "base_url": base_url,
            "tasks": tasks,
        });
        if let Some(max_concurrency) = registration.max_concurrency {
            body["max_concurrency"] = json!(max_concurrency);
        }
        let registered = post(&client(), &format!("{scheduler_url}/api/v1/executors/register"), &body).await?;
        let registered: RegisterResponse = serde_json::from_value(registered)?;
        Ok(Self {
            state,
            server,
            heartbeat_path: format!("/api/v1/executors/{}/heartbeat", registered.executor_id),
            heartbeat_every: Duration::from_secs(registered.heartbeat_interval_seconds.max(1)),
        })
    }

    /// Heartbeats the scheduler at `scheduler_url` every interval the registration was given, naming the
    /// executions not yet called back, until `stop`; each one is timed into [`State::heartbeats`]. The task ends
    /// once `stop` is seen.
    pub(crate) fn heartbeat(&self, scheduler_url: &str, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let url = format!("{scheduler_url}{}", self.heartbeat_path);
        tokio::spawn(send_heartbeats(self.state.clone(), url, self.heartbeat_every, stop))
    }

    /// Stops serving.
    pub(crate) fn stop(&self) {
        self.server.abort();
    }
}

async fn send_heartbeats(state: Arc<State>, url: String, every: Duration, mut stop: watch::Receiver<bool>) {
    let http = client_with_timeout(Duration::from_secs(30));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let running: Vec<ExecutionId> = lock(&state.running).iter().copied().collect();
        let started = Instant::now();
        let ok = match http.post(&url).json(&json!({"running_executions": running})).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        lock(&state.heartbeats).push(Sample::of(started, ok));
    }
}

/// Accepts connections until aborted.
async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, state.clone()));
            }
            // Out of file descriptors, say: the scheduler tries again.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Answers the requests of one keep-alive connection: bodies by `content-length` only, which is how the scheduler
/// sends them.
async fn serve_connection(stream: TcpStream, state: Arc<State>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let path = words.next().unwrap_or_default().to_owned();
        let (mut length, mut close) = (0, false);
        loop {
            line.clear();
            anyhow::ensure!(stream.read_line(&mut line).await? > 0, "connection closed in the headers");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse()?;
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                anyhow::bail!("a body without content-length ({value})");
            }
        }
        anyhow::ensure!(length <= MAX_BODY, "a body of {length} bytes");
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await?;
        let status = state.handle(&method, &path, &body);
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        stream.get_mut().write_all(answer.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
}
