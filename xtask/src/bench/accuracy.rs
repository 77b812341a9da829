//! Accuracy: 1,000 tasks firing every second, dispatched to 3 executor instances that call back at once;
//! lateness is executor receipt time minus the scheduled fire time. The same schedules fired in-process by
//! tokio-cron-scheduler, measured the same way, are the peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use jobs_model::Timestamp;

use crate::bench::support::{
    Options, Receipts, Scheduler, build_release, client, fresh_database, lateness_summary, leader, now_us, post,
    recording_executor, snapshot, wait_for,
};

pub(crate) const TASKS: usize = 1000;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let window = if options.quick { 20 } else { 60 };
    let ours = measure_ours(options, TASKS, window).await?;
    let peer = measure_peer(TASKS, window.min(20)).await?;
    let mut result = ours;
    result["peer"] = peer;
    Ok(result)
}

/// Runs `tasks` every-second tasks for `window` seconds against one scheduler and 3 executors.
pub(crate) async fn measure_ours(options: &Options, tasks: usize, window: i64) -> anyhow::Result<Value> {
    let database = fresh_database(&options.server_url, "jobs_bench_accuracy").await?;
    let mut scheduler = Scheduler::new(&database, 18090, "accuracy", &[("JOBS_SCHEDULER__MAX_WORKERS", "64")]);
    scheduler.start()?;
    let http = client();
    let nodes = std::slice::from_ref(&scheduler);
    wait_for("the scheduler to lead", Duration::from_secs(60), || leader(&http, nodes)).await?;
    let names: Vec<String> = (0..tasks).map(|n| format!("bench-{n:05}")).collect();
    let receipts = Receipts::default();
    let mut executors = Vec::new();
    for n in 1..=3 {
        executors.push(recording_executor(&format!("accuracy-{n}"), vec![scheduler.url()], &names, &receipts).await?);
    }
    for name in &names {
        let body = json!({"name": name, "cron_expression": "* * * * * *", "execution_mode": "parallel"});
        post(&http, &format!("{}/api/v1/tasks", scheduler.url()), &body).await?;
    }
    // Warm up for three seconds, then measure whole seconds.
    let start = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + 4) * 1000);
    let end = start.add_millis(window * 1000);
    tokio::time::sleep(Duration::from_millis(end.millis_since(Timestamp::now()).max(0) as u64 + 3000)).await;
    let received: Vec<_> =
        snapshot(&receipts).into_iter().filter(|r| r.scheduled_at >= start && r.scheduled_at < end).collect();
    for executor in executors {
        executor.shutdown().await?;
    }
    scheduler.stop();

    let mut seen: HashMap<(Arc<str>, Timestamp), usize> = HashMap::new();
    for receipt in &received {
        *seen.entry((receipt.task.clone(), receipt.scheduled_at)).or_default() += 1;
    }
    let expected = tasks * window as usize;
    let duplicated: usize = seen.values().map(|count| count - 1).sum();
    let lost = expected.saturating_sub(seen.len());
    let (p50, p99, max) = lateness_summary(received.iter().map(|r| r.lateness_us()))?;
    Ok(json!({
        "tasks": tasks, "window_s": window, "fires": received.len(),
        "p50_ms": p50, "p99_ms": p99, "max_ms": max, "lost": lost, "duplicated": duplicated,
    }))
}

/// The same schedules fired in-process by tokio-cron-scheduler: lateness of each job's start.
async fn measure_peer(tasks: usize, window: i64) -> anyhow::Result<Value> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let latenesses: Arc<Mutex<Vec<i64>>> = Arc::default();
    let scheduler = JobScheduler::new().await?;
    for _ in 0..tasks {
        let latenesses = latenesses.clone();
        let job = Job::new_async("* * * * * *", move |_, _| {
            let latenesses = latenesses.clone();
            Box::pin(async move {
                let now = now_us();
                // The slot is the whole second the job fired for.
                let slot = (now / 1_000_000) * 1_000_000;
                latenesses.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(now - slot);
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    tokio::time::sleep(Duration::from_secs(window as u64 + 1)).await;
    let mut scheduler = scheduler;
    scheduler.shutdown().await?;
    let values = latenesses.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let (p50, p99, max) = lateness_summary(values.iter().copied())?;
    Ok(json!({ "name": "tokio-cron-scheduler 0.15 (in-process, no persistence, no HTTP)", "fires": values.len(),
               "p50_ms": p50, "p99_ms": p99, "max_ms": max }))
}
