//! What an execution costs: the database server's statement counters and the CPU time of the scheduler and
//! database processes over a window, divided by the executions that finished in it.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use jobs_migrations::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use jobs_model::Timestamp;

use crate::bench::support::{cpu_ticks, ticks_per_second};

/// The statement counters summed into statements per execution: every insert, update, select and delete,
/// including their multi-table and `INSERT ... SELECT` forms, which the server counts apart.
const COUNTERS: &[&str] = &[
    "Com_insert",
    "Com_insert_select",
    "Com_update",
    "Com_update_multi",
    "Com_select",
    "Com_delete",
    "Com_delete_multi",
];

/// Commands read alongside, per execution but not summed with the statements: transactions, and
/// `Com_admin_commands`, which counts pings (a connection pool may ping on every checkout).
const OTHER_COMMANDS: &[&str] = &["Com_begin", "Com_commit", "Com_rollback", "Com_admin_commands"];

/// Printed with the figures: the counters are the whole server's.
pub(crate) const NOTE: &str =
    "statement counters are server-wide (SHOW GLOBAL STATUS): nothing else may use the server during the bench";

/// The counters and CPU times at one instant.
#[derive(Debug)]
pub(crate) struct Sample {
    at: Timestamp,
    counters: BTreeMap<String, u64>,
    scheduler_ticks: u64,
    database_ticks: Option<u64>,
}

/// Reads the samples: its own connection to the bench database, the scheduler's pid and the server's.
#[derive(Debug)]
pub(crate) struct Probe {
    db: DatabaseConnection,
    scheduler_pid: u32,
    database_pid: Option<u32>,
}

impl Probe {
    /// Connects before the window, so that connecting adds no statement to it.
    pub(crate) async fn connect(database_url: &str, scheduler_pid: u32) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(database_url.to_owned());
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.with_context(|| format!("cannot connect to {database_url}"))?;
        Ok(Self { db, scheduler_pid, database_pid: database_pid() })
    }

    pub(crate) async fn sample(&self) -> anyhow::Result<Sample> {
        let at = Timestamp::now();
        let scheduler_ticks = cpu_ticks(self.scheduler_pid)?;
        let database_ticks = self.database_pid.and_then(|pid| cpu_ticks(pid).ok());
        let names =
            COUNTERS.iter().chain(OTHER_COMMANDS).map(|name| format!("'{name}'")).collect::<Vec<_>>().join(", ");
        let sql = format!("SHOW GLOBAL STATUS WHERE Variable_name IN ({names})");
        let mut counters = BTreeMap::new();
        for row in self.db.query_all_raw(Statement::from_string(DbBackend::MySql, sql)).await? {
            let name: String = row.try_get("", "Variable_name")?;
            let value: String = row.try_get("", "Value")?;
            let value: u64 = value.parse().with_context(|| format!("counter {name} is `{value}`"))?;
            counters.insert(name, value);
        }
        Ok(Sample { at, counters, scheduler_ticks, database_ticks })
    }

    /// Statements and CPU per execution between two samples; an execution counts once its success callback is
    /// applied (its `finished_at` falls between them).
    pub(crate) async fn per_execution(&self, before: &Sample, after: &Sample) -> anyhow::Result<Value> {
        let executions = self.successes_between(before.at, after.at).await?;
        let per = |delta: u64| if executions == 0 { 0.0 } else { round2(delta as f64 / executions as f64) };
        let delta = |name: &str| {
            let read = |sample: &Sample| sample.counters.get(name).copied().unwrap_or(0);
            read(after).saturating_sub(read(before))
        };
        let breakdown = |names: &[&str]| -> serde_json::Map<String, Value> {
            names.iter().map(|&name| (name.to_owned(), json!(per(delta(name))))).collect()
        };
        let total = COUNTERS.iter().map(|name| delta(name)).sum();
        let hz = ticks_per_second();
        let micros = |ticks: u64| ticks as f64 / hz * 1e6;
        let cpu = |before: u64, after: u64| {
            if executions == 0 { 0.0 } else { (micros(after.saturating_sub(before)) / executions as f64).round() }
        };
        let database = match (before.database_ticks, after.database_ticks) {
            (Some(before), Some(after)) => json!(cpu(before, after)),
            _ => Value::Null,
        };
        Ok(json!({
            "executions": executions,
            "statements_per_execution": per(total),
            "statements": breakdown(COUNTERS),
            "other_commands": breakdown(OTHER_COMMANDS),
            "cpu_us_per_execution": {
                "scheduler": cpu(before.scheduler_ticks, after.scheduler_ticks),
                "database": database,
            },
        }))
    }

    async fn successes_between(&self, from: Timestamp, to: Timestamp) -> anyhow::Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM executions WHERE status = 'success' AND finished_at >= {} AND finished_at < {}",
            from.as_millis(),
            to.as_millis()
        );
        let row = self.db.query_one_raw(Statement::from_string(DbBackend::MySql, sql)).await?;
        let count: i64 = row.map(|row| row.try_get("", "n")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The database server's pid, if it runs on this machine.
fn database_pid() -> Option<u32> {
    ["mariadbd", "mysqld"].into_iter().find_map(|name| {
        let output = Command::new("pidof").arg("-s").arg(name).output().ok()?;
        String::from_utf8(output.stdout).ok()?.trim().parse().ok()
    })
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
