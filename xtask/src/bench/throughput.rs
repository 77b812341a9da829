//! Throughput: more and more every-second tasks until lateness p99 passes one second; the highest rate held
//! is compared with the rate at which the same database takes the same rows written straight through sea-orm.
//! Each step also reads the statements and CPU time an execution costs (see `cost.rs`).

use std::time::Instant;

use serde_json::{Value, json};

use jobs_migrations::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use jobs_model::{ExecutionId, TaskId, Timestamp};

use crate::bench::accuracy;
use crate::bench::cost;
use crate::bench::load::{self, Step};
use crate::bench::support::{Options, build_release};
use crate::procs::fresh_database;

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
    // The cost of the best step held, or of the first if none held.
    let mut cost = Value::Null;
    for &tasks in steps {
        let outcome = load::run(options, &Step { measure_cost: true, ..accuracy::step(tasks, window) }).await?;
        let result = outcome.summary()?;
        let mut step_cost = outcome.cost.unwrap_or_default();
        step_cost["tasks"] = json!(tasks);
        let rate = result["fires"].as_f64().unwrap_or(0.0) / window as f64;
        let p99 = result["p99_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "throughput: {tasks} tasks/s -> {rate:.0} executions/s, p99 {p99:.1} ms, lost {}, {} statements and \
             {} µs of scheduler CPU per execution",
            result["lost"], step_cost["statements_per_execution"], step_cost["cpu_us_per_execution"]["scheduler"]
        );
        ramp.push(json!({
            "tasks": tasks, "executions_per_s": rate, "p99_ms": p99, "lost": result["lost"],
            "statements_per_execution": step_cost["statements_per_execution"],
        }));
        if cost.is_null() {
            cost = step_cost.clone();
        }
        if p99 > 1000.0 || result["lost"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        if rate >= best {
            best = rate;
            cost = step_cost;
        }
    }
    println!("throughput: {}", cost::NOTE);
    let ceiling = db_ceiling(options).await?;
    Ok(json!({
        "executions_per_s": best.round(),
        "db_ceiling_rows_per_s": ceiling.round(),
        "ratio": if ceiling > 0.0 { (best / ceiling * 100.0).round() / 100.0 } else { 0.0 },
        "ramp": ramp,
        "statements_per_execution": cost["statements_per_execution"],
        "statements": cost["statements"],
        "other_commands": cost["other_commands"],
        "cost_window": {"tasks": cost["tasks"], "executions": cost["executions"], "note": cost::NOTE},
        // Moved to the report's top level by `bench::run`.
        "cpu_us_per_execution": cost["cpu_us_per_execution"],
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
