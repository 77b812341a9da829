//! Scenarios that stop a scheduler process: the leader frozen long enough for a failover, frozen past its lease
//! but short of a failover, and a scheduler frozen while its requests to an executor are in flight.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jobs_model::Timestamp;

use crate::chaos::cluster::{Cluster, Setup, sleep_until, this_second};
use crate::chaos::verdict::Outcome;
use crate::chaos::{Backend, Context, database};
use crate::procs::wait_for;

/// The longest pause between two receipts that still counts as fires flowing (they come every second).
const STALL_LIMIT_MS: i64 = 2_500;

/// Three schedulers, five every-second tasks (two with a 300 ms handler); SIGSTOP of the leader for 45 s (20 s
/// short), then SIGCONT.
pub(crate) async fn frozen_leader(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (_server, url) = database(ctx, backend).await?;
    let setup = Setup { schedulers: 3, tasks: 5, slow_tasks: 2, ..Setup::default() };
    let cluster = Cluster::start(ctx, "frozen-leader", &url, &setup).await?;
    let triggers = cluster.start_triggers();
    let start = cluster.warm_up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let old = wait_for("a leader", Duration::from_secs(10), || cluster.leader()).await?;
    cluster.nodes[old].signal("STOP")?;
    let frozen_at = Timestamp::now();
    out.note("frozen", &cluster.nodes[old].instance_id);
    out.failover_ms = cluster.wait_first_fire_after(frozen_at, Duration::from_secs(30)).await;
    if let Ok(new) = wait_for("a new leader", Duration::from_secs(30), || cluster.leader_other_than(old)).await {
        out.note("new_leader", &cluster.nodes[new].instance_id);
        out.note("new_leader_visible_ms", Timestamp::now().millis_since(frozen_at));
    }
    let hold = ctx.pick(45_000, 20_000);
    sleep_until(frozen_at.add_millis(hold)).await;
    let thawed_at = Timestamp::now();
    let after_failover = frozen_at.add_millis(out.failover_ms.unwrap_or(hold));
    let stall_frozen = cluster.longest_stall(after_failover, thawed_at);
    cluster.nodes[old].signal("CONT")?;
    sleep_until(thawed_at.add_millis(ctx.pick(10_000, 6_000))).await;
    let end = this_second(Timestamp::now());
    let stall_thawed = cluster.longest_stall(thawed_at, end);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let triggers = triggers.stop().await;
    cluster.account(out, start, end, Some(triggers)).await?;
    out.note("longest_stall_after_failover_ms", stall_frozen);
    out.note("longest_stall_after_sigcont_ms", stall_thawed);
    out.check_accounting();
    match out.failover_ms {
        Some(ms) => out.check(ms <= 10_000, format!("failover {ms} ms > 10000 ms")),
        None => out.check(false, "no fire after the leader froze"),
    }
    out.check(stall_frozen <= STALL_LIMIT_MS, format!("fires stalled {stall_frozen} ms after the failover"));
    out.check(stall_thawed <= STALL_LIMIT_MS, format!("fires stalled {stall_thawed} ms after SIGCONT"));
    cluster.stop().await;
    Ok(())
}

/// Three schedulers, five every-second tasks; the leader frozen for 3.5 s (its lease is about 2 s with a 1 s
/// heartbeat), three times (twice short), 6 s apart.
pub(crate) async fn lease_lapse(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (_server, url) = database(ctx, backend).await?;
    let setup = Setup { schedulers: 3, tasks: 5, slow_tasks: 2, ..Setup::default() };
    let cluster = Cluster::start(ctx, "lease-lapse", &url, &setup).await?;
    let triggers = cluster.start_triggers();
    let start = cluster.warm_up().await;
    let mut leader_changes = 0;
    let mut recoveries = Vec::new();
    for _ in 0..ctx.pick(3, 2) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let old = wait_for("a leader", Duration::from_secs(10), || cluster.leader()).await?;
        cluster.nodes[old].signal("STOP")?;
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        cluster.nodes[old].signal("CONT")?;
        let thawed_at = Timestamp::now();
        recoveries.push(cluster.wait_first_fire_after(thawed_at, Duration::from_secs(10)).await);
        tokio::time::sleep(Duration::from_secs(3)).await;
        if wait_for("a leader", Duration::from_secs(10), || cluster.leader()).await? != old {
            leader_changes += 1;
        }
    }
    let end = this_second(Timestamp::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let triggers = triggers.stop().await;
    cluster.account(out, start, end, Some(triggers)).await?;
    out.recovery_ms = recoveries.iter().map(|recovery| recovery.unwrap_or(i64::MAX)).max();
    out.note("leader_changes", leader_changes);
    let received: HashSet<(Arc<str>, Timestamp)> =
        cluster.window_receipts(start, end).into_iter().map(|receipt| (receipt.task, receipt.scheduled_at)).collect();
    let mut lost_unsent = Vec::new();
    for task in &cluster.tasks {
        for execution in cluster.executions(task, start, end.add_millis(1)).await? {
            let error = execution["error"].as_str().unwrap_or_default();
            let ended_lost =
                execution["status"] == "lost" || (execution["status"] == "failed" && error.starts_with("lost"));
            let scheduled_at = execution["scheduled_at"].as_str().and_then(Timestamp::parse_rfc3339);
            let key = scheduled_at.map(|at| (Arc::from(task.as_str()), at));
            if ended_lost && !key.is_some_and(|key| received.contains(&key)) {
                lost_unsent.push(format!("{task} {} {error}", execution["scheduled_at"]));
            }
        }
    }
    out.check_accounting();
    out.check(lost_unsent.is_empty(), format!("{} fires never received ended as lost", lost_unsent.len()));
    out.note("lost_never_received", lost_unsent);
    cluster.stop().await;
    Ok(())
}

