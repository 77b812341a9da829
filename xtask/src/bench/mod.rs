//! `cargo xtask bench`: scenarios run against real processes on the local MariaDB, printed as a table
//! and written to `target/bench/report.json`.

mod accuracy;
mod burst;
mod cost;
mod curve;
mod failover;
mod load;
mod overload;
mod plain;
mod ramp;
mod scale;
mod support;
mod targets;
mod throughput;
mod watch;

use std::path::Path;

use serde_json::{Value, json};

const HELP: &str = "\
cargo xtask bench [accuracy] [curve] [throughput] [failover] [scale] [burst] [overload] [ramp] [--quick] [--kills N] [--burst-tasks N] [--scale-tasks N]
                  [--database-url URL]

  accuracy   1,000 tasks every second for 60 s (20 s with --quick) to 3 executors; lateness = receipt time
             minus scheduled time; the same schedules in-process by tokio-cron-scheduler as the peer
  curve      lateness against load: 10, 100 and 1,000 every-second tasks, 20 s each (8 s with --quick, the
             first 2 s not measured), to one executor without early delivery (plain) and one with 1 s (sdk);
             lateness = handler start minus scheduled time; tokio-cron-scheduler at 1,000 as the peer
  throughput more every-second tasks until lateness p99 passes 1 s; the best rate, and the rate at which
             the same database takes the same rows (insert batched, update per callback, 10 connections);
             statements (server-wide counters) and scheduler and database CPU per execution
  failover   3 schedulers (heartbeat 1 s), a task every second, N `kill -9`s of the leader (default 10,
             3 with --quick), each killed leader restarted as a follower; the first half with an executor
             asking for 1 s of early delivery, the second with one asking for none
  scale      1,000,000 daily tasks spread over the day (20,000 with --quick): RSS, idle CPU, start to first fire
  burst      20,000 tasks due at the same instant (5,000 with --quick) to a plain executor of the bench's own
             that records every request: fires sent twice, lost, the last one's delay after the instant;
             heartbeat and health latency during the burst; executions by status afterwards
  overload   2 schedulers, 1,500 every-second tasks plus 3,500 firing every second during one minute only
             (300 and 700 for 20 s with --quick), the plain executor of burst declaring max_concurrency 1,000:
             goodput in the window, fires sent twice, what the window's fires became 40 s after it, heartbeats,
             the executor's state, /ready, RSS, /health, and the steady tasks' lateness 10-30 s after the window
  ramp       2 schedulers, the same executor, 500 every-second tasks and 500 more every 6 s up to 5,000 (100 more
             every 3 s up to 1,000 with --quick), then the load drops: goodput against its peak as the load grows
             past it, leader epochs, heartbeats, the executor's state, /health, what every fire became, and the
             base tasks' lateness 10-20 s after against before
With no scenario named, all run. Release builds, the local MariaDB (mysql://root@127.0.0.1:3306).
";

/// Figures a scenario measures that the report holds at its top level rather than under the scenario.
const TOP_LEVEL: [&str; 1] = ["cpu_us_per_execution"];

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut scenarios = Vec::new();
    let mut options = support::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "accuracy" | "curve" | "throughput" | "failover" | "scale" | "burst" | "overload" | "ramp" => {
                scenarios.push(arg.clone())
            }
            "--quick" => options.quick = true,
            "--kills" => {
                options.kills =
                    args.next().and_then(|n| n.parse().ok()).ok_or_else(|| anyhow::anyhow!("--kills needs a number"))?
            }
            "--burst-tasks" => {
                options.burst_tasks = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("--burst-tasks needs a number"))?,
                )
            }
            "--scale-tasks" => {
                options.scale_tasks = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("--scale-tasks needs a number"))?,
                )
            }
            "--database-url" => {
                options.server_url =
                    args.next().cloned().ok_or_else(|| anyhow::anyhow!("--database-url needs a URL"))?
            }
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument `{other}` for bench\n{HELP}"),
        }
    }
    if scenarios.is_empty() {
        scenarios = ["accuracy", "curve", "throughput", "failover", "scale", "burst", "overload", "ramp"]
            .map(str::to_owned)
            .to_vec();
    }
    if options.quick && !args_have_kills(&options) {
        options.kills = 3;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut report = serde_json::Map::new();
    for scenario in scenarios {
        println!("== {scenario}");
        let mut result = match scenario.as_str() {
            "accuracy" => runtime.block_on(accuracy::run(&options))?,
            "curve" => runtime.block_on(curve::run(&options))?,
            "scale" => runtime.block_on(scale::run(&options))?,
            "burst" => runtime.block_on(burst::run(&options))?,
            "overload" => runtime.block_on(overload::run(&options))?,
            "ramp" => runtime.block_on(ramp::run(&options))?,
            "throughput" => runtime.block_on(throughput::run(&options))?,
            _ => runtime.block_on(failover::run(&options))?,
        };
        for key in TOP_LEVEL {
            if let Some(value) = result.as_object_mut().and_then(|result| result.remove(key)) {
                report.insert(key.to_owned(), value);
            }
        }
        report.insert(scenario, result);
    }
    let report = Value::Object(report);
    print_table(&report);
    if let Some(curve) = report.get("curve") {
        curve::print_table(curve);
    }
    if report.get("throughput").is_some() {
        println!("\n{}", cost::NOTE);
    }
    targets::print_table(&report);
    let path = Path::new("target/bench/report.json");
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(path, serde_json::to_string_pretty(&json!(report))?)?;
    println!("report written to {}", path.display());
    Ok(())
}

/// Whether `--kills` was given (quick mode lowers only the default).
fn args_have_kills(options: &support::Options) -> bool {
    options.kills != support::Options::default().kills
}

fn print_table(report: &Value) {
    println!("\n| scenario | metric | value |\n|---|---|---|");
    if let Some(scenarios) = report.as_object() {
        for (scenario, metrics) in scenarios {
            for (metric, value) in metrics.as_object().into_iter().flatten() {
                if let Some(nested) = value.as_object() {
                    for (name, value) in nested {
                        println!("| {scenario} | {metric}.{name} | {value} |");
                    }
                } else if !value.is_array() {
                    println!("| {scenario} | {metric} | {value} |");
                }
            }
        }
    }
}
