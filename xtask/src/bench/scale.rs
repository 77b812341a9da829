//! Scale: 100,000 tasks with spread-out schedules (daily, spread evenly over the day); the scheduler's
//! resident memory, its CPU while nothing is due, and the time from process start to the first fire.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use jobs_migrations::sea_orm::{ConnectionTrait, Database};
use jobs_model::TaskId;

use crate::bench::support::{Options, build_release, cpu_ticks, ticks_per_second};
use crate::procs::{Scheduler, client, fresh_database, get, wait_for};

const ROWS_PER_INSERT: usize = 1000;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let tasks = if options.quick { 20_000 } else { 100_000 };
    let database = fresh_database(&options.server_url, "jobs_bench_scale").await?;
    insert_tasks(&database, tasks).await?;

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

fn rss_mb_rounded(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Inserts `count` enabled daily tasks, spread evenly over the day, straight into the database.
async fn insert_tasks(database_url: &str, count: usize) -> anyhow::Result<()> {
    // The schema comes from the scheduler's own migrations.
    let db = Database::connect(database_url).await?;
    use jobs_migrations::{Migrator, MigratorTrait};
    Migrator::up(&db, None).await?;
    let now = jobs_model::Timestamp::now().as_millis();
    let mut rows = Vec::with_capacity(ROWS_PER_INSERT);
    for n in 0..count {
        // Spread evenly over the day (100,000 tasks: one every 0.86 s), so that some fire soon after any start.
        let second_of_day = n * 86_400 / count;
        let cron = format!("{} {} {} * * *", second_of_day % 60, second_of_day / 60 % 60, second_of_day / 3600);
        rows.push(format!(
            "('{}', 'scale-{n:06}', '', '{cron}', 'UTC', 'parallel', 'round_robin', 0, NULL, 300, 'fire_once', '{{}}', NULL, 1, NULL, {now}, {now})",
            TaskId::new()
        ));
        if rows.len() == ROWS_PER_INSERT || n + 1 == count {
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

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok(rss_mb_rounded(kb / 1024.0))
}
