//! Scale: a million tasks (or `--scale-tasks`) with spread-out schedules (daily, spread evenly over the day); the scheduler's
//! resident memory, its CPU while nothing is due, and the time from process start to the first fire.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::bench::support::{Options, build_release, cpu_ticks, insert_tasks, rss_mb, ticks_per_second};
use crate::procs::{Scheduler, client, fresh_database, get, wait_for};

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let tasks = options.scale_tasks.unwrap_or(if options.quick { 20_000 } else { 1_000_000 });
    let database = fresh_database(&options.server_url, "jobs_bench_scale").await?;
    insert_tasks(&database, spread_tasks(tasks)).await?;

    let mut scheduler = Scheduler::new(&database, 18095, "scale", &[]);
    let started = Instant::now();
    scheduler.start()?;
    let http = client();
    let url = format!("{}/api/v1/executions?limit=1", scheduler.url());
    wait_for("the first fire", Duration::from_secs(300), || async {
        get(&http, &url).await.filter(|page| page["items"].as_array().is_some_and(|items| !items.is_empty()))
    })
    .await?;
    let start_to_first_fire = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = scheduler.pid().ok_or_else(|| anyhow::anyhow!("the scheduler is not running"))?;
    let rss_settled = rss_mb(pid)?;
    let cpu_before = cpu_ticks(pid)?;
    let measured = Duration::from_secs(if options.quick { 10 } else { 30 });
    tokio::time::sleep(measured).await;
    let cpu_after = cpu_ticks(pid)?;
    let idle_cpu_pct = (cpu_after - cpu_before) as f64 / ticks_per_second() / measured.as_secs_f64() * 100.0;
    let rss_after_mb = rss_mb(pid)?;
    scheduler.stop();
    Ok(json!({
        "tasks": tasks,
        "rss_mb": rss_after_mb.max(rss_settled),
        "idle_cpu_pct": (idle_cpu_pct * 100.0).round() / 100.0,
        "start_to_first_fire_s": (start_to_first_fire * 100.0).round() / 100.0,
        "fires_per_second_average": tasks as f64 / 86_400.0,
    }))
}

/// `count` enabled daily tasks, spread evenly over the day (1,000,000 tasks: 11.6 a second), so that some fire
/// soon after any start.
fn spread_tasks(count: usize) -> impl Iterator<Item = (String, String)> {
    (0..count).map(move |n| {
        let second_of_day = n * 86_400 / count;
        let cron = format!("{} {} {} * * *", second_of_day % 60, second_of_day / 60 % 60, second_of_day / 3600);
        (format!("scale-{n:06}"), cron)
    })
}
