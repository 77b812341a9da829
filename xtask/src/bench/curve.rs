//! Curve: lateness against load. Steps of 10, 100 and 1,000 every-second tasks, each on a fresh database with
//! one scheduler process and one executor, once for each executor kind; tokio-cron-scheduler in-process at
//! 1,000 tasks next to them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bench::accuracy::measure_peer;
use crate::bench::load::{self, Outcome, Step};
use crate::bench::support::{Options, build_release, lateness_summary};
use crate::procs::Receipt;

const TASKS: [usize; 3] = [10, 100, 1000];
/// The peer runs at this load only.
const PEER_TASKS: usize = 1000;
/// Whole seconds at the start of each step that are not measured.
const WARM_UP_S: i64 = 2;

/// How the step's executor asks for its fires.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// No early delivery: each fire is sent at its instant, and its handler starts on receipt.
    Plain,
    /// Asks for fires up to 1 s early, for the SDK to hold each until its `scheduled_at`.
    Sdk,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Sdk => "sdk",
        }
    }

    fn early_delivery(self) -> Duration {
        match self {
            Self::Plain => Duration::ZERO,
            Self::Sdk => Duration::from_secs(1),
        }
    }
}

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let step_s = if options.quick { 8 } else { 20 };
    let mut rows = Vec::new();
    for tasks in TASKS {
        for kind in [Kind::Plain, Kind::Sdk] {
            let step = Step {
                name: "curve",
                port: 18096,
                tasks,
                executors: 1,
                early_delivery: kind.early_delivery(),
                warm_up_s: WARM_UP_S,
                window_s: step_s - WARM_UP_S,
                measure_cost: false,
            };
            let row = row(kind, &load::run(options, &step).await?)?;
            println!("curve: {}", line(&row));
            rows.push(row);
        }
    }
    let peer = measure_peer(PEER_TASKS, WARM_UP_S, step_s - WARM_UP_S).await?;
    // The peer's fires carry no task, so duplicates cannot be told apart: lost is expected minus received.
    let lost = peer["expected"].as_u64().unwrap_or(0).saturating_sub(peer["fires"].as_u64().unwrap_or(0));
    let row = json!({
        "tasks": PEER_TASKS, "executor": "tokio-cron-scheduler", "p50_ms": peer["p50_ms"], "p99_ms": peer["p99_ms"],
        "max_ms": peer["max_ms"], "received": peer["fires"], "expected": peer["expected"], "lost": lost,
    });
    println!("curve: {}", line(&row));
    rows.push(row);
    Ok(Value::Array(rows))
}

fn row(kind: Kind, outcome: &Outcome) -> anyhow::Result<Value> {
    let (p50, p99, max) = lateness_summary(outcome.received.iter().map(Receipt::lateness_us))?;
    let (duplicated, lost) = outcome.duplicated_and_lost();
    Ok(json!({
        "tasks": outcome.tasks, "executor": kind.name(), "p50_ms": p50, "p99_ms": p99, "max_ms": max,
        "received": outcome.received.len(), "expected": outcome.expected(), "lost": lost, "duplicated": duplicated,
        "early_starts": outcome.early_starts(),
    }))
}

/// The curve as a table.
pub(crate) fn print_table(rows: &Value) {
    println!("\n| tasks | executor | p50 ms | p99 ms | max ms | received / expected | lost | early starts |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows.as_array().into_iter().flatten() {
        println!("| {} |", line(row));
    }
}

/// One row's cells; a figure the row does not have (the peer's early starts) is `-`.
fn line(row: &Value) -> String {
    let cell = |key: &str| match &row[key] {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        value => value.to_string(),
    };
    let cells = [
        cell("tasks"),
        cell("executor"),
        cell("p50_ms"),
        cell("p99_ms"),
        cell("max_ms"),
        format!("{} / {}", cell("received"), cell("expected")),
        cell("lost"),
        cell("early_starts"),
    ];
    cells.join(" | ")
}
