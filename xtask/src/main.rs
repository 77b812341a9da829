//! `cargo xtask`: the project's automation. `cargo xtask help` lists the commands.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod chaos;
mod cluster;
mod migrate;
mod procs;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use xshell::{Shell, cmd};

const HELP: &str = "\
cargo xtask <command>

commands:
  test [--mysql URL] [--postgres URL]   fmt check, clippy -D warnings, every test (the CI gate)
  migrate [up|down|status|fresh] [--database-url URL]
                                        run migrations (default sqlite://data/jobs.db)
  bench [accuracy] [throughput] [curve] [failover] [scale] [--quick] [--kills N]
                                        benchmarks on real processes and the local MariaDB
                                        (the harness itself runs as a release build)
  chaos [scenario...] [--short] [--backend mariadb|postgres|sqlite] [--release]
                                        fault injection on real processes (own MariaDB, PostgreSQL
                                        and tmpfs); a verdict per scenario, target/chaos/report.json
  cluster [--database-url URL] [--release]
                                        3 schedulers (8081-8083) on one MySQL database and the
                                        example executor (9090), as local processes; Ctrl-C stops all
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "test" => test(rest),
        "migrate" => migrate::run(rest),
        "cluster" => cluster::run(rest),
        "chaos" => chaos(rest),
        "bench" if cfg!(debug_assertions) => release_bench(rest),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => anyhow::bail!("unknown command `{other}`\n{HELP}"),
    }
}

/// Runs the benchmarks from a release build of this harness: its in-process executors and peer are measured too,
/// and unoptimised they would be the slowest part of every scenario.
fn release_bench(args: &[String]) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    cmd!(sh, "cargo run --release --quiet --package xtask -- bench {args...}").run()?;
    Ok(())
}

/// Runs the chaos scenarios; any scenario failing its verdict fails the command.
fn chaos(args: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(chaos::run(args)?, "a chaos scenario failed its verdict");
    Ok(())
}

/// The whole gate: formatting, lints, then every test of the workspace.
fn test(args: &[String]) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a URL"))?;
        match arg.as_str() {
            "--mysql" => sh.set_var("JOBS_TEST_MYSQL_URL", value),
            "--postgres" => sh.set_var("JOBS_TEST_POSTGRES_URL", value),
            other => anyhow::bail!("unknown option `{other}` for test"),
        }
    }
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    cmd!(sh, "cargo test --workspace").run()?;
    Ok(())
}
