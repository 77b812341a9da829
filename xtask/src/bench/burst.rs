//! Burst: many tasks due at one instant, sent to the bench's plain executor (`plain`), which records every
//! `/execute` it receives, to count fires sent twice and fires lost, how late the last one came, and whether
//! heartbeats and the health endpoint kept answering.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use jobs_model::{ExecutionId, Timestamp};

use crate::bench::plain::{Delivery, PlainExecutor, Registration};
use crate::bench::support::{
    Options, build_release, executions_by_status, insert_tasks, lateness_summary, millis, probe_health, sleep_until,
};
use crate::procs::{Scheduler, client, fresh_database, leader, wait_for};

/// The scheduler's port (the other scenarios take 18081 to 18083, 18090, 18095, 18096, 18098 and 18099).
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
/// The throughput target (executions/s) the last fire is held to: within tasks / this + 5 s of the instant.
const TARGET_RATE: f64 = 5000.0;
/// How the executor registers: no `max_concurrency`, every fire of the instant is sent as soon as it can be.
const REGISTRATION: Registration<'static> =
    Registration { name: "burst", instance_id: "burst-1", max_concurrency: None };

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let tasks = options.burst_tasks.unwrap_or(if options.quick { 5_000 } else { 20_000 });
    let names: Vec<String> = (0..tasks).map(|n| format!("burst-{n:05}")).collect();
    let database = fresh_database(&options.server_url, "jobs_bench_burst").await?;
    // Inserting, loading and declaring many tasks takes longer: a second more per thousand beyond the default.
    let lead_s = LEAD_S + i64::try_from(tasks.saturating_sub(20_000) / 1_000).unwrap_or(0);
    let instant = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + lead_s) * 1000);
    let cron = daily_cron_at(instant);
    insert_tasks(&database, names.iter().map(|name| (name.clone(), cron.clone()))).await?;

    let mut scheduler = Scheduler::new(&database, PORT, "burst", &[("JOBS_SCHEDULER__MAX_WORKERS", "64")]);
    scheduler.start()?;
    let http = client();
    let nodes = std::slice::from_ref(&scheduler);
    wait_for("the scheduler to lead", Duration::from_secs(40), || leader(&http, nodes)).await?;
    let executor = PlainExecutor::start(&scheduler.url(), REGISTRATION, &names).await?;
    let margin_ms = instant.millis_since(Timestamp::now());
    anyhow::ensure!(
        margin_ms >= MIN_MARGIN_MS,
        "start-up took too long: the executor registered {margin_ms} ms before the instant"
    );

    let (stop, stopped) = watch::channel(false);
    let heartbeats = executor.heartbeat(&scheduler.url(), stopped.clone());
    sleep_until(instant.add_millis(-millis(PROBE_LEAD))).await;
    let health = tokio::spawn(probe_health(format!("{}/health", scheduler.url()), stopped));
    let deadline = instant.add_millis(millis(DEADLINE));
    while executor.state.tasks_received() < tasks && Timestamp::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(AFTERWARDS).await;
    let _ = stop.send(true);
    heartbeats.await?;
    let health = health.await?;
    let statuses = executions_by_status(&database).await?;
    scheduler.stop();
    executor.stop();

    let received = executor.state.snapshot();
    let heartbeats = executor.state.heartbeats();
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
        "callbacks_failed": executor.state.callbacks_failed(),
        "cancels": executor.state.cancels(),
        "malformed": executor.state.malformed(),
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
