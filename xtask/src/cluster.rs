//! `cargo xtask cluster`: the topology of `deploy/docker/docker-compose.yml` as local processes.
//!
//! Three schedulers on 8081, 8082 and 8083 share one MySQL database and elect a leader;
//! the example executor on 9090 registers with all three. Ctrl-C stops them all.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/jobs_cluster";

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut url = DEFAULT_URL.to_owned();
    let mut release = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => url = args.next().context("--database-url needs a URL")?.clone(),
            "--release" => release = true,
            other => anyhow::bail!("unknown argument `{other}` for cluster"),
        }
    }
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "scheduler", "-p", "example-executor"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "cargo build failed");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = |name: &str| format!("{target}/{}/{name}", if release { "release" } else { "debug" });
    std::fs::create_dir_all("logs")?;

    let mut children: Vec<(String, Child)> = Vec::new();
    for n in 1..=3 {
        let child = Command::new(bin("scheduler"))
            .env("JOBS_DATABASE__URL", &url)
            .env("JOBS_SERVER__PORT", format!("808{n}"))
            .env("JOBS_SCHEDULER__INSTANCE_ID", format!("scheduler-{n}"))
            .env("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s")
            .env("JOBS_LOG__FILE", format!("logs/scheduler-{n}.log"))
            .spawn()
            .with_context(|| format!("cannot start scheduler {n}"))?;
        children.push((format!("scheduler-{n} (http://127.0.0.1:808{n})"), child));
    }
    // The executor retries its registration until a scheduler answers.
    let executor = Command::new(bin("example-executor"))
        .env("JOBS_SCHEDULER_URL", "http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083")
        .env("JOBS_EXECUTOR_PORT", "9090")
        .env("JOBS_EXECUTOR_INSTANCE_ID", "executor-1")
        .spawn()
        .context("cannot start the example executor")?;
    children.push(("example-executor (http://127.0.0.1:9090)".to_owned(), executor));
    for (name, child) in &children {
        println!("started {name}, pid {}", child.id());
    }
    println!("database {url}; try: curl localhost:8081/api/v1/scheduler/status; Ctrl-C stops everything");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stopped_early = runtime.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return None,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    for (name, child) in &mut children {
                        if let Ok(Some(status)) = child.try_wait() {
                            return Some(format!("{name} exited with {status}"));
                        }
                    }
                }
            }
        }
    });
    // SIGTERM, the executor first so that it can still deregister: each process shuts down gracefully.
    children.reverse();
    for (_, child) in &children {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for (name, child) in &mut children {
        let status = child.wait()?;
        println!("{name} stopped: {status}");
    }
    match stopped_early {
        Some(reason) => anyhow::bail!("{reason}; stopped the others"),
        None => Ok(()),
    }
}
