//! What the overload and ramp scenarios watch while they run: every second the schedulers' resident memory, the
//! executor's state as a scheduler lists it, the leader's epoch and every scheduler's `/ready`; at the end the shed
//! fires of their metrics.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::bench::support::rss_mb;
use crate::procs::{client, client_with_timeout};

/// What was seen by polling the cluster every second.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Answers of `GET /api/v1/executors`.
    pub(crate) samples: usize,
    /// Answers in which the executor was missing, or not `active` and `healthy`.
    pub(crate) offline: usize,
    /// Polls of `GET /api/v1/executors` that got no list.
    pub(crate) poll_failed: usize,
    /// `/ready` asked, on every scheduler.
    pub(crate) ready_samples: usize,
    pub(crate) degraded: usize,
    pub(crate) unavailable: usize,
    /// `/ready` answers neither 200 nor 503, or none.
    pub(crate) ready_failed: usize,
    /// The largest resident memory of each scheduler, in MB.
    pub(crate) rss_max_mb: Vec<f64>,
    /// The leader epochs `executors_url`'s scheduler status named: one, unless a lease lapsed.
    pub(crate) epochs: BTreeSet<i64>,
    /// Status answers that named no leader.
    pub(crate) leaderless: usize,
}

/// Every second until `stop`: the resident memory of `pids`, the state of the executor `instance_id` on
/// `executors_url`'s list and `/ready` of every one of `urls`.
pub(crate) async fn watch_cluster(
    executors_url: String,
    instance_id: &'static str,
    urls: Vec<String>,
    pids: Vec<u32>,
    mut stop: watch::Receiver<bool>,
) -> Watched {
    let http = client_with_timeout(Duration::from_secs(5));
    let mut watched = Watched { rss_max_mb: vec![0.0; pids.len()], ..Watched::default() };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return watched,
        }
        for (pid, max) in pids.iter().zip(&mut watched.rss_max_mb) {
            if let Ok(rss) = rss_mb(*pid) {
                *max = max.max(rss);
            }
        }
        let readies: Vec<_> = urls.iter().map(|url| tokio::spawn(ready_of(http.clone(), url.clone()))).collect();
        match leader_epoch(&http, &executors_url).await {
            Some(Some(epoch)) => {
                watched.epochs.insert(epoch);
            }
            Some(None) => watched.leaderless += 1,
            None => {}
        }
        let executors = executor_state(&http, &executors_url, instance_id).await;
        match executors {
            Some(fine) => {
                watched.samples += 1;
                watched.offline += usize::from(!fine);
            }
            None => watched.poll_failed += 1,
        }
        for ready in readies {
            watched.ready_samples += 1;
            match ready.await.unwrap_or(Readiness::Failed) {
                Readiness::Ready => {}
                Readiness::Degraded => watched.degraded += 1,
                Readiness::Unavailable => watched.unavailable += 1,
                Readiness::Failed => watched.ready_failed += 1,
            }
        }
    }
}

/// Whether `url`'s executor list shows the instance `instance_id` `active` and `healthy`; `None` without a list.
async fn executor_state(http: &reqwest::Client, url: &str, instance_id: &str) -> Option<bool> {
    let response = http.get(format!("{url}/api/v1/executors")).send().await.ok()?;
    let Value::Array(executors) = response.json::<Value>().await.ok()? else { return None };
    let ours = executors.iter().find(|executor| executor["instance_id"] == instance_id);
    Some(ours.is_some_and(|executor| executor["status"] == "active" && executor["health"] == "healthy"))
}

/// The leader's epoch as `url`'s scheduler status names it: `Some(None)` for no leader, `None` without an answer.
async fn leader_epoch(http: &reqwest::Client, url: &str) -> Option<Option<i64>> {
    let response = http.get(format!("{url}/api/v1/scheduler/status")).send().await.ok()?;
    let status = response.json::<Value>().await.ok()?;
    Some(status["leader"]["epoch"].as_i64())
}

/// What one `GET /ready` answered.
enum Readiness {
    Ready,
    Degraded,
    Unavailable,
    Failed,
}

/// `GET {url}/ready`, classified.
async fn ready_of(http: reqwest::Client, url: String) -> Readiness {
    let Ok(response) = http.get(format!("{url}/ready")).send().await else { return Readiness::Failed };
    match response.status().as_u16() {
        200 => match response.json::<Value>().await {
            Ok(body) if body["status"] == "ready" => Readiness::Ready,
            Ok(body) if body["status"] == "degraded" => Readiness::Degraded,
            _ => Readiness::Failed,
        },
        503 => Readiness::Unavailable,
        _ => Readiness::Failed,
    }
}

/// `jobs_fires_shed{reason="overloaded"}` summed over the schedulers at `urls` (those that answer).
pub(crate) async fn fires_shed(urls: &[String]) -> u64 {
    let http = client();
    let mut total = 0;
    for url in urls {
        let Ok(response) = http.get(format!("{url}/metrics")).send().await else { continue };
        let Ok(text) = response.text().await else { continue };
        total += text
            .lines()
            .filter(|line| line.starts_with("jobs_fires_shed") && line.contains("reason=\"overloaded\""))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|value| value as u64)
            .sum::<u64>();
    }
    total
}
