//! Failover: `kill -9` of the leader, again and again; how soon the next leader dispatches, and whether any
//! fire was dispatched twice or lost.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use jobs_model::Timestamp;

use crate::bench::support::{
    Options, Receipts, Scheduler, build_release, client, fresh_database, leader, post, recording_executor, snapshot,
    wait_for,
};

pub(crate) async fn run(options: &Options) -> anyhow::Result<Value> {
    build_release()?;
    let database = fresh_database(&options.server_url, "jobs_bench_failover").await?;
    let env = [("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s"), ("JOBS_EXECUTORS__HEARTBEAT_INTERVAL", "1s")];
    let mut nodes: Vec<Scheduler> =
        (1..=3).map(|n| Scheduler::new(&database, 18080 + n, &format!("failover-{n}"), &env)).collect();
    for node in &mut nodes {
        node.start()?;
    }
    let http = client();
    wait_for("a leader", Duration::from_secs(60), || leader(&http, &nodes)).await?;
    let receipts = Receipts::default();
    let urls = nodes.iter().map(Scheduler::url).collect();
    let executor = recording_executor("failover-executor", urls, &["tick".to_owned()], &receipts).await?;
    post(
        &http,
        &format!("{}/api/v1/tasks", nodes[0].url()),
        &json!({"name": "tick", "cron_expression": "* * * * * *"}),
    )
    .await?;
    wait_for("the first fires", Duration::from_secs(30), || async { (snapshot(&receipts).len() >= 3).then_some(()) })
        .await?;

    let mut gaps = Vec::new();
    let mut takeovers = Vec::new();
    for kill in 1..=options.kills {
        let killed = wait_for("one leader", Duration::from_secs(30), || leader(&http, &nodes)).await?;
        tokio::time::sleep(Duration::from_millis(2_000 + 137 * kill as u64)).await;
        let killed_at = Timestamp::now();
        nodes[killed].kill();
        wait_for("a new leader", Duration::from_secs(30), || leader(&http, &nodes)).await?;
        takeovers.push(Timestamp::now().millis_since(killed_at));
        let gap = wait_for("a dispatch after the kill", Duration::from_secs(30), || async {
            first_dispatch_after(&snapshot(&receipts), killed_at)
        })
        .await?;
        println!(
            "kill {kill}: {} killed, new leader seen after {} ms, next dispatch after {gap} ms",
            nodes[killed].instance_id,
            takeovers.last().copied().unwrap_or_default()
        );
        gaps.push(gap);
        nodes[killed].start()?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_index = wait_for("one leader", Duration::from_secs(30), || leader(&http, &nodes)).await?;
    post(&http, &format!("{}/api/v1/tasks/tick/pause", nodes[leader_index].url()), &json!({})).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (duplicated, lost) = duplicated_and_lost(&snapshot(&receipts));

    executor.shutdown().await?;
    for node in &mut nodes {
        node.stop();
    }
    gaps.sort_unstable();
    takeovers.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or_default();
    Ok(json!({
        "kills": options.kills,
        "first_dispatch_ms_median": median,
        "first_dispatch_ms_max": gaps.last().copied().unwrap_or_default(),
        "first_dispatch_ms_all": gaps,
        "leader_visible_ms_median": takeovers.get(takeovers.len() / 2).copied().unwrap_or_default(),
        "leader_visible_ms_max": takeovers.last().copied().unwrap_or_default(),
        "duplicated": duplicated,
        "lost": lost,
        "fires": snapshot(&receipts).len(),
    }))
}

/// How long after the kill (or after its slot, if the slot came later) the first dispatch arrived:
/// the lateness that the failover added to the first fire due after it.
fn first_dispatch_after(receipts: &[crate::bench::support::Receipt], killed_at: Timestamp) -> Option<i64> {
    receipts
        .iter()
        .filter(|receipt| receipt.received_at > killed_at)
        .min_by_key(|receipt| receipt.received_at)
        .map(|receipt| receipt.received_at.millis_since(receipt.scheduled_at.max(killed_at)))
}

/// Extra receipts of a slot, and slots missing between the first and the last.
fn duplicated_and_lost(receipts: &[crate::bench::support::Receipt]) -> (usize, usize) {
    let mut counts: BTreeMap<Timestamp, usize> = BTreeMap::new();
    for receipt in receipts {
        *counts.entry(receipt.scheduled_at).or_default() += 1;
    }
    let duplicated = counts.values().map(|count| count - 1).sum();
    let slots: Vec<Timestamp> = counts.keys().copied().collect();
    let lost = slots.windows(2).map(|pair| (pair[1].millis_since(pair[0]) / 1000 - 1).max(0) as usize).sum();
    (duplicated, lost)
}
