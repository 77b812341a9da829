//! Ramp: offered load rising step by step past what the cluster holds, on two schedulers and the bench's plain
//! executor (declaring a `max_concurrency`), then dropping at once: whether the goodput keeps to its peak while
//! the load grows past it, whether the lease, the executor and `/health` held, whether every fire not run is a
//! `missed` row, and whether lateness is back to its unloaded figure once the load is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use jobs_model::Timestamp;

use crate::bench::overload::window_rows;
use crate::bench::plain::{Delivery, PlainExecutor, Registration, Sends};
use crate::bench::support::{
    Options, build_release, executions_by_status, insert_tasks, lateness_summary, probe_health, sleep_until,
};
use crate::bench::watch::{fires_shed, watch_cluster};
use crate::procs::{Scheduler, client, fresh_database, leader, wait_for};

/// The schedulers' ports (overload takes 18098 and 18099).
const PORTS: [u16; 2] = [18091, 18092];
/// At least this many seconds from planning to the ramp: the insert, the start-up, the registration.
const LEAD_S: i64 = 45;
/// How long before the ramp the executor must have registered: a warm-up, then the unloaded figure's 10 s.
const MIN_MARGIN_MS: i64 = 15_000;
/// The base tasks' unloaded lateness is read over this many seconds before the ramp.
const BEFORE_S: i64 = 10;
/// The base tasks' lateness after the ramp is read for their fires this long after it, up to [`AFTER_TO_S`].
const AFTER_FROM_S: i64 = 10;
const AFTER_TO_S: i64 = 20;
/// What the database says of the ramp's fires is read this long after it; the run ends then.
const SETTLE_S: i64 = 40;
/// A fire received within this long of its `scheduled_at` counts towards the goodput.
const ON_TIME_US: i64 = 1_000_000;
/// The goodput is judged over this many consecutive seconds, so one slow second is not a collapse.
const HELD_S: usize = 5;
/// The groups of tasks added one after another on top of the base, each `step_s` after the one before.
const STEPS: i64 = 9;
const MAX_CONCURRENCY: u32 = 1_000;
const REGISTRATION: Registration<'static> =
    Registration { name: "ramp", instance_id: "ramp-executor", max_concurrency: Some(MAX_CONCURRENCY) };

/// The ramp's size: `tasks` every-second tasks in the base and in each step, a step every `step_s` seconds.
#[derive(Debug, Clone, Copy)]
struct Shape {
    tasks: usize,
    step_s: i64,
}

impl Shape {
    fn window_s(self) -> i64 {
        self.step_s * (STEPS + 1)
    }

    /// Fires offered in second `second` of the ramp.
    fn offered(self, second: i64) -> usize {
        self.tasks * (1 + usize::try_from((second / self.step_s).min(STEPS)).unwrap_or(0))
    }