/// One scheduler, five every-second tasks whose requests an executor's proxy holds for 2 s, a 10 s dispatch
/// timeout; SIGSTOP of the scheduler for 12 s with requests in flight, then SIGCONT.
pub(crate) async fn paused_mid_send(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (_server, url) = database(ctx, backend).await?;
    let setup = Setup {
        schedulers: 1,
        tasks: 5,
        // Every request takes 2 s (the proxy), so 10 workers would send 5 a second: just the steady rate, and the
        // fires due during the pause would never catch up. 50 workers clear that backlog in a few seconds.
        env: vec![
            ("JOBS_SCHEDULER__DISPATCH_TIMEOUT", "10s".to_owned()),
            ("JOBS_SCHEDULER__MAX_WORKERS", "50".to_owned()),
        ],
        send_delay: Some(Duration::from_secs(2)),
        ..Setup::default()
    };
    let cluster = Cluster::start(ctx, "paused-mid-send", &url, &setup).await?;
    let start = cluster.warm_up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.nodes[0].signal("STOP")?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    cluster.nodes[0].signal("CONT")?;
    let thawed_at = Timestamp::now();
    out.recovery_ms = cluster.wait_first_fire_after(thawed_at, Duration::from_secs(15)).await;
    sleep_until(thawed_at.add_millis(ctx.pick(15_000, 8_000))).await;
    let end = this_second(Timestamp::now());
    // Fires of the last seconds are still held by the proxy; callbacks may be retrying.
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.account(out, start, end, None).await?;
    let receipts = cluster.window_receipts(start, end);
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for receipt in &receipts {
        *runs.entry(receipt.execution_id.to_string()).or_default() += 1;
    }
    let finals = final_statuses(&cluster, runs.keys()).await;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_success = Vec::new();
    for (id, (status, error)) in &finals {
        *statuses.entry(status.clone()).or_default() += 1;
        if status != "success" {
            not_success.push(format!("{id}: {status} {error}"));
        }
    }
    let ran_twice = runs.values().filter(|count| **count > 1).count();
    out.note("received_statuses", &statuses);
    out.note("executions_run_twice", ran_twice);
    out.note("receipts_of_later_attempts", receipts.iter().filter(|receipt| receipt.attempt > 1).count());
    out.check(
        not_success.is_empty(),
        format!("{} fires the executor ran and reported did not end success", not_success.len()),
    );
    out.note("received_not_success", not_success.iter().take(20).collect::<Vec<_>>());
    out.check(out.duplicated == 0 && ran_twice == 0, format!("{} slots ran twice", out.duplicated));
    out.check(out.lost == 0, format!("{} slots lost (the pause is within the misfire grace)", out.lost));
    cluster.stop().await;
    Ok(())
}

/// The status and error of each execution, asked again (for at most 15 s in all) while some are still open.
async fn final_statuses<'a>(
    cluster: &Cluster,
    ids: impl Iterator<Item = &'a String>,
) -> BTreeMap<String, (String, String)> {
    let mut open: Vec<String> = ids.cloned().collect();
    let mut finals = BTreeMap::new();
    let started = Timestamp::now();
    loop {
        let mut still_open = Vec::new();
        for id in open {
            let execution = cluster.api(&format!("/api/v1/executions/{id}")).await.unwrap_or_default();
            let status = execution["status"].as_str().unwrap_or("unknown").to_owned();
            let error = execution["error"].as_str().unwrap_or_default().to_owned();
            if status == "pending" || status == "running" || status == "unknown" {
                still_open.push(id.clone());
            }
            finals.insert(id, (status, error));
        }
        if still_open.is_empty() || Timestamp::now().millis_since(started) > 15_000 {
            return finals;
        }
        open = still_open;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
