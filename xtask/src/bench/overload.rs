//! Overload: steady every-second tasks, plus as many again and more that fire every second during one window
//! only, on two schedulers and one plain executor (see `burst`): what the fires of the window became, whether the
//! steady ones came back on time after it, and whether heartbeats, `/health` and the executor's state held.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use jobs_migrations::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use jobs_model::{ExecutionId, Timestamp};

use crate::bench::burst::{
    PlainExecutor, executions_by_status, insert_tasks, probe_health, send_heartbeats, sleep_until,
};
use crate::bench::support::{Options, build_release, lateness_summary};
use crate::procs::{Scheduler, client, fresh_database, leader, wait_for};

/// The schedulers' ports (burst takes 18097).
const PORTS: [u16; 2] = [18098, 18099];
/// At least this long from planning to the window: inserts, start-up, registration.
const LEAD_S: i64 = 45;
/// The steady tasks' lateness is read this long after the window, for this long.
const AFTER_FROM_S: i64 = 10;
const AFTER_TO_S: i64 = 30;
/// What the history says of the window's fires is read this long after it.
const SETTLE_S: i64 = 40;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let (steady, extra, window_s) = if options.quick { (300, 700, 20) } else { (1_500, 3_500, 60) };
    let start = window_start(Timestamp::now(), window_s);
    let end = start.add_millis(window_s * 1000);
    let second = start.unix_seconds().rem_euclid(60);
    let minute = start.unix_seconds().rem_euclid(3600) / 60;
    let steady_names: Vec<String> = (0..steady).map(|n| format!("steady-{n:05}")).collect();
    let extra_names: Vec<String> = (0..extra).map(|n| format!("extra-{n:05}")).collect();
    let database = fresh_database(&options.server_url, "jobs_bench_overload").await?;
    insert_tasks(&database, &steady_names, "* * * * * *").await?;
    let extra_cron = format!("{second}-{} {minute} * * * *", second + window_s - 1);
    insert_tasks(&database, &extra_names, &extra_cron).await?;

    let mut nodes: Vec<Scheduler> = PORTS
        .iter()
        .enumerate()
        .map(|(n, port)| {
            Scheduler::new(&database, *port, &format!("overload-{n}"), &[("JOBS_SCHEDULER__MAX_WORKERS", "64")])
        })
        .collect();
    for node in &mut nodes {
        node.start()?;
    }
    let http = client();
    wait_for("a leader", Duration::from_secs(40), || leader(&http, &nodes)).await?;
    let names: Vec<String> = steady_names.iter().chain(&extra_names).cloned().collect();
    let executor = PlainExecutor::start(&nodes[0].url(), &names).await?;
    anyhow::ensure!(Timestamp::now().add_millis(12_000) < start, "start-up took too long: the window has begun");

    let (stop, stopped) = watch::channel(false);
    let heartbeat_url = format!("{}{}", nodes[0].url(), executor.heartbeat_path);
    let heartbeats =
        tokio::spawn(send_heartbeats(executor.state.clone(), heartbeat_url, executor.heartbeat_every, stopped.clone()));
    let probes: Vec<_> = nodes
        .iter()
        .map(|node| tokio::spawn(probe_health(format!("{}/health", node.url()), stopped.clone())))
        .collect();
    let pids: Vec<u32> = nodes.iter().filter_map(Scheduler::pid).collect();
    let watch = tokio::spawn(watch_cluster(nodes[0].url(), pids, stopped));
    sleep_until(end.add_millis(SETTLE_S * 1000)).await;
    let _ = stop.send(true);
    let heartbeats = heartbeats.await?;
    let mut health = Vec::new();
    for probe in probes {
        health.extend(probe.await?);
    }
    let watched = watch.await?;
    let window = window_rows(&database, start, end).await?;
    let statuses = executions_by_status(&database).await?;
    for node in &mut nodes {
        node.stop();
    }
    executor.server.abort();

    let received = executor.state.snapshot();
    let mut attempts = HashSet::new();
    let mut slots: HashMap<(Arc<str>, Timestamp), HashSet<ExecutionId>> = HashMap::new();
    let mut again = 0;
    for delivery in &received {
        if !attempts.insert((delivery.execution_id, delivery.attempt)) {
            again += 1;
        }
        slots.entry((delivery.task.clone(), delivery.scheduled_at)).or_default().insert(delivery.execution_id);
    }
    let another: usize = slots.values().map(|ids| ids.len() - 1).sum();
    let lateness_us =
        |delivery: &crate::bench::burst::Delivery| delivery.received_us - delivery.scheduled_at.as_millis() * 1000;
    let in_range = |at: Timestamp, from: Timestamp, to: Timestamp| at >= from && at < to;
    let before = received.iter().filter(|d| in_range(d.scheduled_at, start.add_millis(-10_000), start)).count();
    let on_time =
        received.iter().filter(|d| in_range(d.scheduled_at, start, end) && lateness_us(d) < 1_000_000).count();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for delivery in received.iter().filter(|d| in_range(d.scheduled_at, start, end)) {
        *per_second.entry(delivery.received_us / 1_000_000).or_default() += 1;
    }
    let after = received.iter().filter(|d| {
        d.task.starts_with("steady-")
            && in_range(d.scheduled_at, end.add_millis(AFTER_FROM_S * 1000), end.add_millis(AFTER_TO_S * 1000))
    });
    let (after_p50, after_p99, _) = lateness_summary(after.map(lateness_us))?;
    let (_, heartbeat_p99, _) = lateness_summary(heartbeats.iter().map(|sample| sample.latency_us))?;
    let (_, health_p99, health_max) = lateness_summary(health.iter().map(|sample| sample.latency_us))?;
    let result = json!({
        "steady_tasks": steady,
        "extra_tasks": extra,
        "window_s": window_s,
        "offered_per_s": steady + extra,
        "rate_before_per_s": before as f64 / 10.0,
        "goodput_per_s": (on_time as f64 / window_s as f64).round(),
        "peak_received_per_s": per_second.values().max().copied().unwrap_or(0),
        "sent_twice": again + another,
        "heartbeats": heartbeats.len(),
        "heartbeats_failed": heartbeats.iter().filter(|sample| !sample.ok).count(),
        "heartbeat_p99_ms": heartbeat_p99,
        "executor_not_active_samples": watched.not_active,
        "executor_samples": watched.samples,
        "ready_degraded_or_503": watched.not_ready,
        "steady_lateness_after_p50_ms": after_p50,
        "steady_lateness_after_p99_ms": after_p99,
        "window_slots": extra * window_s as usize,
        "window_rows": window.rows,
        "window_by_status": window.by_status,
        "window_open_after_s": window.open,
        "window_missed_overloaded": window.overloaded,
        "rss_max_mb": watched.rss_max_mb,
        "health_p99_ms": health_p99,
        "health_max_ms": health_max,
        "health_failed": health.iter().filter(|sample| !sample.ok).count(),
        "executions_by_status": statuses,
    });
    println!("overload: {result}");
    Ok(result)
}

