//! What the bench and chaos harnesses share: scheduler processes, a fresh database, HTTP helpers and a recording
//! executor.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_model::{ExecutionId, Timestamp};

/// Drops and creates `name` on the server; returns the database's URL.
pub(crate) async fn fresh_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    use jobs_migrations::sea_orm::{ConnectionTrait, Database};
    let server = server_url.trim_end_matches('/');
    let db = Database::connect(server).await.with_context(|| format!("cannot connect to {server}"))?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await?;
    db.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    db.close().await?;
    Ok(format!("{server}/{name}"))
}

/// One scheduler process, by default the release build logging to `target/bench/logs/<instance>.log`.
#[derive(Debug)]
pub(crate) struct Scheduler {
    pub(crate) port: u16,
    pub(crate) instance_id: String,
    database_url: String,
    env: Vec<(String, String)>,
    binary: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Scheduler {
    pub(crate) fn new(database_url: &str, port: u16, instance_id: &str, env: &[(&str, &str)]) -> Self {
        let env = env.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        Self {
            port,
            instance_id: instance_id.to_owned(),
            database_url: database_url.to_owned(),
            env,
            binary: PathBuf::from("target/release/scheduler"),
            log: PathBuf::from(format!("target/bench/logs/{instance_id}.log")),
            child: None,
        }
    }

    /// The same scheduler run from `binary`, with its stdout and stderr appended to `log`.
    pub(crate) fn with_paths(mut self, binary: PathBuf, log: PathBuf) -> Self {
        self.binary = binary;
        self.log = log;
        self
    }

    pub(crate) fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    pub(crate) fn start(&mut self) -> anyhow::Result<()> {
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.binary)
            .env("JOBS_DATABASE__URL", &self.database_url)
            .env("JOBS_SERVER__HOST", "127.0.0.1")
            .env("JOBS_SERVER__PORT", self.port.to_string())
            .env("JOBS_SCHEDULER__INSTANCE_ID", &self.instance_id)
            .env("JOBS_LOG__FILE", "")
            .envs(self.env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.instance_id, self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How the process ended, if it has; it then no longer counts as running.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the process.
    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().with_context(|| format!("{} is not running", self.instance_id))?;
        let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// `kill -9`.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

pub(crate) fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap_or_default()
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Option<Value> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {body}");
    Ok(body)
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `deadline`.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        anyhow::ensure!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Executions a recording executor runs at once: far more than a burst of 1,000 fires due in the same second.
const MAX_CONCURRENCY: usize = 100_000;

/// One execution as the executor received it.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub(crate) task: Arc<str>,
    pub(crate) execution_id: ExecutionId,
    pub(crate) attempt: u32,
    pub(crate) scheduled_at: Timestamp,
    pub(crate) received_at: Timestamp,
    /// Handler start in microseconds since the epoch, for lateness below a millisecond.
    pub(crate) received_us: i64,
}

impl Receipt {
    /// Handler start minus the scheduled fire time, in microseconds; negative if the handler started early.
    pub(crate) fn lateness_us(&self) -> i64 {
        self.received_us - self.scheduled_at.as_millis() * 1000
    }
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, jobs_model::micros_i64)
}

pub(crate) type Receipts = Arc<Mutex<Vec<Receipt>>>;

pub(crate) fn snapshot(receipts: &Receipts) -> Vec<Receipt> {
    receipts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// How a recording executor works beyond recording.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recording {
    /// The lead it asks for: how long before `scheduled_at` the scheduler may send a fire.
    pub(crate) early_delivery: Duration,
    /// How long each handler of `slow_tasks` takes before it succeeds.
    pub(crate) handler_time: Duration,
    pub(crate) slow_tasks: Vec<String>,
    /// The address it registers, when requests reach it through something in front of its listener.
    pub(crate) base_url: Option<String>,
}

/// An in-process SDK executor that records when the handler of each execution of `tasks` starts (with no early
/// delivery, its receipt) and succeeds at once.
/// `early_delivery` is the lead it asks for: how long before `scheduled_at` the scheduler may send a fire.
pub(crate) async fn recording_executor(
    instance_id: &str,
    scheduler_urls: Vec<String>,
    tasks: &[String],
    receipts: &Receipts,
    early_delivery: Duration,
) -> anyhow::Result<ExecutorHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let recording = Recording { early_delivery, ..Recording::default() };
    recording_executor_on(listener, instance_id, scheduler_urls, tasks, receipts, &recording).await
}

/// A recording executor serving `listener`, set up by `recording`.
pub(crate) async fn recording_executor_on(
    listener: tokio::net::TcpListener,
    instance_id: &str,
    scheduler_urls: Vec<String>,
    tasks: &[String],
    receipts: &Receipts,
    recording: &Recording,
) -> anyhow::Result<ExecutorHandle> {
    let mut builder = Executor::builder("bench")
        .instance_id(instance_id)
        .scheduler_urls(scheduler_urls)
        .max_concurrency(MAX_CONCURRENCY)
        .early_delivery(recording.early_delivery);
    if let Some(base_url) = &recording.base_url {
        builder = builder.base_url(base_url.clone());
    }
    for task in tasks {
        let receipts = receipts.clone();
        let name: Arc<str> = Arc::from(task.as_str());
        let handler_time = if recording.slow_tasks.contains(task) { recording.handler_time } else { Duration::ZERO };
        builder = builder.handler(task.clone(), move |ctx: JobContext| {
            let received_us = now_us();
            let receipt = Receipt {
                task: name.clone(),
                execution_id: ctx.execution_id(),
                attempt: ctx.attempt(),
                scheduled_at: ctx.scheduled_at(),
                received_at: Timestamp::from_millis(received_us / 1000),
                received_us,
            };
            receipts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(receipt);
            async move {
                if !handler_time.is_zero() {
                    tokio::time::sleep(handler_time).await;
                }
                Ok::<_, JobError>(Value::Null)
            }
        });
    }
    let handle = builder.build()?.start(listener).await?;
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.context("executor did not register")?;
    Ok(handle)
}

/// The index of the one running scheduler that says it leads.
pub(crate) async fn leader(client: &reqwest::Client, nodes: &[Scheduler]) -> Option<usize> {
    let mut leaders = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        if !node.is_running() {
            continue;
        }
        if get(client, &format!("{}/api/v1/scheduler/status", node.url())).await.is_some_and(|s| s["role"] == "leader")
        {
            leaders.push(index);
        }
    }
    (leaders.len() == 1).then(|| leaders[0])
}
