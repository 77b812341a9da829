//! Throughput: more and more every-second tasks until lateness p99 passes one second; the highest rate held
//! is compared with the rate at which the same database takes the same rows written straight through sea-orm.

use std::time::Instant;

use serde_json::{Value, json};

use jobs_migrations::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use jobs_model::{ExecutionId, TaskId, Timestamp};

use crate::bench::accuracy::measure_ours;
use crate::bench::support::{Options, build_release, fresh_database};

/// Connections the scheduler's pool uses by default (`database.max_connections`).
const CONNECTIONS: u32 = 10;
/// Rows per multi-row insert, as the planner batches fires.
const BATCH: usize = 500;

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let window = if options.quick { 5 } else { 10 };
    let steps: &[usize] =
        if options.quick { &[1000, 1250, 1500, 2000] } else { &[1000, 1250, 1500, 2000, 3000, 4000, 5000, 6000, 8000] };
    let mut best = 0.0_f64;
    let mut ramp = Vec::new();
    for &tasks in steps {
        let result = measure_ours(options, tasks, window).await?;
        let rate = result["fires"].as_f64().unwrap_or(0.0) / window as f64;
        let p99 = result["p99_ms"].as_f64().unwrap_or(f64::MAX);
        println!("throughput: {tasks} tasks/s -> {rate:.0} executions/s, p99 {p99:.1} ms, lost {}", result["lost"]);
        ramp.push(json!({"tasks": tasks, "executions_per_s": rate, "p99_ms": p99, "lost": result["lost"]}));
        if p99 > 1000.0 || result["lost"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        best = best.max(rate);
    }
    let ceiling = db_ceiling(options).await?;
    Ok(json!({
        "executions_per_s": best.round(),
        "db_ceiling_rows_per_s": ceiling.round(),
        "ratio": if ceiling > 0.0 { (best / ceiling * 100.0).round() / 100.0 } else { 0.0 },
        "ramp": ramp,
    }))
}

/// Executions per second the database takes when each is inserted (batched) and then updated once, as a
/// callback does, over the same number of connections.
async fn db_ceiling(options: &Options) -> anyhow::Result<f64> {
    let url = fresh_database(&options.server_url, "jobs_bench_ceiling").await?;
    let mut connect = ConnectOptions::new(url);
    connect.max_connections(CONNECTIONS).sqlx_logging(false);
    let db = Database::connect(connect).await?;
    use jobs_migrations::{Migrator, MigratorTrait};
    Migrator::up(&db, None).await?;
    let total = if options.quick { 20_000 } else { 50_000 };
    let task = TaskId::new();
    let ids: Vec<ExecutionId> = (0..total).map(|_| ExecutionId::new()).collect();
    let started = Instant::now();
    let base = Timestamp::now().as_millis();
    for (index, chunk) in ids.chunks(BATCH).enumerate() {
        let now = Timestamp::now().as_millis();
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(n, id)| {
                format!(
                    "('{id}', '{task}', 'ceiling', 'cron', 'pending', {slot}, {slot}, '{{}}', NULL, 0, 0, NULL, NULL, NULL, {now}, NULL, NULL, {now}, NULL, NULL)",
                    slot = base + (index * BATCH + n) as i64
                )
            })
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO executions (id, task_id, task_name, trigger_type, status, scheduled_at, fire_key, parameters, \
             executor_id, attempt, retries, retry_at, deadline_at, epoch, created_at, started_at, finished_at, \
             updated_at, result, error) VALUES {}",
            rows.join(", ")
        ))
        .await?;
    }
    let mut workers = Vec::new();
    for part in ids.chunks(ids.len().div_ceil(CONNECTIONS as usize)) {
        let db: DatabaseConnection = db.clone();
        let part = part.to_vec();
        workers.push(tokio::spawn(async move {
            for id in part {
                let now = Timestamp::now().as_millis();
                db.execute_unprepared(&format!(
                    "UPDATE executions SET status = 'success', finished_at = {now}, updated_at = {now} \
                     WHERE id = '{id}' AND status IN ('pending', 'running')"
                ))
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    db.close().await?;
    Ok(rate)
}
