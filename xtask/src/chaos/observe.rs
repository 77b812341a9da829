//! What the harness watches besides fires: the schedulers' endpoints while a fault lasts, and their leadership
//! changes as their logs tell them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use jobs_model::Timestamp;

use crate::procs::client_with_timeout;

/// How often each endpoint of each scheduler is asked.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One request and its answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Probe {
    pub(crate) at: Timestamp,
    pub(crate) url: String,
    /// `None` when no answer came within ten seconds.
    pub(crate) status: Option<u16>,
    pub(crate) latency_ms: i64,
    pub(crate) retry_after: Option<String>,
}

impl Probe {
    pub(crate) fn path_is(&self, path: &str) -> bool {
        self.url.ends_with(path)
    }
}

/// GETs `url` and times the answer.
pub(crate) async fn probe(client: &reqwest::Client, url: &str) -> Probe {
    let at = Timestamp::now();
    let answer = client.get(url).send().await;
    let latency_ms = Timestamp::now().millis_since(at);
    let (status, retry_after) = match answer {
        Ok(response) => (
            Some(response.status().as_u16()),
            response.headers().get("retry-after").and_then(|value| value.to_str().ok()).map(str::to_owned),
        ),
        Err(_) => (None, None),
    };
    Probe { at, url: url.to_owned(), status, latency_ms, retry_after }
}

/// Probes running in the background until [`Probing::stop`].
#[derive(Debug)]
pub(crate) struct Probing {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    running: tokio::task::JoinHandle<()>,
}

impl Probing {
    /// Asks every url every 500 ms, each request on its own so that a slow answer delays no other.
    pub(crate) fn start(urls: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let client = client_with_timeout(Duration::from_secs(10));
        let running = tokio::spawn({
            let (stop, probes) = (stop.clone(), probes.clone());
            async move {
                let mut requests = Vec::new();
                let mut ticker = tokio::time::interval(PROBE_EVERY);
                while !stop.load(Ordering::Relaxed) {
                    ticker.tick().await;
                    for url in &urls {
                        let (client, url, probes) = (client.clone(), url.clone(), probes.clone());
                        requests.push(tokio::spawn(async move {
                            let probe = probe(&client, &url).await;
                            probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(probe);
                        }));
                    }
                }
                for request in requests {
                    let _ = request.await;
                }
            }
        });
        Self { stop, probes, running }
    }

    /// Stops, waits for the answers in flight, and returns every probe.
    pub(crate) async fn stop(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.running.await;
        let mut probes = std::mem::take(&mut *self.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        probes.sort_by_key(|probe| probe.at);
        probes
    }
}

/// One stretch of leadership as a scheduler's log tells it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Term {
    pub(crate) instance: String,
    pub(crate) gained: Timestamp,
    /// `None` while it still leads.
    pub(crate) lost: Option<Timestamp>,
}

/// The terms of leadership in a JSON log: from each "gained leadership" line to the next "lost leadership".
pub(crate) fn terms(instance: &str, log: &Path) -> Vec<Term> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut terms: Vec<Term> = Vec::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        let Some(at) = entry["timestamp"].as_str().and_then(Timestamp::parse_rfc3339) else { continue };
        match entry["fields"]["message"].as_str() {
            Some("gained leadership") => terms.push(Term { instance: instance.to_owned(), gained: at, lost: None }),
            Some("lost leadership") => {
                if let Some(term) = terms.last_mut().filter(|term| term.lost.is_none()) {
                    term.lost = Some(at);
                }
            }
            _ => {}
        }
    }
    terms
}

/// Leadership overlap between terms of different instances: the total and the longest, in milliseconds, with
/// open terms ending at `end`.
pub(crate) fn overlap(terms: &[Term], end: Timestamp) -> (i64, i64) {
    let mut total = 0;
    let mut longest = 0;
    for (index, a) in terms.iter().enumerate() {
        for b in &terms[index + 1..] {
            if a.instance == b.instance {
                continue;
            }
            let start = a.gained.max(b.gained);
            let stop = a.lost.unwrap_or(end).min(b.lost.unwrap_or(end));
            let both = stop.millis_since(start);
            if both > 0 {
                total += both;
                longest = longest.max(both);
            }
        }
    }
    (total, longest)
}