/// The first whole second at least [`LEAD_S`] away whose window of `window_s` seconds stays inside one minute.
fn window_start(now: Timestamp, window_s: i64) -> Timestamp {
    let mut at = (now.as_millis() / 1000 + LEAD_S) * 1000;
    let second = (at / 1000).rem_euclid(60);
    if second + window_s > 60 {
        at += (60 - second) * 1000;
    }
    Timestamp::from_millis(at)
}

/// What was seen by polling the cluster every second.
#[derive(Debug, Default)]
struct Watched {
    samples: usize,
    /// Samples in which the executor was not shown `active` and `healthy`.
    not_active: usize,
    /// `/ready` answers that were not plain `ready`.
    not_ready: usize,
    rss_max_mb: f64,
}

async fn watch_cluster(url: String, pids: Vec<u32>, mut stop: watch::Receiver<bool>) -> Watched {
    let http = crate::procs::client_with_timeout(Duration::from_secs(5));
    let mut watched = Watched::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return watched,
        }
        for pid in &pids {
            if let Some(rss) = rss_mb(*pid) {
                watched.rss_max_mb = watched.rss_max_mb.max(rss);
            }
        }
        if let Ok(response) = http.get(format!("{url}/api/v1/executors")).send().await
            && let Ok(Value::Array(executors)) = response.json::<Value>().await
        {
            watched.samples += 1;
            let fine =
                executors.iter().any(|executor| executor["status"] == "active" && executor["health"] == "healthy");
            if !fine {
                watched.not_active += 1;
            }
        }
        let ready = match http.get(format!("{url}/ready")).send().await {
            Ok(response) if response.status().is_success() => {
                response.json::<Value>().await.is_ok_and(|body| body["status"] == "ready")
            }
            _ => false,
        };
        if !ready {
            watched.not_ready += 1;
        }
    }
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// What the history says of the window's fires of the extra tasks.
struct Window {
    rows: i64,
    by_status: Value,
    /// Still pending or running, long after the window.
    open: i64,
    overloaded: i64,
}

async fn window_rows(database_url: &str, start: Timestamp, end: Timestamp) -> anyhow::Result<Window> {
    let db = Database::connect(database_url).await?;
    let sql = format!(
        "SELECT status, SUM(error LIKE 'overloaded%') AS shed, COUNT(*) AS n FROM executions \
         WHERE task_name LIKE 'extra-%' AND scheduled_at >= {} AND scheduled_at < {} GROUP BY status",
        start.as_millis(),
        end.as_millis()
    );
    let mut window = Window { rows: 0, by_status: json!({}), open: 0, overloaded: 0 };
    let mut by_status = serde_json::Map::new();
    for row in db.query_all_raw(Statement::from_string(DbBackend::MySql, sql)).await? {
        let status: String = row.try_get("", "status")?;
        let count: i64 = row.try_get("", "n")?;
        let shed: Option<jobs_migrations::sea_orm::prelude::Decimal> = row.try_get("", "shed").ok();
        window.rows += count;
        if status == "pending" || status == "running" {
            window.open += count;
        }
        window.overloaded += shed.map_or(0, |shed| shed.to_string().parse::<i64>().unwrap_or(0));
        by_status.insert(status, json!(count));
    }
    window.by_status = Value::Object(by_status);
    db.close().await?;
    Ok(window)
}
