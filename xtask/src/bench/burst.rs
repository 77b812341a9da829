//! Burst: many tasks due at one instant, sent to a plain executor of the bench's own that records every
//! `/execute` it receives (the SDK takes an execution id it already has without a word), to count fires sent twice
//! and fires lost, how late the last one came, and whether heartbeats and the health endpoint kept answering.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use jobs_migrations::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use jobs_model::protocol::{DispatchRequest, RegisterResponse};
use jobs_model::{ExecutionId, TaskId, Timestamp};

use crate::bench::support::{Options, build_release, lateness_summary};
use crate::procs::{Scheduler, client, client_with_timeout, fresh_database, leader, now_us, post, wait_for};

/// The scheduler's port (the other scenarios take 18081 to 18083, 18090, 18095 and 18096).
const PORT: u16 = 18097;
/// Whole seconds from planning the instant to the instant: the insert, the start-up and the registration.
const LEAD_S: i64 = 50;
/// How far off the instant must still be once the executor has registered.
const MIN_MARGIN_MS: i64 = 5000;
/// How long after the instant fires still missing are waited for.
const DEADLINE: Duration = Duration::from_secs(120);
/// How long is waited once every task's fire is in (or the deadline passed), for fires sent twice.
const AFTERWARDS: Duration = Duration::from_secs(10);
/// The health endpoint is probed from this long before the instant.
const PROBE_LEAD: Duration = Duration::from_secs(2);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The throughput target (executions/s) the last fire is held to: within tasks / this + 5 s of the instant.
const TARGET_RATE: f64 = 5000.0;
const ROWS_PER_INSERT: usize = 1000;
/// Callbacks in flight at once.
const CALLBACKS: usize = 64;
/// Tries of one callback before it counts as failed.
const CALLBACK_TRIES: u32 = 4;
/// The largest request body the executor reads.
const MAX_BODY: usize = 1 << 20;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let tasks = options.burst_tasks.unwrap_or(if options.quick { 5_000 } else { 20_000 });
    let names: Vec<String> = (0..tasks).map(|n| format!("burst-{n:05}")).collect();
    let database = fresh_database(&options.server_url, "jobs_bench_burst").await?;
    // Inserting, loading and declaring many tasks takes longer: a second more per thousand beyond the default.
    let lead_s = LEAD_S + i64::try_from(tasks.saturating_sub(20_000) / 1_000).unwrap_or(0);
    let instant = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + lead_s) * 1000);
    insert_tasks(&database, &names, &daily_cron_at(instant)).await?;

    let mut scheduler = Scheduler::new(&database, PORT, "burst", &[("JOBS_SCHEDULER__MAX_WORKERS", "64")]);
    scheduler.start()?;
    let http = client();
    let nodes = std::slice::from_ref(&scheduler);
    wait_for("the scheduler to lead", Duration::from_secs(40), || leader(&http, nodes)).await?;
    let executor = PlainExecutor::start(&scheduler.url(), &names).await?;
    let margin_ms = instant.millis_since(Timestamp::now());
    anyhow::ensure!(
        margin_ms >= MIN_MARGIN_MS,
        "start-up took too long: the executor registered {margin_ms} ms before the instant"
    );

    let (stop, stopped) = watch::channel(false);
    let heartbeat_url = format!("{}{}", scheduler.url(), executor.heartbeat_path);
    let heartbeats =
        tokio::spawn(send_heartbeats(executor.state.clone(), heartbeat_url, executor.heartbeat_every, stopped.clone()));
    sleep_until(instant.add_millis(-millis(PROBE_LEAD))).await;
    let health = tokio::spawn(probe_health(format!("{}/health", scheduler.url()), stopped));
    let deadline = instant.add_millis(millis(DEADLINE));
    while executor.state.tasks_received() < tasks && Timestamp::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(AFTERWARDS).await;
    let _ = stop.send(true);
    let heartbeats = heartbeats.await?;
    let health = health.await?;
    let statuses = executions_by_status(&database).await?;
    scheduler.stop();
    executor.server.abort();

    let received = executor.state.snapshot();
    let figures = Figures::of(&received, &names, instant);
    let (lateness_p50, lateness_p99, lateness_max) = lateness_summary(figures.latenesses_us.iter().copied())?;
    let (_, heartbeat_p99, heartbeat_max) = lateness_summary(heartbeats.iter().map(|sample| sample.latency_us))?;
    let (_, health_p99, health_max) = lateness_summary(health.iter().map(|sample| sample.latency_us))?;
    let result = json!({
        "tasks": tasks,
        "requests": received.len(),
        "delivered": figures.delivered,
        "sent_twice": figures.same_attempt_again + figures.another_execution,
        "sent_twice_same_attempt": figures.same_attempt_again,
        "sent_twice_another_execution": figures.another_execution,
        "other_slots": figures.other_slots,
        "lost": figures.lost,
        "last_after_instant_s": (figures.last_after_instant_ms as f64 / 10.0).round() / 100.0,
        "last_target_s": tasks as f64 / TARGET_RATE + 5.0,
        "lateness_p50_ms": lateness_p50,
        "lateness_p99_ms": lateness_p99,
        "lateness_max_ms": lateness_max,
        "heartbeats": heartbeats.len(),
        "heartbeats_failed": heartbeats.iter().filter(|sample| !sample.ok).count(),
        "heartbeat_p99_ms": heartbeat_p99,
        "heartbeat_max_ms": heartbeat_max,
        "health_probes": health.len(),
        "health_failed": health.iter().filter(|sample| !sample.ok).count(),
        "health_p99_ms": health_p99,
        "health_max_ms": health_max,
        "callbacks_failed": executor.state.callbacks_failed.load(Ordering::Relaxed),
        "cancels": executor.state.cancels.load(Ordering::Relaxed),
        "malformed": executor.state.malformed.load(Ordering::Relaxed),
        "executions_by_status": statuses,
    });
    println!("burst: {result}");
    Ok(result)
}

