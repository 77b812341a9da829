//! Failover: `kill -9` of the leader, again and again; how soon the next leader dispatches, and whether any
//! fire was dispatched twice or lost. The first half of the kills runs with an executor that asks for 1 s of
//! early delivery, the second with one that asks for none.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use jobs_model::Timestamp;

use crate::bench::support::{Options, build_release};
use crate::procs::{
    Receipt, Receipts, Scheduler, client, fresh_database, leader, post, recording_executor, snapshot, wait_for,
};

/// One half of the kills: its task, the executor's early delivery, and the report key of its figures.
#[derive(Debug)]
struct Half {
    key: &'static str,
    task: &'static str,
    early_delivery: Duration,
    kills: usize,
}

/// What one half saw.
#[derive(Debug, Default)]
struct Seen {
    receipts: Vec<Receipt>,
    gaps: Vec<i64>,
    takeovers: Vec<i64>,
}

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

    let on = options.kills.div_ceil(2);
    let halves = [
        Half { key: "early_delivery_on", task: "tick-on", early_delivery: Duration::from_secs(1), kills: on },
        Half { key: "early_delivery_off", task: "tick-off", early_delivery: Duration::ZERO, kills: options.kills - on },
    ];
    let mut all = Seen::default();
    let mut per_half = serde_json::Map::new();
    for half in &halves {
        let seen = run_half(&http, &mut nodes, half, all.gaps.len()).await?;
        let (duplicated, lost) = duplicated_and_lost(&seen.receipts);
        println!("{}: {} kills, duplicated {duplicated}, lost {lost}", half.key, half.kills);
        per_half.insert(half.key.to_owned(), json!({"kills": half.kills, "duplicated": duplicated, "lost": lost}));
        all.gaps.extend(seen.gaps);
        all.takeovers.extend(seen.takeovers);
        all.receipts.extend(seen.receipts);
    }
    for node in &mut nodes {
        node.stop();
    }
    let sum = |key: &str| per_half.values().map(|half| half[key].as_u64().unwrap_or(0)).sum::<u64>();
    let (duplicated, lost) = (sum("duplicated"), sum("lost"));
    let Seen { receipts, mut gaps, mut takeovers } = all;
    gaps.sort_unstable();
    takeovers.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or_default();
    let mut result = json!({
        "kills": options.kills,
        "first_dispatch_ms_median": median,
        "first_dispatch_ms_max": gaps.last().copied().unwrap_or_default(),
        "first_dispatch_ms_all": gaps,
        "leader_visible_ms_median": takeovers.get(takeovers.len() / 2).copied().unwrap_or_default(),
        "leader_visible_ms_max": takeovers.last().copied().unwrap_or_default(),
        "duplicated": duplicated,
        "lost": lost,
        "fires": receipts.len(),
    });
    for (key, value) in per_half {
        result[key] = value;
    }
    Ok(result)
}

/// Runs `half.kills` kills with a fresh executor and a task of the half's own, so that no fire of one half
/// reaches the other's executor; `done` kills came before.
async fn run_half(http: &reqwest::Client, nodes: &mut [Scheduler], half: &Half, done: usize) -> anyhow::Result<Seen> {
    let task = half.task.to_owned();
    let receipts = Receipts::default();
    let urls = nodes.iter().map(Scheduler::url).collect();
    let executor = recording_executor(
        &format!("failover-{}", half.key),
        urls,
        std::slice::from_ref(&task),
        &receipts,
        half.early_delivery,
    )
    .await?;
    let leader_index = wait_for("one leader", Duration::from_secs(30), || leader(http, nodes)).await?;
    post(
        http,
        &format!("{}/api/v1/tasks", nodes[leader_index].url()),
        &json!({"name": task, "cron_expression": "* * * * * *"}),
    )
    .await?;
    wait_for("the first fires", Duration::from_secs(30), || async { (snapshot(&receipts).len() >= 3).then_some(()) })
        .await?;

    let mut seen = Seen::default();
    for kill in done + 1..=done + half.kills {
        let killed = wait_for("one leader", Duration::from_secs(30), || leader(http, nodes)).await?;
        tokio::time::sleep(Duration::from_millis(2_000 + 137 * kill as u64)).await;
        let killed_at = Timestamp::now();
        nodes[killed].kill();
        wait_for("a new leader", Duration::from_secs(30), || leader(http, nodes)).await?;
        let takeover = Timestamp::now().millis_since(killed_at);
        let gap = wait_for("a dispatch after the kill", Duration::from_secs(30), || async {
            first_dispatch_after(&snapshot(&receipts), killed_at)
        })
        .await?;
        println!(
            "kill {kill} ({}): {} killed, new leader seen after {takeover} ms, next dispatch after {gap} ms",
            half.key, nodes[killed].instance_id
        );
        seen.takeovers.push(takeover);
        seen.gaps.push(gap);
        nodes[killed].start()?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_index = wait_for("one leader", Duration::from_secs(30), || leader(http, nodes)).await?;
    post(http, &format!("{}/api/v1/tasks/{task}/pause", nodes[leader_index].url()), &json!({})).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    executor.shutdown().await?;
    seen.receipts = snapshot(&receipts);
    Ok(seen)
}

/// How long after the kill (or after its slot, if the slot came later) the first dispatch arrived:
/// the lateness that the failover added to the first fire due after it.
fn first_dispatch_after(receipts: &[Receipt], killed_at: Timestamp) -> Option<i64> {
    receipts
        .iter()
        .filter(|receipt| receipt.received_at > killed_at)
        .min_by_key(|receipt| receipt.received_at)
        .map(|receipt| receipt.received_at.millis_since(receipt.scheduled_at.max(killed_at)))
}

/// Extra receipts of a slot, and slots missing between the first and the last.
fn duplicated_and_lost(receipts: &[Receipt]) -> (usize, usize) {
    let mut counts: BTreeMap<Timestamp, usize> = BTreeMap::new();
    for receipt in receipts {
        *counts.entry(receipt.scheduled_at).or_default() += 1;
    }
    let duplicated = counts.values().map(|count| count - 1).sum();
    let slots: Vec<Timestamp> = counts.keys().copied().collect();
    let lost = slots.windows(2).map(|pair| (pair[1].millis_since(pair[0]) / 1000 - 1).max(0) as usize).sum();
    (duplicated, lost)
}
