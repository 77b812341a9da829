//! `cargo xtask bench`: scenarios run against real processes on the local MariaDB, printed as a table
//! and written to `target/bench/report.json`.

mod accuracy;
mod failover;
mod scale;
mod support;
mod throughput;

use std::path::Path;

use serde_json::{Value, json};

const HELP: &str = "\
cargo xtask bench [accuracy] [throughput] [failover] [scale] [--quick] [--kills N] [--database-url URL]

  accuracy   1,000 tasks every second for 60 s (20 s with --quick) to 3 executors; lateness = receipt time
             minus scheduled time; the same schedules in-process by tokio-cron-scheduler as the peer
  throughput more every-second tasks until lateness p99 passes 1 s; the best rate, and the rate at which
             the same database takes the same rows (insert batched, update per callback, 10 connections)
  failover   3 schedulers (heartbeat 1 s), a task every second, N `kill -9`s of the leader (default 10,
             3 with --quick), each killed leader restarted as a follower
  scale      100,000 tasks every minute or slower (20,000 with --quick): RSS, idle CPU, start to first fire
With no scenario named, all run. Release builds, the local MariaDB (mysql://root@127.0.0.1:3306).
";

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut scenarios = Vec::new();
    let mut options = support::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "accuracy" | "throughput" | "failover" | "scale" => scenarios.push(arg.clone()),
            "--quick" => options.quick = true,
            "--kills" => {
                options.kills =
                    args.next().and_then(|n| n.parse().ok()).ok_or_else(|| anyhow::anyhow!("--kills needs a number"))?
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
        scenarios = ["accuracy", "throughput", "failover", "scale"].map(str::to_owned).to_vec();
    }
    if options.quick && !args_have_kills(&options) {
        options.kills = 3;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut report = serde_json::Map::new();
    for scenario in scenarios {
        println!("== {scenario}");
        let result = match scenario.as_str() {
            "accuracy" => runtime.block_on(accuracy::run(&options))?,
            "scale" => runtime.block_on(scale::run(&options))?,
            "throughput" => runtime.block_on(throughput::run(&options))?,
            _ => runtime.block_on(failover::run(&options))?,
        };
        report.insert(scenario, result);
    }
    let report = Value::Object(report);
    print_table(&report);
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