/// A cron (seconds first) that fires every day at the time of day of `instant`, in UTC.
fn daily_cron_at(instant: Timestamp) -> String {
    let second_of_day = instant.unix_seconds().rem_euclid(86_400);
    format!("{} {} {} * * *", second_of_day % 60, second_of_day / 60 % 60, second_of_day / 3600)
}

/// Inserts one enabled `parallel` task per name with `cron`, straight into the database, after running the
/// scheduler's own migrations (the statement of the scale scenario).
pub(super) async fn insert_tasks(database_url: &str, names: &[String], cron: &str) -> anyhow::Result<()> {
    use jobs_migrations::{Migrator, MigratorTrait};
    let db = Database::connect(database_url).await?;
    Migrator::up(&db, None).await?;
    let now = Timestamp::now().as_millis();
    for chunk in names.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|name| {
                format!(
                    "('{}', '{name}', '', '{cron}', 'UTC', 'parallel', 'round_robin', 0, NULL, 300, 'fire_once', \
                     '{{}}', NULL, 1, NULL, {now}, {now})",
                    TaskId::new()
                )
            })
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO tasks (id, name, description, cron_expression, timezone, execution_mode, \
             load_balance_strategy, max_retry, retry_backoff, timeout_seconds, misfire_policy, parameters, \
             executor, enabled, next_fire_at, created_at, updated_at) VALUES {}",
            rows.join(", ")
        ))
        .await?;
    }
    db.close().await?;
    Ok(())
}

/// `SELECT status, COUNT(*) FROM executions GROUP BY status`, as an object.
pub(super) async fn executions_by_status(database_url: &str) -> anyhow::Result<Value> {
    let db = Database::connect(database_url).await?;
    let sql = "SELECT status, COUNT(*) AS n FROM executions GROUP BY status ORDER BY status";
    let mut counts = serde_json::Map::new();
    for row in db.query_all_raw(Statement::from_string(DbBackend::MySql, sql)).await? {
        let status: String = row.try_get("", "status")?;
        let count: i64 = row.try_get("", "n")?;
        counts.insert(status, json!(count));
    }
    db.close().await?;
    Ok(Value::Object(counts))
}

/// One `/execute` as the executor received it.
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub(super) execution_id: ExecutionId,
    pub(super) attempt: u32,
    pub(super) task: Arc<str>,
    pub(super) scheduled_at: Timestamp,
    /// Microseconds since the epoch, when the request's body had been read.
    pub(super) received_us: i64,
}

/// What the figures of the report are computed from the deliveries.
#[derive(Debug, Default)]
struct Figures {
    /// Distinct execution ids received.
    delivered: usize,
    /// Requests for an (execution, attempt) already received.
    same_attempt_again: usize,
    /// Distinct executions for a (task, scheduled_at) already received.
    another_execution: usize,
    /// Deliveries for a slot other than the instant.
    other_slots: usize,
    /// Tasks whose fire at the instant was never received.
    lost: usize,
    /// The latest first receipt of a task's fire, minus the instant.
    last_after_instant_ms: i64,
    /// First receipt minus `scheduled_at` of each task's fire at the instant.
    latenesses_us: Vec<i64>,
}

