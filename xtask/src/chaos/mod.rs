//! `cargo xtask chaos`: fault-injection scenarios on real processes (a full SQLite disk, a frozen leader, database
//! blips and outages), each judged by what an executor received against what should have fired; a table, and
//! `target/chaos/report.json`.

mod cluster;
mod disk;
mod leader;
mod observe;
mod outage;
mod proxy;
mod sqlite;
mod verdict;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use jobs_storage::testing::servers::DatabaseServer;

use crate::chaos::verdict::Outcome;
use crate::procs::fresh_database;

const HELP: &str = "\
cargo xtask chaos [scenario...] [--short] [--backend mariadb|postgres|sqlite] [--release]

  sqlite-disk-full       the SQLite file system full for 20 s (8 s with --short), manual triggers throughout
  sqlite-readonly-start  a scheduler started on a read-only data directory, which later becomes writable
  frozen-leader          SIGSTOP of the leader of 3 schedulers for 45 s (20 s), then SIGCONT
  db-blips               5 database freezes of 2-3 s (3 with --short), one of them a crash and restart
  db-down-15s            the database killed for 15 s (8 s): API, /ready and /health during and after
  lease-lapse            SIGSTOP of the leader for 3.5 s, past its lease and short of a failover
  paused-mid-send        SIGSTOP of a scheduler for 12 s while its requests to an executor are in flight
  db-down-70s            the database down 70 s with a 60 s misfire grace (12 s and 5 s with --short)
With no scenario named, all run, each on every backend it supports (mariadb, postgres or sqlite) unless
--backend picks one. The harness starts its own MariaDB server, PostgreSQL cluster and tmpfs; it uses the
debug scheduler (built first) unless --release. Exit status 1 if any scenario fails its verdict.
";

/// Every scenario and the backends it runs on.
const SCENARIOS: &[(&str, &[Backend])] = &[
    ("sqlite-disk-full", &[Backend::Sqlite]),
    ("sqlite-readonly-start", &[Backend::Sqlite]),
    ("frozen-leader", &[Backend::MariaDb, Backend::Postgres]),
    ("db-blips", &[Backend::MariaDb, Backend::Postgres]),
    ("db-down-15s", &[Backend::MariaDb, Backend::Postgres]),
    ("lease-lapse", &[Backend::MariaDb]),
    ("paused-mid-send", &[Backend::MariaDb]),
    ("db-down-70s", &[Backend::MariaDb, Backend::Postgres]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    MariaDb,
    Postgres,
    Sqlite,
}

impl Backend {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "mariadb" | "mysql" => Some(Self::MariaDb),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// The storage crate's name for this backend, whose servers the harness starts.
    fn storage(self) -> anyhow::Result<jobs_storage::Backend> {
        match self {
            Self::MariaDb => Ok(jobs_storage::Backend::MySql),
            Self::Postgres => Ok(jobs_storage::Backend::Postgres),
            Self::Sqlite => anyhow::bail!("SQLite has no server to start"),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb",
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

/// What every scenario is given.
#[derive(Debug)]
pub(crate) struct Context {
    /// The CI form: every scenario under a minute.
    pub(crate) short: bool,
    /// The scheduler binary.
    pub(crate) binary: PathBuf,
    /// `target/chaos`: logs, data directories, mounts and the report.
    pub(crate) dir: PathBuf,
}

impl Context {
    /// `full` in the full form, `short` with `--short`.
    pub(crate) fn pick<T>(&self, full: T, short: T) -> T {
        if self.short { short } else { full }
    }
}

/// The target directory, as cargo places it.
fn target_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<bool> {
    let mut names = Vec::new();
    let mut backend = None;
    let mut short = false;
    let mut release = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--short" => short = true,
            "--release" => release = true,
            "--backend" => {
                let word = args.next().map(String::as_str).unwrap_or_default();
                backend = Some(Backend::parse(word).ok_or_else(|| anyhow::anyhow!("unknown backend `{word}`"))?);
            }
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(true);
            }
            name if SCENARIOS.iter().any(|(known, _)| *known == name) => names.push(name.to_owned()),
            other => anyhow::bail!("unknown argument `{other}` for chaos\n{HELP}"),
        }
    }
    let mut runs = Vec::new();
    for (name, backends) in SCENARIOS {
        if !names.is_empty() && !names.iter().any(|named| named == name) {
            continue;
        }
        for each in backends.iter().copied().filter(|each| backend.is_none_or(|picked| picked == *each)) {
            runs.push((*name, each));
        }
    }
    anyhow::ensure!(!runs.is_empty(), "no scenario runs on that backend");

    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "scheduler"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "cargo build -p scheduler failed");
    let target = target_dir();
    let binary = target.join(if release { "release" } else { "debug" }).join("scheduler");
    let ctx = Context { short, binary, dir: target.join("chaos") };
    std::fs::create_dir_all(ctx.dir.join("logs"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut outcomes = Vec::new();
    for (name, backend) in runs {
        println!("== {name} ({})", backend.as_str());
        let started = Instant::now();
        let mut outcome = Outcome::new(name, backend.as_str());
        // An interrupt drops the scenario, whose guards kill its processes and unmount its file systems.
        let interrupted = runtime.block_on(async {
            tokio::select! {
                result = scenario(&ctx, name, backend, &mut outcome) => {
                    if let Err(error) = result {
                        outcome.failures.push(format!("harness: {error:#}"));
                    }
                    false
                }
                () = interrupt() => true,
            }
        });
        if interrupted {
            outcome.failures.push("interrupted".to_owned());
        }
        outcome.seconds = started.elapsed().as_secs_f64();
        outcome.finish();
        println!(
            "   {} in {:.0} s{}",
            if outcome.passed { "pass" } else { "FAIL" },
            outcome.seconds,
            outcome.failures.iter().map(|reason| format!("\n   - {reason}")).collect::<String>()
        );
        outcomes.push(outcome);
        if interrupted {
            break;
        }
    }
    print!("\n{}", verdict::table(&outcomes));
    let path = ctx.dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&outcomes)?)?;
    println!("report written to {}", path.display());
    Ok(outcomes.iter().all(|outcome| outcome.passed))
}

async fn scenario(ctx: &Context, name: &str, backend: Backend, outcome: &mut Outcome) -> anyhow::Result<()> {
    match name {
        "sqlite-disk-full" => sqlite::disk_full(ctx, outcome).await,
        "sqlite-readonly-start" => sqlite::readonly_start(ctx, outcome).await,
        "frozen-leader" => leader::frozen_leader(ctx, backend, outcome).await,
        "lease-lapse" => leader::lease_lapse(ctx, backend, outcome).await,
        "paused-mid-send" => leader::paused_mid_send(ctx, backend, outcome).await,
        "db-blips" => outage::db_blips(ctx, backend, outcome).await,
        "db-down-15s" => outage::db_down(ctx, backend, outcome).await,
        _ => outage::db_down_past_grace(ctx, backend, outcome).await,
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupt() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// A server of the harness's own for `backend` and a fresh database on it.
pub(crate) async fn database(ctx: &Context, backend: Backend) -> anyhow::Result<(DatabaseServer, String)> {
    let server = DatabaseServer::start(backend.storage()?, &ctx.dir, &ctx.dir.join("logs")).await?;
    let url = fresh_database(&server.url(), "jobs_chaos").await?;
    Ok((server, url))
}
