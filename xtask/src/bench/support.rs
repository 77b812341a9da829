//! What the benchmark scenarios share: options, the release build, the bulk insert of tasks, executions by status,
//! lateness figures, timed `/health` probes, CPU time and resident memory; processes, HTTP and the recording
//! executor are in `crate::procs`, the bench's plain executor in `plain`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::watch;

use jobs_migrations::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use jobs_model::{TaskId, Timestamp};

use crate::procs::client_with_timeout;

/// Command-line options of the bench.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) kills: usize,
    /// The MySQL server (no database): each scenario creates its own database on it.
    pub(crate) server_url: String,
    /// How many tasks `burst` puts at its instant, in place of its default.
    pub(crate) burst_tasks: Option<usize>,
    /// How many tasks `scale` loads, in place of its default.
    pub(crate) scale_tasks: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            kills: 10,
            server_url: "mysql://root@127.0.0.1:3306".to_owned(),
            burst_tasks: None,
            scale_tasks: None,
        }
    }
}

/// Builds the release binaries the scenarios run.
pub(crate) fn build_release() -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO")).args(["build", "--release", "-p", "scheduler"]).status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
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

/// Rows of one multi-row insert of tasks.
const ROWS_PER_INSERT: usize = 1000;

/// Inserts one enabled `parallel` task per (name, cron), straight into the database, in statements of
/// [`ROWS_PER_INSERT`] rows, after running the scheduler's own migrations.
pub(crate) async fn insert_tasks(
    database_url: &str,
    tasks: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    use jobs_migrations::{Migrator, MigratorTrait};
    let db = Database::connect(database_url).await?;
    Migrator::up(&db, None).await?;
    let now = Timestamp::now().as_millis();
    let mut rows = Vec::with_capacity(ROWS_PER_INSERT);
    let mut tasks = tasks.into_iter().peekable();
    while let Some((name, cron)) = tasks.next() {
        rows.push(format!(
            "('{}', '{name}', '', '{cron}', 'UTC', 'parallel', 'round_robin', 0, NULL, 300, 'fire_once', '{{}}', \
             NULL, 1, NULL, {now}, {now})",
            TaskId::new()
        ));
        if rows.len() == ROWS_PER_INSERT || tasks.peek().is_none() {
            db.execute_unprepared(&format!(
                "INSERT INTO tasks (id, name, description, cron_expression, timezone, execution_mode, \
                 load_balance_strategy, max_retry, retry_backoff, timeout_seconds, misfire_policy, parameters, \
                 executor, enabled, next_fire_at, created_at, updated_at) VALUES {}",
                rows.join(", ")
            ))
            .await?;
            rows.clear();
        }
    }
    db.close().await?;
    Ok(())
}

/// `SELECT status, COUNT(*) FROM executions GROUP BY status`, as an object.
pub(crate) async fn executions_by_status(database_url: &str) -> anyhow::Result<Value> {
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

/// One timed request of the bench: its latency (to the error, for a failed one) and whether it got a 2xx.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) latency_us: i64,
    pub(crate) ok: bool,
}

impl Sample {
    pub(crate) fn of(started: Instant, ok: bool) -> Self {
        Self { latency_us: jobs_model::micros_i64(started.elapsed()), ok }
    }
}

/// How often [`probe_health`] asks.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// `GET url` every [`PROBE_EVERY`] until `stop`; each one timed.
pub(crate) async fn probe_health(url: String, mut stop: watch::Receiver<bool>) -> Vec<Sample> {
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

pub(crate) fn millis(duration: Duration) -> i64 {
    jobs_model::millis_i64(duration)
}

pub(crate) async fn sleep_until(at: Timestamp) {
    let millis = u64::try_from(at.millis_since(Timestamp::now())).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// The resident memory of a process, in MB to a tenth.
pub(crate) fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok((kb / 1024.0 * 10.0).round() / 10.0)
}