impl Figures {
    fn of(received: &[Delivery], names: &[String], instant: Timestamp) -> Self {
        let mut figures = Self::default();
        let mut attempts = HashSet::new();
        let mut executions = HashSet::new();
        let mut by_slot: HashMap<(Arc<str>, Timestamp), HashSet<ExecutionId>> = HashMap::new();
        let mut first_us: HashMap<Arc<str>, i64> = HashMap::new();
        for delivery in received {
            if !attempts.insert((delivery.execution_id, delivery.attempt)) {
                figures.same_attempt_again += 1;
            }
            executions.insert(delivery.execution_id);
            by_slot.entry((delivery.task.clone(), delivery.scheduled_at)).or_default().insert(delivery.execution_id);
            if delivery.scheduled_at == instant {
                let first = first_us.entry(delivery.task.clone()).or_insert(delivery.received_us);
                *first = (*first).min(delivery.received_us);
            } else {
                figures.other_slots += 1;
            }
        }
        figures.delivered = executions.len();
        figures.another_execution = by_slot.values().map(|ids| ids.len() - 1).sum();
        figures.lost = names.iter().filter(|name| !first_us.contains_key(name.as_str())).count();
        let instant_us = instant.as_millis() * 1000;
        figures.latenesses_us = first_us.values().map(|first| first - instant_us).collect();
        figures.last_after_instant_ms = figures.latenesses_us.iter().max().map_or(0, |latest| latest / 1000);
        figures
    }
}

/// One timed request of the bench: its latency (to the error, for a failed one) and whether it got a 2xx.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) latency_us: i64,
    pub(super) ok: bool,
}

impl Sample {
    fn of(started: Instant, ok: bool) -> Self {
        Self { latency_us: jobs_model::micros_i64(started.elapsed()), ok }
    }
}

/// What the executor's connections share.
#[derive(Debug)]
pub(super) struct State {
    received: Mutex<Received>,
    /// Executions received and not yet called back, for the heartbeats.
    running: Mutex<HashSet<ExecutionId>>,
    callbacks: Semaphore,
    callbacks_failed: AtomicUsize,
    cancels: AtomicUsize,
    /// `/execute` bodies that were no dispatch.
    malformed: AtomicUsize,
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
    fn tasks_received(&self) -> usize {
        lock(&self.received).tasks.len()
    }

    pub(super) fn snapshot(&self) -> Vec<Delivery> {
        lock(&self.received).deliveries.clone()
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
                lock(&self.running).insert(dispatch.execution_id);
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

/// The bench's own executor: an HTTP/1.1 server on loopback that records every `/execute`, answers 202 at once
/// and reports success from a spawned task; it asks for no early delivery.
#[derive(Debug)]
pub(super) struct PlainExecutor {
    pub(super) state: Arc<State>,
    pub(super) server: tokio::task::JoinHandle<()>,
    /// `POST /api/v1/executors/{id}/heartbeat`.
    pub(super) heartbeat_path: String,
    pub(super) heartbeat_every: Duration,
}

impl PlainExecutor {
    /// Serves on a free loopback port and registers as `burst`/`burst-1`, declaring `names` (no schedules).
    pub(super) async fn start(scheduler_url: &str, names: &[String]) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            received: Mutex::default(),
            running: Mutex::default(),
            callbacks: Semaphore::new(CALLBACKS),
            callbacks_failed: AtomicUsize::new(0),
            cancels: AtomicUsize::new(0),
            malformed: AtomicUsize::new(0),
            http: client(),
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        let tasks: Vec<Value> = names.iter().map(|name| json!({"task_name": name})).collect();
        let body = json!({"name": "burst", "instance_id": "burst-1", "base_url": base_url, "tasks": tasks});
        let registered = post(&client(), &format!("{scheduler_url}/api/v1/executors/register"), &body).await?;
        let registered: RegisterResponse = serde_json::from_value(registered)?;
        Ok(Self {
            state,
            server,
            heartbeat_path: format!("/api/v1/executors/{}/heartbeat", registered.executor_id),
            heartbeat_every: Duration::from_secs(registered.heartbeat_interval_seconds.max(1)),
        })
    }
}

/// Heartbeats `url` every `every`, naming the executions not yet called back, until `stop`; each one timed.
pub(super) async fn send_heartbeats(
    state: Arc<State>,
    url: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let http = client_with_timeout(Duration::from_secs(30));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return samples,
        }
        let running: Vec<ExecutionId> = lock(&state.running).iter().copied().collect();
        let started = Instant::now();
        let ok = match http.post(&url).json(&json!({"running_executions": running})).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        samples.push(Sample::of(started, ok));
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

/// `GET url` every [`PROBE_EVERY`] until `stop`; each one timed.
pub(super) async fn probe_health(url: String, mut stop: watch::Receiver<bool>) -> Vec<Sample> {
    let http = client_with_timeout(Duration::from_secs(10));
    let mut ticker = tokio::time::interval(PROBE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return samples,
        }
        let started = Instant::now();
        let ok = match http.get(&url).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        samples.push(Sample::of(started, ok));
    }
}

pub(super) fn millis(duration: Duration) -> i64 {
    jobs_model::millis_i64(duration)
}

pub(super) async fn sleep_until(at: Timestamp) {
    let millis = u64::try_from(at.millis_since(Timestamp::now())).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}
