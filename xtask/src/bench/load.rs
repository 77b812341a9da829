//! One step of load: every-second tasks on a fresh database, one release scheduler process and recording
//! executors; the handler starts of a measured window's slots and, if asked, what the window cost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use jobs_model::Timestamp;

use crate::bench::cost::Probe;
use crate::bench::support::{Options, lateness_summary};
use crate::procs::{
    Receipt, Receipts, Scheduler, client, fresh_database, leader, post, recording_executor, snapshot, wait_for,
};

/// Handler starts up to this long after the window's end still count; later ones count as lost.
const STRAGGLERS: Duration = Duration::from_secs(3);

/// What one step runs.
#[derive(Debug)]
pub(crate) struct Step<'a> {
    /// Names the database (`jobs_bench_<name>`), the scheduler instance and its executors (`<name>-<n>`).
    pub(crate) name: &'a str,
    pub(crate) port: u16,
    pub(crate) tasks: usize,
    pub(crate) executors: usize,
    /// The lead every executor asks for; zero sends each fire at its instant.
    pub(crate) early_delivery: Duration,
    /// Whole seconds after the tasks are created that are not measured.
    pub(crate) warm_up_s: i64,
    /// Whole seconds measured after the warm-up.
    pub(crate) window_s: i64,
    /// Whether to read the statement counters and CPU times over the window (see [`Probe`]).
    pub(crate) measure_cost: bool,
}

/// What one step measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) tasks: usize,
    pub(crate) window_s: i64,
    /// Handler starts of the window's slots.
    pub(crate) received: Vec<Receipt>,
    /// [`Probe::per_execution`] over the window, if the step asked for it.
    pub(crate) cost: Option<Value>,
}

impl Outcome {
    pub(crate) fn expected(&self) -> usize {
        self.tasks * usize::try_from(self.window_s).unwrap_or(0)
    }

    /// Extra handler starts of a (task, slot), and the window's (task, slot)s never started.
    pub(crate) fn duplicated_and_lost(&self) -> (usize, usize) {
        let mut seen: HashMap<(Arc<str>, Timestamp), usize> = HashMap::new();
        for receipt in &self.received {
            *seen.entry((receipt.task.clone(), receipt.scheduled_at)).or_default() += 1;
        }
        let duplicated = seen.values().map(|count| count - 1).sum();
        (duplicated, self.expected().saturating_sub(seen.len()))
    }

    /// Handlers that started before their slot's instant (a bug, with or without early delivery).
    pub(crate) fn early_starts(&self) -> usize {
        self.received.iter().filter(|receipt| receipt.lateness_us() < 0).count()
    }

    /// Fires received, lateness figures, lost and duplicated.
    pub(crate) fn summary(&self) -> anyhow::Result<Value> {
        let (p50, p99, max) = lateness_summary(self.received.iter().map(Receipt::lateness_us))?;
        let (duplicated, lost) = self.duplicated_and_lost();
        Ok(json!({
            "tasks": self.tasks, "window_s": self.window_s, "fires": self.received.len(),
            "p50_ms": p50, "p99_ms": p99, "max_ms": max, "lost": lost, "duplicated": duplicated,
        }))
    }
}

/// Runs `step`: creates the tasks once the scheduler leads and the executors are registered, skips the warm-up,
/// measures the window, and stops everything it started.
pub(crate) async fn run(options: &Options, step: &Step<'_>) -> anyhow::Result<Outcome> {
    let database = fresh_database(&options.server_url, &format!("jobs_bench_{}", step.name)).await?;
    let mut scheduler = Scheduler::new(&database, step.port, step.name, &[("JOBS_SCHEDULER__MAX_WORKERS", "64")]);
    scheduler.start()?;
    let http = client();
    let nodes = std::slice::from_ref(&scheduler);
    wait_for("the scheduler to lead", Duration::from_secs(60), || leader(&http, nodes)).await?;
    let names: Vec<String> = (0..step.tasks).map(|n| format!("bench-{n:05}")).collect();
    let receipts = Receipts::default();
    let mut executors = Vec::new();
    for n in 1..=step.executors {
        let id = format!("{}-{n}", step.name);
        executors.push(recording_executor(&id, vec![scheduler.url()], &names, &receipts, step.early_delivery).await?);
    }
    let probe = match (step.measure_cost, scheduler.pid()) {
        (true, Some(pid)) => Some(Probe::connect(&database, pid).await?),
        _ => None,
    };
    for name in &names {
        let body = json!({"name": name, "cron_expression": "* * * * * *", "execution_mode": "parallel"});
        post(&http, &format!("{}/api/v1/tasks", scheduler.url()), &body).await?;
    }
    let start = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + 1 + step.warm_up_s) * 1000);
    let end = start.add_millis(step.window_s * 1000);
    let cost = match &probe {
        Some(probe) => Some(cost_over(probe, start, end).await?),
        None => {
            sleep_until(end).await;
            tokio::time::sleep(STRAGGLERS).await;
            None
        }
    };
    let received =
        snapshot(&receipts).into_iter().filter(|r| r.scheduled_at >= start && r.scheduled_at < end).collect();
    for executor in executors {
        executor.shutdown().await?;
    }
    scheduler.stop();
    Ok(Outcome { tasks: step.tasks, window_s: step.window_s, received, cost })
}

/// Samples at `start` and `end`; divides once the stragglers' callbacks are in.
async fn cost_over(probe: &Probe, start: Timestamp, end: Timestamp) -> anyhow::Result<Value> {
    sleep_until(start).await;
    let before = probe.sample().await?;
    sleep_until(end).await;
    let after = probe.sample().await?;
    tokio::time::sleep(STRAGGLERS).await;
    probe.per_execution(&before, &after).await
}

async fn sleep_until(at: Timestamp) {
    let millis = u64::try_from(at.millis_since(Timestamp::now())).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}
