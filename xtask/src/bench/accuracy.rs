//! Accuracy: 1,000 tasks firing every second, dispatched to 3 executor instances that call back at once;
//! lateness is executor receipt time minus the scheduled fire time. The same schedules fired in-process by
//! tokio-cron-scheduler, measured the same way, are the peer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::bench::load::{self, Step};
use crate::bench::support::{Options, build_release, lateness_summary};
use crate::procs::now_us;

pub(crate) const TASKS: usize = 1000;
/// Whole seconds after the tasks are created that are not measured.
const WARM_UP_S: i64 = 3;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let window = if options.quick { 20 } else { 60 };
    let ours = measure_ours(options, TASKS, window).await?;
    let peer = measure_peer(TASKS, 0, window.min(20)).await?;
    let mut result = ours.summary()?;
    result["peer"] = peer;
    Ok(result)
}

/// Runs `tasks` every-second tasks for `window` seconds against one scheduler and 3 executors.
async fn measure_ours(options: &Options, tasks: usize, window: i64) -> anyhow::Result<load::Outcome> {
    load::run(options, &step(tasks, window)).await
}

/// `tasks` every-second tasks, measured for `window` seconds, with one scheduler and 3 executors that ask for
/// no early delivery.
pub(crate) fn step(tasks: usize, window: i64) -> Step<'static> {
    Step {
        name: "accuracy",
        port: 18090,
        tasks,
        executors: 3,
        early_delivery: Duration::ZERO,
        warm_up_s: WARM_UP_S,
        window_s: window,
        measure_cost: false,
    }
}

/// The same schedules fired in-process by tokio-cron-scheduler: lateness of each job's start, for the slots of
/// `window` whole seconds after `warm_up` seconds.
pub(crate) async fn measure_peer(tasks: usize, warm_up: i64, window: i64) -> anyhow::Result<Value> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let starts_us: Arc<Mutex<Vec<i64>>> = Arc::default();
    let scheduler = JobScheduler::new().await?;
    for _ in 0..tasks {
        let starts_us = starts_us.clone();
        let job = Job::new_async("* * * * * *", move |_, _| {
            let starts_us = starts_us.clone();
            Box::pin(async move {
                starts_us.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(now_us());
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    let first = (now_us() / 1_000_000 + 1 + warm_up) * 1_000_000;
    let end = first + window * 1_000_000;
    let left_us = u64::try_from(end - now_us()).unwrap_or(0);
    tokio::time::sleep(Duration::from_micros(left_us) + Duration::from_secs(1)).await;
    let mut scheduler = scheduler;
    scheduler.shutdown().await?;
    let starts_us = starts_us.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let latenesses: Vec<i64> = starts_us
        .into_iter()
        .filter_map(|start| {
            // The slot is the whole second the job fired for.
            let slot = (start / 1_000_000) * 1_000_000;
            (first..end).contains(&slot).then_some(start - slot)
        })
        .collect();
    let (p50, p99, max) = lateness_summary(latenesses.iter().copied())?;
    Ok(json!({ "name": "tokio-cron-scheduler 0.15 (in-process, no persistence, no HTTP)", "fires": latenesses.len(),
               "expected": tasks * usize::try_from(window).unwrap_or(0), "p50_ms": p50, "p99_ms": p99, "max_ms": max }))
}
