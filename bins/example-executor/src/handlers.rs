//! The demo handlers: the seed's `daily_report` and `hourly_sync`, and `echo`, `sleep`, `fail`, and `shard_report`
//! for a `broadcast` task.

use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{DeclaredTask, ExecutionMode, ExecutorBuilder, JobContext, JobError, Parameters};

/// The longest `sleep` accepts, so that a typo cannot hold a slot for days.
const MAX_SLEEP_SECONDS: f64 = 3600.0;

/// Declares the seed's `daily_report` and adds every demo handler.
pub(crate) fn add_to(builder: ExecutorBuilder) -> ExecutorBuilder {
    builder
        .declare(daily_report_task())
        .handler("daily_report", daily_report)
        .handler("hourly_sync", hourly_sync)
        .handler("echo", echo)
        .handler("sleep", sleep)
        .handler("fail", fail)
        .handler("shard_report", shard_report)
}

/// The task exactly as the seed's registration declares it.
fn daily_report_task() -> DeclaredTask {
    DeclaredTask {
        task_name: "daily_report".into(),
        cron: Some("0 0 2 * * *".into()),
        execution_mode: Some(ExecutionMode::Sequential),
        load_balance_strategy: Some("round_robin".into()),
        timeout: Some(300),
        ..DeclaredTask::default()
    }
}

async fn daily_report(ctx: JobContext) -> Result<Value, JobError> {
    ctx.log(format!("generating the daily report for {}", ctx.scheduled_at()));
    let rows = 42;
    ctx.log(format!("{rows} rows aggregated"));
    Ok(json!({"report": "daily", "rows": rows, "scheduled_at": ctx.scheduled_at()}))
}

async fn hourly_sync(ctx: JobContext) -> Result<Value, JobError> {
    let source = text(ctx.parameters(), "source", "database_a");
    let target = text(ctx.parameters(), "target", "database_b");
    let force = ctx.parameters().get("force").and_then(Value::as_bool).unwrap_or(false);
    ctx.log(format!("syncing {source} -> {target} (force: {force})"));
    Ok(json!({"synced": true, "source": source, "target": target, "force": force}))
}

async fn echo(ctx: JobContext) -> Result<Parameters, JobError> {
    ctx.log(format!("echoing {} parameters", ctx.parameters().len()));
    Ok(ctx.parameters().clone())
}

async fn sleep(ctx: JobContext) -> Result<Value, JobError> {
    let seconds = match ctx.parameters().get("seconds") {
        None => 1.0,
        Some(value) => value.as_f64().ok_or_else(|| JobError::new(format!("`seconds` is not a number: {value}")))?,
    };
    if !(0.0..=MAX_SLEEP_SECONDS).contains(&seconds) {
        return Err(JobError::new(format!("`seconds` must be between 0 and {MAX_SLEEP_SECONDS}, not {seconds}")));
    }
    let whole = seconds.trunc() as u64;
    for second in 1..=whole {
        tokio::time::sleep(Duration::from_secs(1)).await;
        ctx.log(format!("slept {second}/{seconds}s"));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds.fract())).await;
    ctx.log(format!("done after {seconds}s"));
    Ok(json!({"slept_seconds": seconds}))
}

async fn fail(ctx: JobContext) -> Result<(), JobError> {
    let message = text(ctx.parameters(), "message", "this task always fails");
    ctx.log(format!("failing on purpose: {message}"));
    Err(JobError::new(message))
}

/// A broadcast task's share of the work: of `items` items (default 100), those whose number modulo the shard total
/// is this shard's index. Run without a shard (any other strategy), it takes them all.
async fn shard_report(ctx: JobContext) -> Result<Value, JobError> {
    let items = match ctx.parameters().get("items") {
        None => 100,
        Some(value) => {
            value.as_u64().ok_or_else(|| JobError::new(format!("`items` is not a whole number: {value}")))?
        }
    };
    let (index, total) = ctx.shard().map_or((0, 1), |shard| (u64::from(shard.index), u64::from(shard.total.max(1))));
    let mine = (0..items).filter(|item| item % total == index).count();
    ctx.log(format!("shard {index} of {total}: {mine} of {items} items"));
    Ok(json!({"shard": index, "total": total, "items": mine}))
}

fn text(parameters: &Parameters, key: &str, default: &str) -> String {
    parameters.get(key).and_then(Value::as_str).unwrap_or(default).to_owned()
}

#[cfg(test)]
mod tests;
