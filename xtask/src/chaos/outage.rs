//! Scenarios that take the database away from three schedulers: short blips, an outage within the misfire grace,
//! and one past it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use jobs_model::Timestamp;

use crate::chaos::cluster::{Cluster, Setup, sleep_until, this_second};
use crate::chaos::observe::{Probe, Probing, overlap, probe, terms};
use crate::chaos::verdict::Outcome;
use crate::chaos::{Backend, Context, database};

/// Five freezes of the database server (three short) of 2 or 3 s, 5 s apart; the second is a crash and restart.
pub(crate) async fn db_blips(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (mut server, url) = database(ctx, backend).await?;
    let setup = Setup { schedulers: 3, tasks: 5, slow_tasks: 1, ..Setup::default() };
    let cluster = Cluster::start(ctx, "db-blips", &url, &setup).await?;
    let triggers = cluster.start_triggers();
    let start = cluster.warm_up().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut recoveries = Vec::new();
    for blip in 0..ctx.pick(5, 3) {
        let length = Duration::from_millis(2_000 + 1_000 * (blip % 2));
        if blip == 1 {
            server.crash();
            tokio::time::sleep(length).await;
            server.restart().await?;
        } else {
            server.freeze();
            tokio::time::sleep(length).await;
            server.thaw();
        }
        let back_at = Timestamp::now();
        recoveries.push(cluster.wait_first_fire_after(back_at, Duration::from_secs(10)).await);
        sleep_until(back_at.add_millis(5_000)).await;
    }
    let end = this_second(Timestamp::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let triggers = triggers.stop().await;
    cluster.account(out, start, end, Some(triggers)).await?;
    out.recovery_ms = recoveries.iter().map(|recovery| recovery.unwrap_or(i64::MAX)).max();
    out.note("recoveries_ms", &recoveries);
    let all_terms: Vec<_> = cluster.nodes.iter().flat_map(|node| terms(&node.instance_id, node.log_path())).collect();
    let (total, longest) = overlap(&all_terms, Timestamp::now());
    out.note("leader_terms", all_terms.len());
    out.note("leader_overlap_total_ms", total);
    out.note("leader_overlap_longest_ms", longest);
    out.check_accounting();
    out.check(recoveries.iter().all(Option::is_some), "no fire after a blip");
    if recoveries.iter().all(Option::is_some) {
        out.check_recovery(2_000);
    }
    cluster.stop().await;
    Ok(())
}

/// The database killed for 15 s (8 s short), then restarted: the API answers 503 with `Retry-After` within 5 s
/// during the outage, `/ready` is 503 during and 200 soon after, `/health` 200 throughout, and fires resume.
pub(crate) async fn db_down(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (mut server, url) = database(ctx, backend).await?;
    let setup = Setup { schedulers: 3, tasks: 5, slow_tasks: 1, ..Setup::default() };
    let cluster = Cluster::start(ctx, "db-down-15s", &url, &setup).await?;
    let triggers = cluster.start_triggers();
    let start = cluster.warm_up().await;
    let urls = cluster
        .nodes
        .iter()
        .flat_map(|node| ["/api/v1/tasks", "/ready", "/health"].map(|path| format!("{}{path}", node.url())))
        .collect();
    let probing = Probing::start(urls);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.crash();
    let killed_at = Timestamp::now();
    tokio::time::sleep(ctx.pick(Duration::from_secs(15), Duration::from_secs(8))).await;
    let restarting_at = Timestamp::now();
    server.restart().await?;
    let back_at = Timestamp::now();
    out.note("outage_ms", back_at.millis_since(killed_at));
    out.recovery_ms = cluster.wait_first_fire_after(back_at, Duration::from_secs(15)).await;
    let ready_after = ready_times(&cluster, back_at).await;
    sleep_until(back_at.add_millis(6_000)).await;
    let end = this_second(Timestamp::now());
    let probes = probing.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let triggers = triggers.stop().await;
    cluster.account(out, start, end, Some(triggers)).await?;
    out.check_accounting();
    out.check_recovery(2_000);

    // During: requests sent from a second after the kill until the restart began.
    // Sent while the database was down and answered before it was started again: an answer that came after the
    // restart was served by a database that was back.
    let during = |probe: &&Probe| {
        probe.at >= killed_at.add_millis(1_000) && probe.at.add_millis(probe.latency_ms) < restarting_at
    };
    let api: Vec<&Probe> = probes.iter().filter(during).filter(|probe| probe.path_is("/api/v1/tasks")).collect();
    // A call sent in the last seconds of the outage may wait for a connection until the database is back and then
    // be served: that is an answer too. What must not happen is a hang, or an error other than 503 with Retry-After.
    let unavailable = |probe: &&&Probe| probe.status == Some(503) && probe.retry_after.is_some();
    let served = |probe: &&&Probe| probe.status.is_some_and(|status| (200..300).contains(&status));
    let api_ok = |probe: &&&Probe| (unavailable(probe) || served(probe)) && probe.latency_ms <= 5_000;
    let api_bad = api.iter().filter(|probe| !api_ok(probe)).count();
    out.note("api_during", summary(&api));
    out.check(
        !api.is_empty() && api_bad == 0 && api.iter().any(|probe| unavailable(&probe)),
        format!(
            "{api_bad} of {} API calls during the outage neither 503 with Retry-After nor served within 5 s",
            api.len()
        ),
    );
    let ready: Vec<&Probe> = probes.iter().filter(during).filter(|probe| probe.path_is("/ready")).collect();
    let ready_bad = ready.iter().filter(|probe| probe.status != Some(503)).count();
    out.note("ready_during", summary(&ready));
    out.check(
        !ready.is_empty() && ready_bad == 0,
        format!("{ready_bad} of {} /ready during the outage not 503", ready.len()),
    );
    out.note("ready_after_ms", &ready_after);
    let slowest_ready = ready_after.iter().map(|after| after.unwrap_or(i64::MAX)).max().unwrap_or(i64::MAX);
    out.check(slowest_ready <= 2_000, "/ready not 200 on every scheduler within 2 s of the database's return");
    let health: Vec<&Probe> = probes.iter().filter(|probe| probe.path_is("/health")).collect();
    let health_bad = health.iter().filter(|probe| probe.status != Some(200)).count();
    out.note("health", summary(&health));
    out.check(health_bad == 0, format!("{health_bad} of {} /health not 200", health.len()));
    cluster.stop().await;
    Ok(())
}

/// For each scheduler, how long after `back_at` its `/ready` first answered 200 (asked every 100 ms for 5 s).
async fn ready_times(cluster: &Cluster, back_at: Timestamp) -> Vec<Option<i64>> {
    let mut ready_after = vec![None; cluster.nodes.len()];
    while Timestamp::now().millis_since(back_at) < 5_000 && ready_after.iter().any(Option::is_none) {
        for (node, after) in cluster.nodes.iter().zip(&mut ready_after) {
            if after.is_none() && probe(&cluster.quick, &format!("{}/ready", node.url())).await.status == Some(200) {
                *after = Some(Timestamp::now().millis_since(back_at));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ready_after
}

/// Answers by status, and the slowest one.
fn summary(probes: &[&Probe]) -> serde_json::Value {
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for probe in probes {
        *statuses.entry(probe.status.map_or_else(|| "none".to_owned(), |status| status.to_string())).or_default() += 1;
    }
    json!({
        "statuses": statuses,
        "with_retry_after": probes.iter().filter(|probe| probe.retry_after.is_some()).count(),
        "slowest_ms": probes.iter().map(|probe| probe.latency_ms).max(),
    })
}

/// The database down 70 s with the default 60 s misfire grace (12 s with a 5 s grace short): every slot is either
/// received or recorded as missed, and the `missed` counter grows by what was recorded.
pub(crate) async fn db_down_past_grace(ctx: &Context, backend: Backend, out: &mut Outcome) -> anyhow::Result<()> {
    let (mut server, url) = database(ctx, backend).await?;
    let mut setup = Setup { schedulers: 3, tasks: 5, ..Setup::default() };
    if ctx.short {
        setup.env.push(("JOBS_SCHEDULER__MISFIRE_GRACE", "5s".to_owned()));
    }
    let cluster = Cluster::start(ctx, "db-down-70s", &url, &setup).await?;
    let start = cluster.warm_up().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counter_before = cluster.missed_counter().await;
    server.crash();
    let killed_at = Timestamp::now();
    tokio::time::sleep(ctx.pick(Duration::from_secs(70), Duration::from_secs(12))).await;
    server.restart().await?;
    let back_at = Timestamp::now();
    out.note("outage_ms", back_at.millis_since(killed_at));
    out.recovery_ms = cluster.wait_first_fire_after(back_at, Duration::from_secs(15)).await;
    sleep_until(back_at.add_millis(ctx.pick(15_000, 8_000))).await;
    let end = this_second(Timestamp::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.account(out, start, end, None).await?;
    let counter_after = cluster.missed_counter().await;

    let seconds = (end.millis_since(start) / 1000 + 1) as u64;
    let received: HashSet<(Arc<str>, Timestamp)> =
        cluster.window_receipts(start, end).into_iter().map(|receipt| (receipt.task, receipt.scheduled_at)).collect();
    let mut unexplained = BTreeMap::new();
    for task in &cluster.tasks {
        let got = received.iter().filter(|(name, _)| **name == **task).count() as u64;
        let mut missed = 0;
        for execution in cluster.executions(task, start, end.add_millis(1)).await? {
            missed += u64::from(execution["status"] == "missed");
            missed += execution.get("missed_slots").and_then(serde_json::Value::as_u64).unwrap_or(0);
        }
        let gap = seconds as i64 - got as i64 - missed as i64;
        if gap != 0 {
            unexplained.insert(task.clone(), gap);
        }
    }
    out.note("unexplained_slots_by_task", &unexplained);
    out.check(
        unexplained.is_empty(),
        format!("{} tasks with slots neither received nor recorded missed", unexplained.len()),
    );
    out.check(out.duplicated == 0, format!("{} fires duplicated", out.duplicated));
    match (counter_before, counter_after) {
        (Some(before), Some(after)) => {
            let growth = after - before;
            out.note("missed_counter_growth", growth);
            out.check(
                growth as u64 == out.missed_recorded,
                format!("missed counter grew by {growth}, {} recorded missed", out.missed_recorded),
            );
        }
        _ => out.check(false, "no scheduler's /metrics answered"),
    }
    cluster.stop().await;
    Ok(())
}