    /// Every (name, cron) of the ramp: the base fires every second, step `k` every second from `k × step_s` to
    /// the end of the ramp, in the minute `minute` of every hour.
    fn tasks(self, minute: i64) -> Vec<(String, String)> {
        let base = (0..self.tasks).map(|n| (format!("ramp-base-{n:05}"), "* * * * * *".to_owned()));
        let last = self.window_s() - 1;
        let steps = (1..=STEPS).flat_map(move |k| {
            let cron = format!("{}-{last} {minute} * * * *", k * self.step_s);
            (0..self.tasks).map(move |n| (format!("ramp-{k}-{n:05}"), cron.clone()))
        });
        base.chain(steps).collect()
    }
}

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let shape = if options.quick { Shape { tasks: 100, step_s: 3 } } else { Shape { tasks: 500, step_s: 6 } };
    let window_s = shape.window_s();
    let start = Timestamp::from_millis((Timestamp::now().as_millis() / 60_000 + 1) * 60_000);
    let start = if start.millis_since(Timestamp::now()) < LEAD_S * 1000 { start.add_millis(60_000) } else { start };
    let end = start.add_millis(window_s * 1000);
    let tasks = shape.tasks(start.unix_seconds().rem_euclid(3600) / 60);
    let names: Vec<String> = tasks.iter().map(|(name, _)| name.clone()).collect();
    let database = fresh_database(&options.server_url, "jobs_bench_ramp").await?;
    insert_tasks(&database, tasks).await?;

    let env = [("JOBS_SCHEDULER__MAX_WORKERS", "64")];
    let mut nodes: Vec<Scheduler> = PORTS
        .iter()
        .enumerate()
        .map(|(n, port)| Scheduler::new(&database, *port, &format!("ramp-{n}"), &env))
        .collect();
    for node in &mut nodes {
        node.start()?;
    }
    let http = client();
    let lead = wait_for("a leader", Duration::from_secs(40), || leader(&http, &nodes)).await?;
    let executor = PlainExecutor::start(&nodes[lead].url(), REGISTRATION, &names).await?;
    let margin_ms = start.millis_since(Timestamp::now());
    anyhow::ensure!(margin_ms >= MIN_MARGIN_MS, "start-up took too long: registered {margin_ms} ms before the ramp");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let heartbeats = executor.heartbeat(&nodes[lead].url(), stopped.clone());
    let probes: Vec<_> = nodes
        .iter()
        .map(|node| tokio::spawn(probe_health(format!("{}/health", node.url()), stopped.clone())))
        .collect();
    let urls: Vec<String> = nodes.iter().map(Scheduler::url).collect();
    let pids: Vec<u32> = nodes.iter().filter_map(Scheduler::pid).collect();
    let watcher =
        tokio::spawn(watch_cluster(urls[1 - lead].clone(), REGISTRATION.instance_id, urls.clone(), pids, stopped));
    sleep_until(end.add_millis(SETTLE_S * 1000)).await;
    let window = window_rows(&database, "ramp-%", start, end).await?;
    let shed = fires_shed(&urls).await;
    let _ = stop.send(true);
    heartbeats.await?;
    let mut health = Vec::new();
    for probe in probes {
        health.extend(probe.await?);
    }
    let watched = watcher.await?;
    let statuses = executions_by_status(&database).await?;
    for node in &mut nodes {
        node.stop();
    }
    executor.stop();

    let sends = Sends::of(&executor.state.snapshot());
    let goodput = Goodput::of(&sends.first, start, window_s);
    let base_lateness = |from: Timestamp, seconds: i64| {
        let to = from.add_millis(seconds * 1000);
        let of_base = |d: &&Delivery| d.task.starts_with("ramp-base-") && d.scheduled_at >= from && d.scheduled_at < to;
        lateness_summary(sends.first.iter().filter(of_base).map(Delivery::lateness_us))
    };
    let (_, unloaded_p99, _) = base_lateness(start.add_millis(-BEFORE_S * 1000), BEFORE_S)?;
    let (after_p50, after_p99, after_max) =
        base_lateness(end.add_millis(AFTER_FROM_S * 1000), AFTER_TO_S - AFTER_FROM_S)?;
    let (_, heartbeat_p99, heartbeat_max) = lateness_summary(executor.state.heartbeat_latencies_us())?;
    let (_, health_p99, health_max) = lateness_summary(health.iter().map(|sample| sample.latency_us))?;
    let window_slots: usize = (0..window_s).map(|second| shape.offered(second)).sum();
    let result = json!({
        "tasks": names.len(),
        "window_s": window_s,
        "offered_first_per_s": shape.offered(0),
        "offered_peak_per_s": shape.offered(window_s - 1),
        "executor_max_concurrency": MAX_CONCURRENCY,
        "offered_per_s": (0..window_s).step_by(usize::try_from(shape.step_s).unwrap_or(1))
            .map(|second| shape.offered(second)).collect::<Vec<_>>(),
        "goodput_per_s": goodput.per_second,
        "goodput_peak_held_per_s": goodput.peak_held,
        "goodput_min_after_peak_per_s": goodput.min_after_peak,
        "sent_twice": sends.twice(),
        "sent_twice_same_execution": sends.same_execution,
        "sent_twice_another_execution": sends.another_execution,
        "leader_epochs": watched.epochs.len(),
        "leaderless_samples": watched.leaderless,
        "heartbeats": executor.state.heartbeats().len(),
        "heartbeats_failed": executor.state.heartbeats_failed(),
        "heartbeat_p99_ms": heartbeat_p99,
        "heartbeat_max_ms": heartbeat_max,
        "executor_samples": watched.samples,
        "executor_offline_samples": watched.offline,
        "health_p99_ms": health_p99,
        "health_max_ms": health_max,
        "health_failed": health.iter().filter(|sample| !sample.ok).count(),
        "rss_max_mb": watched.rss_max_mb.iter().copied().fold(0.0, f64::max),
        "window_slots": window_slots,
        "window_slots_with_row": window.slots,
        "window_by_status": window.by_status,
        "window_open": window.open,
        "window_missed_overloaded": window.overloaded,
        "fires_shed_overloaded": shed,
        "unloaded_p99_ms": unloaded_p99,
        "after_p50_ms": after_p50,
        "after_p99_ms": after_p99,
        "after_max_ms": after_max,
        "after_over_unloaded_p99_ms": ((after_p99 - unloaded_p99) * 10.0).round() / 10.0,
        "executions_by_status": statuses,
    });
    let r = |key: &str| result[key].to_string();
    println!(
        "ramp: {} to {} fires/s over {} s; goodput held {}/s at its peak, {}/s at least after it; sent twice {}",
        r("offered_first_per_s"),
        r("offered_peak_per_s"),
        r("window_s"),
        r("goodput_peak_held_per_s"),
        r("goodput_min_after_peak_per_s"),
        r("sent_twice")
    );
    println!(
        "  leader epochs {}; heartbeat p99 {} ms ({} failed); executor offline {} of {}; /health p99 {} ms",
        r("leader_epochs"),
        r("heartbeat_p99_ms"),
        r("heartbeats_failed"),
        r("executor_offline_samples"),
        r("executor_samples"),
        r("health_p99_ms")
    );
    println!(
        "  slots {}: {} with a row {}, {} open; base p99 unloaded {} ms, {}-{} s after {} ms",
        r("window_slots"),
        r("window_slots_with_row"),
        r("window_by_status"),
        r("window_open"),
        r("unloaded_p99_ms"),
        AFTER_FROM_S,
        AFTER_TO_S,
        r("after_p99_ms")
    );
    println!("ramp: {result}");
    Ok(result)
}

