//! Overload: steady every-second tasks, plus more that fire every second during one window only, on two schedulers
//! and the bench's plain executor (declaring a `max_concurrency`): the goodput in the window, fires sent twice,
//! what the window's fires became, whether the steady ones came back on time after it, and whether heartbeats,
//! the executor's state, `/ready`, `/health` and the schedulers' memory held.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use jobs_migrations::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use jobs_model::Timestamp;

use crate::bench::plain::{Delivery, PlainExecutor, Registration, Sends};
use crate::bench::support::{
    Options, build_release, executions_by_status, insert_tasks, lateness_summary, probe_health, sleep_until,
};
use crate::procs::{Scheduler, client, fresh_database, leader, wait_for};

use crate::bench::watch::{fires_shed, watch_cluster};

/// The schedulers' ports (burst takes 18097).
const PORTS: [u16; 2] = [18098, 18099];
/// At least this many whole seconds from planning to the window: the insert, the start-up, the registration.
const LEAD_S: i64 = 45;
/// How long before the window the executor must have registered: a warm-up, then the steady rate's 10 s.
const MIN_MARGIN_MS: i64 = 15_000;
/// The steady rate is measured over this many seconds before the window.
const BEFORE_S: i64 = 10;
/// The steady tasks' lateness is read for their fires this long after the window ends, up to [`AFTER_TO_S`].
const AFTER_FROM_S: i64 = 10;
const AFTER_TO_S: i64 = 30;
/// What the database says of the window's fires is read this long after it; the run ends then.
const SETTLE_S: i64 = 40;
/// A fire received within this long of its `scheduled_at` counts towards the goodput.
const ON_TIME_US: i64 = 1_000_000;
/// The peak held: the best received rate kept over this many consecutive seconds of the window.
const HELD_S: usize = 5;
/// Executions the plain executor declares it takes at once.
const MAX_CONCURRENCY: u32 = 1_000;
const REGISTRATION: Registration<'static> =
    Registration { name: "overload", instance_id: "overload-executor", max_concurrency: Some(MAX_CONCURRENCY) };

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let (steady, extra, window_s) = if options.quick { (300, 700, 20) } else { (1_500, 3_500, 60) };
    let start = window_start(Timestamp::now(), window_s);
    let end = start.add_millis(window_s * 1000);
    let steady_names: Vec<String> = (0..steady).map(|n| format!("steady-{n:05}")).collect();
    let extra_names: Vec<String> = (0..extra).map(|n| format!("extra-{n:05}")).collect();
    let database = fresh_database(&options.server_url, "jobs_bench_overload").await?;
    let extra_cron = window_cron(start, window_s);
    let every_second = "* * * * * *".to_owned();
    let rows = steady_names.iter().map(|name| (name.clone(), every_second.clone()));
    insert_tasks(&database, rows.chain(extra_names.iter().map(|name| (name.clone(), extra_cron.clone())))).await?;

    let env = [("JOBS_SCHEDULER__MAX_WORKERS", "64")];
    let mut nodes: Vec<Scheduler> = PORTS
        .iter()
        .enumerate()
        .map(|(n, port)| Scheduler::new(&database, *port, &format!("overload-{n}"), &env))
        .collect();
    for node in &mut nodes {
        node.start()?;
    }
    let http = client();
    let lead = wait_for("a leader", Duration::from_secs(40), || leader(&http, &nodes)).await?;
    let names: Vec<String> = steady_names.iter().chain(&extra_names).cloned().collect();
    let executor = PlainExecutor::start(&nodes[lead].url(), REGISTRATION, &names).await?;
    let margin_ms = start.millis_since(Timestamp::now());
    anyhow::ensure!(
        margin_ms >= MIN_MARGIN_MS,
        "start-up took too long: the executor registered {margin_ms} ms before the window"
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let heartbeats = executor.heartbeat(&nodes[lead].url(), stopped.clone());
    let probes: Vec<_> = nodes
        .iter()
        .map(|node| tokio::spawn(probe_health(format!("{}/health", node.url()), stopped.clone())))
        .collect();
    // The executor registers with and heartbeats the leader; its state is read from the other one's list.
    let urls: Vec<String> = nodes.iter().map(Scheduler::url).collect();
    let pids: Vec<u32> = nodes.iter().filter_map(Scheduler::pid).collect();
    let watcher =
        tokio::spawn(watch_cluster(urls[1 - lead].clone(), REGISTRATION.instance_id, urls.clone(), pids, stopped));
    sleep_until(end.add_millis(SETTLE_S * 1000)).await;
    let window = window_rows(&database, "extra-%", start, end).await?;
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

    let received = executor.state.snapshot();
    let figures = Figures::of(&received, start, end);
    let after = figures.first.iter().filter(|d| {
        d.task.starts_with("steady-")
            && in_range(d.scheduled_at, end.add_millis(AFTER_FROM_S * 1000), end.add_millis(AFTER_TO_S * 1000))
    });
    let after: Vec<i64> = after.map(|delivery| delivery.lateness_us()).collect();
    // No fire received, no lateness: null, not the 0 of an empty histogram.
    let (after_p50, after_p99, after_max) = match lateness_summary(after.iter().copied())? {
        _ if after.is_empty() => (Value::Null, Value::Null, Value::Null),
        (p50, p99, max) => (json!(p50), json!(p99), json!(max)),
    };
    let (_, heartbeat_p99, heartbeat_max) = lateness_summary(executor.state.heartbeat_latencies_us())?;
    let (_, health_p99, health_max) = lateness_summary(health.iter().map(|sample| sample.latency_us))?;
    let rss_peak: serde_json::Map<String, Value> =
        nodes.iter().zip(&watched.rss_max_mb).map(|(node, rss)| (node.instance_id.clone(), json!(rss))).collect();
    let mut result = json!({
        "steady_tasks": steady,
        "extra_tasks": extra,
        "window_s": window_s,
        "extra_cron": extra_cron,
        "offered_in_window_per_s": steady + extra,
        "executor_max_concurrency": MAX_CONCURRENCY,
        "requests": received.len(),
        "rate_before_per_s": figures.before as f64 / BEFORE_S as f64,
        "goodput_per_s": (figures.on_time as f64 / window_s as f64).round(),
        "peak_received_per_s": figures.peak,
        "peak_held_per_s": figures.held.round(),
        "received_per_s": figures.per_second,
        "sent_twice": figures.same_execution + figures.another_execution,
        "sent_twice_same_execution": figures.same_execution,
        "sent_twice_another_execution": figures.another_execution,
    });
    let more = json!({
        "heartbeats": executor.state.heartbeats().len(),
        "heartbeats_failed": executor.state.heartbeats_failed(),
        "heartbeat_p99_ms": heartbeat_p99,
        "heartbeat_max_ms": heartbeat_max,
        "executor_samples": watched.samples,
        "executor_offline_samples": watched.offline,
        "executor_poll_failed": watched.poll_failed,
        "steady_after_slots": steady * usize::try_from(AFTER_TO_S - AFTER_FROM_S).unwrap_or(0),
        "steady_after_received": after.len(),
        "steady_after_p50_ms": after_p50,
        "steady_after_p99_ms": after_p99,
        "steady_after_max_ms": after_max,
    });
    let history = json!({
        "window_slots": extra * usize::try_from(window_s).unwrap_or(0),
        "window_slots_with_row": window.slots,
        "window_rows": window.rows,
        "window_by_status": window.by_status,
        "window_open": window.open,
        "window_missed_overloaded": window.overloaded,
        "fires_shed_overloaded": shed,
        "rss_peak_mb": rss_peak,
        "rss_max_mb": watched.rss_max_mb.iter().copied().fold(0.0, f64::max),
        "health_probes": health.len(),
        "health_failed": health.iter().filter(|sample| !sample.ok).count(),
        "health_p99_ms": health_p99,
        "health_max_ms": health_max,
        "ready_samples": watched.ready_samples,
        "ready_degraded": watched.degraded,
        "ready_503": watched.unavailable,
        "ready_failed": watched.ready_failed,
        "leader_epochs": watched.epochs.len(),
        "leaderless_samples": watched.leaderless,
        "executor_held_max": executor.state.held_max(),
        "callbacks_failed": executor.state.callbacks_failed(),
        "cancels": executor.state.cancels(),
        "malformed": executor.state.malformed(),
        "executions_by_status": statuses,
    });
    if let (Some(all), Value::Object(more), Value::Object(history)) = (result.as_object_mut(), more, history) {
        all.extend(more);
        all.extend(history);
    }
    print_summary(&result);
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

/// Every second of the window from `start`, in that minute of every hour: `S1-S2 M * * * *`, `* M * * * *` for
/// a whole minute.
fn window_cron(start: Timestamp, window_s: i64) -> String {
    let second = start.unix_seconds().rem_euclid(60);
    let minute = start.unix_seconds().rem_euclid(3600) / 60;
    if window_s >= 60 {
        format!("* {minute} * * * *")
    } else {
        format!("{second}-{} {minute} * * * *", second + window_s - 1)
    }
}

fn in_range(at: Timestamp, from: Timestamp, to: Timestamp) -> bool {
    at >= from && at < to
}

/// What the report's figures are computed from the deliveries.
#[derive(Debug, Default)]
struct Figures {
    /// The first receipt of each execution.
    first: Vec<Delivery>,
    /// Requests for an execution already received.
    same_execution: usize,
    /// Executions at attempt 1 beyond the first for a (task, scheduled_at).
    another_execution: usize,
    /// Executions received in the [`BEFORE_S`] seconds before the window.
    before: usize,
    /// Executions due in the window received within [`ON_TIME_US`] of their slot.
    on_time: usize,
    /// Executions received in each second of the window.
    per_second: Vec<usize>,
    peak: usize,
    /// The best average of `per_second` over [`HELD_S`] seconds in a row.
    held: f64,
}

impl Figures {
    fn of(received: &[Delivery], start: Timestamp, end: Timestamp) -> Self {
        let sends = Sends::of(received);
        let mut figures = Self {
            same_execution: sends.same_execution,
            another_execution: sends.another_execution,
            first: sends.first,
            ..Self::default()
        };
        let (start_us, end_us) = (start.as_millis() * 1000, end.as_millis() * 1000);
        let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
        for delivery in &figures.first {
            let at = delivery.received_us;
            if at >= start_us - BEFORE_S * 1_000_000 && at < start_us {
                figures.before += 1;
            }
            if in_range(delivery.scheduled_at, start, end) && delivery.lateness_us() < ON_TIME_US {
                figures.on_time += 1;
            }
            if at >= start_us && at < end_us {
                *per_second.entry((at - start_us) / 1_000_000).or_default() += 1;
            }
        }
        let seconds = usize::try_from((end_us - start_us) / 1_000_000).unwrap_or(0);
        figures.per_second = (0..seconds).map(|n| per_second.get(&(n as i64)).copied().unwrap_or(0)).collect();
        figures.peak = figures.per_second.iter().copied().max().unwrap_or(0);
        figures.held = figures
            .per_second
            .windows(HELD_S.min(seconds.max(1)))
            .map(|run| run.iter().sum::<usize>() as f64 / run.len() as f64)
            .fold(0.0, f64::max);
        figures
    }
}

/// What the history says of a window's slots.
#[derive(Debug)]
pub(crate) struct Window {
    /// Distinct (task, scheduled_at) with an execution row.
    pub(crate) slots: i64,
    pub(crate) rows: i64,
    pub(crate) by_status: Value,
    /// Still `pending` or `running`.
    pub(crate) open: i64,
    /// `missed` with an error saying `overloaded`.
    pub(crate) overloaded: i64,
}

/// The slots in [start, end) of the tasks whose names are `LIKE like`, as the `executions` table has them.
pub(crate) async fn window_rows(
    database_url: &str,
    like: &str,
    start: Timestamp,
    end: Timestamp,
) -> anyhow::Result<Window> {
    let db = Database::connect(database_url).await?;
    let of_window = format!(
        "FROM executions e JOIN tasks t ON t.id = e.task_id WHERE t.name LIKE '{like}' \
         AND e.scheduled_at >= {} AND e.scheduled_at < {}",
        start.as_millis(),
        end.as_millis()
    );
    let query = |sql: String| db.query_all_raw(Statement::from_string(DbBackend::MySql, sql));
    let count = |rows: Vec<jobs_migrations::sea_orm::QueryResult>| -> anyhow::Result<i64> {
        Ok(rows.first().map(|row| row.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
    };
    let slots = count(query(format!("SELECT COUNT(DISTINCT e.task_id, e.scheduled_at) AS n {of_window}")).await?)?;
    let overloaded = count(
        query(format!("SELECT COUNT(*) AS n {of_window} AND e.status = 'missed' AND e.error LIKE 'overloaded%'"))
            .await?,
    )?;
    let mut window = Window { slots, rows: 0, by_status: json!({}), open: 0, overloaded };
    let mut by_status = serde_json::Map::new();
    for row in query(format!("SELECT e.status AS status, COUNT(*) AS n {of_window} GROUP BY e.status")).await? {
        let status: String = row.try_get("", "status")?;
        let count: i64 = row.try_get("", "n")?;
        window.rows += count;
        if status == "pending" || status == "running" {
            window.open += count;
        }
        by_status.insert(status, json!(count));
    }
    window.by_status = Value::Object(by_status);
    db.close().await?;
    Ok(window)
}

/// The figures, a few to a line, then the whole result as one JSON line.
fn print_summary(result: &Value) {
    let r = |key: &str| result[key].to_string();
    println!(
        "overload: {} steady + {} extra tasks for {} s ({}), executor max_concurrency {}",
        r("steady_tasks"),
        r("extra_tasks"),
        r("window_s"),
        result["extra_cron"].as_str().unwrap_or_default(),
        r("executor_max_concurrency")
    );
    println!("  before the window: {} received/s", r("rate_before_per_s"));
    println!(
        "  in the window: goodput {}/s (received within 1 s), peak received {}/s, peak held {HELD_S} s {}/s",
        r("goodput_per_s"),
        r("peak_received_per_s"),
        r("peak_held_per_s")
    );
    println!(
        "  sent twice: {} (same execution {}, another execution {})",
        r("sent_twice"),
        r("sent_twice_same_execution"),
        r("sent_twice_another_execution")
    );
    println!(
        "  heartbeats: {} sent, {} failed, p99 {} ms; executor shown offline in {} of {} samples ({} polls failed)",
        r("heartbeats"),
        r("heartbeats_failed"),
        r("heartbeat_p99_ms"),
        r("executor_offline_samples"),
        r("executor_samples"),
        r("executor_poll_failed")
    );
    println!(
        "  steady lateness 10-30 s after: p50 {} ms, p99 {} ms, max {} ms ({} of {} fires received)",
        r("steady_after_p50_ms"),
        r("steady_after_p99_ms"),
        r("steady_after_max_ms"),
        r("steady_after_received"),
        r("steady_after_slots")
    );
    println!(
        "  window slots {}: {} with a row ({} rows) {}, {} pending/running, {} missed (overloaded); shed metric {}",
        r("window_slots"),
        r("window_slots_with_row"),
        r("window_rows"),
        r("window_by_status"),
        r("window_open"),
        r("window_missed_overloaded"),
        r("fires_shed_overloaded")
    );
    println!(
        "  RSS peak {} MB; /health p99 {} ms, max {} ms, {} of {} failed; /ready {} degraded, {} 503, {} failed of {}",
        r("rss_peak_mb"),
        r("health_p99_ms"),
        r("health_max_ms"),
        r("health_failed"),
        r("health_probes"),
        r("ready_degraded"),
        r("ready_503"),
        r("ready_failed"),
        r("ready_samples")
    );
    println!("overload: {result}");
}
