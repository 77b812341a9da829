//! What the overload scenario watches while it runs: every second the schedulers' resident memory, the executor's
//! state as a scheduler lists it and every scheduler's `/ready`; at the end the shed fires of their metrics.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::bench::support::rss_mb;
use crate::procs::{client, client_with_timeout};

/// What was seen by polling the cluster every second.
#[derive(Debug, Default)]
pub(super) struct Watched {
    /// Answers of `GET /api/v1/executors`.
    pub(super) samples: usize,
    /// Answers in which the executor was missing, or not `active` and `healthy`.
    pub(super) offline: usize,
    /// Polls of `GET /api/v1/executors` that got no list.
    pub(super) poll_failed: usize,
    /// `/ready` asked, on every scheduler.
    pub(super) ready_samples: usize,
    pub(super) degraded: usize,
    pub(super) unavailable: usize,
    /// `/ready` answers neither 200 nor 503, or none.
    pub(super) ready_failed: usize,
    /// The largest resident memory of each scheduler, in MB.
    pub(super) rss_max_mb: Vec<f64>,
}

/// Every second until `stop`: the resident memory of `pids`, the state of the executor `instance_id` on
/// `executors_url`'s list and `/ready` of every one of `urls`.
pub(super) async fn watch_cluster(
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
pub(super) async fn fires_shed(urls: &[String]) -> u64 {
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