/// Fires due in each second of the ramp that were received on time, and how that held.
#[derive(Debug, Default)]
struct Goodput {
    per_second: Vec<usize>,
    /// The best average over [`HELD_S`] seconds in a row.
    peak_held: f64,
    /// The worst average over [`HELD_S`] seconds in a row that start after the peak's.
    min_after_peak: f64,
}

impl Goodput {
    fn of(first: &[Delivery], start: Timestamp, window_s: i64) -> Self {
        let mut by_second: BTreeMap<i64, usize> = BTreeMap::new();
        for delivery in first {
            let second = delivery.scheduled_at.millis_since(start).div_euclid(1000);
            if (0..window_s).contains(&second) && delivery.lateness_us() < ON_TIME_US {
                *by_second.entry(second).or_default() += 1;
            }
        }
        let per_second: Vec<usize> = (0..window_s).map(|s| by_second.get(&s).copied().unwrap_or(0)).collect();
        let held: Vec<f64> = per_second
            .windows(HELD_S.min(per_second.len().max(1)))
            .map(|run| run.iter().sum::<usize>() as f64 / run.len() as f64)
            .collect();
        let peak_at = held.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(at, _)| at);
        let peak_held = held.get(peak_at).copied().unwrap_or(0.0);
        let min_after_peak = held[peak_at.min(held.len())..].iter().copied().fold(peak_held, f64::min);
        Self { per_second, peak_held: peak_held.round(), min_after_peak: min_after_peak.round() }
    }
}
