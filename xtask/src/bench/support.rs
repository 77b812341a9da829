//! What the scenarios share: release processes, a fresh database, HTTP helpers and a recording executor.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_model::Timestamp;

/// Command-line options of the bench.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) kills: usize,
    /// The MySQL server (no database): each scenario creates its own database on it.
    pub(crate) server_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self { quick: false, kills: 10, server_url: "mysql://root@127.0.0.1:3306".to_owned() }
    }
}

/// Builds the release binaries the scenarios run.
pub(crate) fn build_release() -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO")).args(["build", "--release", "-p", "scheduler"]).status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}

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

/// One scheduler process (release build), logging to `target/bench/logs/`.
#[derive(Debug)]
pub(crate) struct Scheduler {
    pub(crate) port: u16,
    pub(crate) instance_id: String,
    database_url: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Scheduler {
    pub(crate) fn new(database_url: &str, port: u16, instance_id: &str, env: &[(&str, &str)]) -> Self {
        let env = env.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        Self { port, instance_id: instance_id.to_owned(), database_url: database_url.to_owned(), env, child: None }
    }

    pub(crate) fn start(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all("target/bench/logs")?;
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(format!("target/bench/logs/{}.log", self.instance_id))?;
        let child = Command::new("target/release/scheduler")
            .env("JOBS_DATABASE__URL", &self.database_url)
            .env("JOBS_SERVER__HOST", "127.0.0.1")
            .env("JOBS_SERVER__PORT", self.port.to_string())
            .env("JOBS_SCHEDULER__INSTANCE_ID", &self.instance_id)
            .env("JOBS_LOG__FILE", "")
            .envs(self.env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", self.instance_id))?;
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
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
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
    let mut builder = Executor::builder("bench")
        .instance_id(instance_id)
        .scheduler_urls(scheduler_urls)
        .max_concurrency(MAX_CONCURRENCY)
        .early_delivery(early_delivery);
    for task in tasks {
        let receipts = receipts.clone();
        let name: Arc<str> = Arc::from(task.as_str());
        builder = builder.handler(task.clone(), move |ctx: JobContext| {
            let received_us = now_us();
            let receipt = Receipt {
                task: name.clone(),
                scheduled_at: ctx.scheduled_at(),
                received_at: Timestamp::from_millis(received_us / 1000),
                received_us,
            };
            receipts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(receipt);
            async move { Ok::<_, JobError>(Value::Null) }
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

/// Lateness figures in milliseconds (negative values, a clock read before the slot, count as 0).
pub(crate) fn lateness_summary(latenesses_us: impl IntoIterator<Item = i64>) -> anyhow::Result<(f64, f64, f64)> {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    for value in latenesses_us {
        histogram.record(value.max(0) as u64)?;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Ok((ms(histogram.value_at_quantile(0.5)), ms(histogram.value_at_quantile(0.99)), ms(histogram.max())))
}

/// User plus system CPU time of a process, in clock ticks (see [`ticks_per_second`]).
pub(crate) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("no process {pid}"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 where that cannot be asked).
pub(crate) fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
