//! Operations: `GET /metrics` in the Prometheus text format, and alert webhooks with their silence
//! windows, per-task overrides and signatures.

#![allow(clippy::result_large_err, reason = "figment::Jail closures return figment::Error, as its API requires")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use figment::Jail;
use serde_json::{Value, json};

use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobs_model::{Secret, Timestamp};
use jobs_storage::Backend;
use scheduler::Config;

use crate::fake_executor::FakeExecutor;
use crate::support::{TestApp, spawn_app_with, wait_for};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const SECRET: &str = "alert-signing-secret";

// ---------------------------------------------------------------------------------------------------------------
// A strict reader of the Prometheus text format (version 0.0.4).

/// The samples of one scrape, keyed `name{label="value",…}` with the labels sorted by name.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    /// Family name → its `# TYPE`.
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn get(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }

    #[track_caller]
    fn value(&self, key: &str) -> f64 {
        self.get(key).unwrap_or_else(|| panic!("no sample `{key}` in {:#?}", self.samples))
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if text.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) => text.parse().ok(),
        _ => None,
    }
}

/// Reads `{name="value",…}` from the start of `text`; returns the labels and what follows.
#[track_caller]
fn parse_labels<'a>(text: &'a str, line: &str) -> (Vec<(String, String)>, &'a str) {
    let mut labels = Vec::new();
    let mut rest = text.strip_prefix('{').expect("labels open with `{`");
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("label without `=\"` in `{line}`"));
        assert!(is_label_name(name), "bad label name `{name}` in `{line}`");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in `{line}`"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in `{line}`"),
            }
        };
        assert!(labels.iter().all(|(seen, _)| seen != name), "label `{name}` twice in `{line}`");
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => assert!(rest.starts_with('}'), "labels not separated by `,` in `{line}`"),
        }
    }
}

/// Parses a scrape, asserting every line is a well-formed comment or sample of a declared family.
#[track_caller]
fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape { samples: BTreeMap::new(), types: BTreeMap::new() };
    let mut helped = BTreeMap::new();
    let mut sampled = std::collections::BTreeSet::new();
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["HELP", name, help] => {
                    assert!(is_metric_name(name), "bad name in `{line}`");
                    assert!(!help.is_empty(), "empty help in `{line}`");
                    assert!(helped.insert((*name).to_owned(), ()).is_none(), "HELP twice: `{line}`");
                }
                ["TYPE", name, kind] => {
                    assert!(is_metric_name(name), "bad name in `{line}`");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(kind),
                        "bad type in `{line}`"
                    );
                    assert!(!sampled.contains(*name), "TYPE after the samples of `{name}`");
                    assert!(
                        scrape.types.insert((*name).to_owned(), (*kind).to_owned()).is_none(),
                        "TYPE twice: `{line}`"
                    );
                }
                ["HELP" | "TYPE", ..] => panic!("malformed `{line}`"),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value in `{line}`"));
        let name = &line[..name_end];
        assert!(is_metric_name(name), "bad metric name in `{line}`");
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..], line)
        } else {
            (vec![], &line[name_end..])
        };
        let fields: Vec<&str> = rest.split(' ').filter(|field| !field.is_empty()).collect();
        assert!(rest.starts_with(' ') && (1..=2).contains(&fields.len()), "bad value part in `{line}`");
        let value = parse_value(fields[0]).unwrap_or_else(|| panic!("bad value in `{line}`"));
        if let Some(timestamp) = fields.get(1) {
            assert!(timestamp.parse::<i64>().is_ok(), "bad timestamp in `{line}`");
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|family| scrape.types.get(*family).is_some_and(|kind| kind == "histogram" || kind == "summary"))
            .unwrap_or(name);
        assert!(scrape.types.contains_key(family), "`{line}` has no # TYPE before it");
        if scrape.types[family] == "histogram" && name.ends_with("_bucket") {
            assert!(labels.iter().any(|(label, _)| label == "le"), "bucket without `le`: `{line}`");
        }
        sampled.insert(family.to_owned());
        labels.sort();
        let labels: Vec<String> = labels.iter().map(|(label, value)| format!("{label}=\"{value}\"")).collect();
        let key = if labels.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", labels.join(",")) };
        assert!(scrape.samples.insert(key, value).is_none(), "sample twice: `{line}`");
    }
    scrape
}

async fn scrape(app: &TestApp) -> Scrape {
    let response = app.client.get(app.url("/metrics")).send().await.expect("scrape sent");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok());
    assert_eq!(content_type, Some(PROMETHEUS_TEXT));
    parse(&response.text().await.expect("scrape read"))
}

#[test]
fn the_reader_is_strict() {
    let good = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\",b=\"q\\\"\"} 2\n\
                # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";
    let scrape = parse(good);
    assert_eq!(scrape.value("a_total{b=\"q\"\",x=\"1\"}"), 2.0);
    assert_eq!(scrape.value("h_bucket{le=\"+Inf\"}"), 1.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a counter\na{x=1} 1\n",
        "# TYPE a counter\na 1 2 3\n",
        "# TYPE a counter\na one\n",
        "# TYPE a nonsense\n",
        "# TYPE a counter\n# TYPE a counter\n",
        "# TYPE 1a counter\n",
        "# TYPE a counter\na{x=\"1\"\n",
        "# TYPE a counter\na{x=\"1\"y=\"2\"} 1\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "accepted `{bad}`");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_move_as_tasks_fire() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.expect("sqlite");
    let first = scrape(&app).await;
    for family in [
        "jobs_fires_planned_total",
        "jobs_dispatches_total",
        "jobs_dispatch_lateness_seconds",
        "jobs_executions_finished_total",
        "jobs_executions_running",
        "jobs_executors",
        "jobs_leader",
        "jobs_database_errors_total",
        "jobs_alerts_total",
    ] {
        assert!(first.types.contains_key(family), "no family `{family}` in {:?}", first.types.keys());
    }
    assert_eq!(first.types["jobs_dispatch_lateness_seconds"], "histogram");
    assert_eq!(first.types["jobs_executors"], "gauge");
    for outcome in ["accepted", "busy", "unreachable", "refused", "no_executor"] {
        assert_eq!(first.value(&format!("jobs_dispatches_total{{outcome=\"{outcome}\"}}")), 0.0);
    }
    assert_eq!(first.value("jobs_executors{health=\"healthy\",state=\"active\"}"), 0.0);

    let fake = FakeExecutor::start().await;
    fake.register(&app, "fake-1", &["tick"]).await;
    app.create_task(json!({"name": "tick", "cron_expression": "* * * * * *", "execution_mode": "parallel"})).await;
    let (status, triggered) = app.post("/api/v1/tasks/tick/trigger", json!({})).await;
    assert_eq!(status, 202, "{triggered}");

    let moved = wait_for("two cron fires dispatched", Duration::from_secs(30), || async {
        let scrape = scrape(&app).await;
        let fired = scrape.value("jobs_fires_planned_total{trigger=\"cron\"}");
        let accepted = scrape.value("jobs_dispatches_total{outcome=\"accepted\"}");
        (fired >= 2.0 && accepted >= 3.0).then_some(scrape)
    })
    .await;
    assert_eq!(moved.value("jobs_fires_planned_total{trigger=\"manual\"}"), 1.0);
    assert!(moved.value("jobs_dispatch_lateness_seconds_count") >= 3.0);
    let inf = moved.value("jobs_dispatch_lateness_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(inf, moved.value("jobs_dispatch_lateness_seconds_count"), "+Inf counts every observation");
    assert!(moved.value("jobs_dispatch_lateness_seconds_bucket{le=\"0.001\"}") <= inf);
    assert!(moved.value("jobs_dispatch_lateness_seconds_sum") >= 0.0);
    // The fake executor never calls back: what it took stays running.
    assert!(moved.value("jobs_executions_running") >= 1.0);
    assert_eq!(moved.value("jobs_executors{health=\"healthy\",state=\"active\"}"), 1.0);
    assert_eq!(moved.value("jobs_executors{health=\"unhealthy\",state=\"offline\"}"), 0.0);
    assert_eq!(moved.value("jobs_leader"), 1.0);
    assert!(moved.value("jobs_leader_epoch") >= 1.0);
    assert!(fake.executed().len() as f64 >= moved.value("jobs_dispatches_total{outcome=\"accepted\"}"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_open_when_the_api_needs_a_token() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.auth.api_tokens = vec![Secret::new("t0ken")])
        .await
        .expect("sqlite");
    assert_eq!(app.get("/api/v1/tasks").await.0, 401);
    scrape(&app).await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts.

/// One webhook call as received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    json: Value,
}

/// A webhook receiver on port 0 that records every POST.
#[derive(Clone)]
struct Receiver {
    base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let router = Router::new().route("/{*path}", post(record)).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// The bodies of the alerts of `kind`.
    fn alerts(&self, kind: &str) -> Vec<Value> {
        self.received().into_iter().map(|received| received.json).filter(|alert| alert["kind"] == kind).collect()
    }
}

async fn record(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.lock().expect("received").push(Received { path, headers, body, json });
    "ok"
}

fn at(alert: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(alert["at"].as_str().expect("`at` is a string")).expect("`at` is RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_every_second_alerts_once_per_silence_window() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.alerts.webhooks = vec![format!("{}/all", receiver.base_url)];
        config.alerts.task_webhooks.insert("flaky".to_owned(), vec![format!("{}/flaky", receiver.base_url)]);
        config.alerts.silence = jobs_model::Duration::from_secs(3);
    })
    .await
    .expect("sqlite");
    // No executor declares it: every fire fails at dispatch, and max_retry is 0.
    let task = app.create_task(json!({"name": "flaky", "cron_expression": "* * * * * *"})).await;
    let task_id = task["id"].as_str().expect("task id").to_owned();

    wait_for("a second alert carrying what the window held back", Duration::from_secs(40), || async {
        let alerts = receiver.alerts("execution_failed");
        (alerts.len() >= 2 && app.executions(&task_id, "failed").await.len() >= 7).then_some(())
    })
    .await;
    let (status, paused) = app.post("/api/v1/tasks/flaky/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");
    // Whatever was already written settles; then nothing more is raised.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let failed = app.executions(&task_id, "failed").await;
    let alerts = receiver.alerts("execution_failed");
    assert!(receiver.received().iter().all(|received| received.path == "flaky"), "the task's own webhook only");
    assert!(alerts.len() < failed.len(), "{} alerts for {} failures", alerts.len(), failed.len());
    // The window arithmetic: one alert at the first failure, then at most one per 3 s the failures spanned.
    let finished: Vec<Timestamp> = failed
        .iter()
        .map(|execution| Timestamp::parse_rfc3339(execution["finished_at"].as_str().expect("finished_at")).unwrap())
        .collect();
    let span = finished.iter().max().unwrap().millis_since(*finished.iter().min().unwrap());
    assert!(alerts.len() as i64 <= 1 + span / 3000 + 1, "{} alerts over {span} ms of failures", alerts.len());
    let mut times: Vec<Timestamp> = alerts.iter().map(at).collect();
    times.sort();
    for pair in times.windows(2) {
        assert!(pair[1].millis_since(pair[0]) >= 2_900, "alerts closer than the silence window: {times:?}");
    }
    let suppressed: u64 = alerts.iter().map(|alert| alert["suppressed"].as_u64().expect("suppressed")).sum();
    assert!(alerts.iter().skip(1).any(|alert| alert["suppressed"].as_u64() > Some(0)), "{alerts:#?}");
    assert!(alerts.len() as u64 + suppressed <= failed.len() as u64);

    let first = alerts.iter().min_by_key(|alert| at(alert)).expect("an alert");
    assert_eq!(first["suppressed"], 0);
    assert_eq!(first["task_id"], task_id.as_str());
    assert_eq!(first["task_name"], "flaky");
    assert_eq!(first["status"], "failed");
    assert!(failed.iter().any(|execution| execution["id"] == first["execution_id"]), "{first}");
    assert!(first["error"].as_str().is_some_and(|error| error.contains("no active healthy")), "{first}");
    assert!(first["scheduler"].as_str().is_some_and(|id| !id.is_empty()), "{first}");
    for absent in ["executor_id", "instance_id"] {
        assert!(first[absent].is_null(), "{first}");
    }
    assert!(receiver.received().iter().all(|received| !received.headers.contains_key(SIGNATURE_HEADER)));

    let scrape = scrape(&app).await;
    assert!(scrape.value("jobs_alerts_total{result=\"suppressed\"}") >= 1.0);
    assert_eq!(scrape.value("jobs_alerts_total{result=\"sent\"}"), alerts.len() as f64);
    assert!(scrape.value("jobs_executions_finished_total{status=\"failed\"}") >= failed.len() as f64);
    assert!(scrape.value("jobs_dispatches_total{outcome=\"no_executor\"}") >= failed.len() as f64);
    app.stop().await;
}

/// Registers `fake` with a signed request, as an SDK executor would with `auth.executor_secret`.
async fn register_signed(app: &TestApp, fake: &FakeExecutor, instance_id: &str) -> String {
    let body = json!({"name": "fake", "instance_id": instance_id, "base_url": fake.base_url, "tasks": []}).to_string();
    let (timestamp, signature) =
        signature::sign_headers(SECRET.as_bytes(), Timestamp::now().unix_seconds(), body.as_bytes());
    let response = app
        .client
        .post(app.url("/api/v1/executors/register"))
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .expect("registration sent");
    assert!(response.status().is_success(), "{}", response.status());
    let registered: Value = response.json().await.expect("registration answer");
    registered["executor_id"].as_str().expect("executor_id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_turning_unhealthy_or_going_offline_are_alerted_signed() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.alerts.webhooks = vec![format!("{}/ops", receiver.base_url)];
        config.auth.executor_secret = Some(Secret::new(SECRET));
        config.health_check.interval = jobs_model::Duration::from_millis(200);
        config.health_check.timeout = jobs_model::Duration::from_millis(500);
        config.health_check.failure_threshold = 2;
        config.executors.offline_after = jobs_model::Duration::from_secs(3);
    })
    .await
    .expect("sqlite");
    let (sick, silent) = (FakeExecutor::start().await, FakeExecutor::start().await);
    let sick_id = register_signed(&app, &sick, "sick-1").await;
    let silent_id = register_signed(&app, &silent, "silent-1").await;
    sick.set_healthy(false);

    let unhealthy = wait_for("an unhealthy alert", Duration::from_secs(20), || async {
        receiver.alerts("executor_unhealthy").into_iter().next()
    })
    .await;
    assert_eq!(unhealthy["executor_id"], sick_id.as_str());
    assert_eq!(unhealthy["instance_id"], "sick-1");
    assert_eq!(unhealthy["status"], "unhealthy");
    assert!(unhealthy["error"].as_str().is_some_and(|error| error.contains("503")), "{unhealthy}");
    assert!(unhealthy["task_id"].is_null() && unhealthy["execution_id"].is_null(), "{unhealthy}");

    // Neither instance heartbeats: both go offline after 3 s; the sick one is still in its silence window.
    let offline = wait_for("an offline alert", Duration::from_secs(20), || async {
        receiver.alerts("executor_offline").into_iter().next()
    })
    .await;
    assert_eq!(offline["executor_id"], silent_id.as_str());
    assert_eq!(offline["instance_id"], "silent-1");
    assert_eq!(offline["status"], "offline");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.alerts("executor_offline").len(), 1, "{:#?}", receiver.alerts("executor_offline"));
    assert_eq!(receiver.alerts("executor_unhealthy").len(), 1);
    assert!(scrape(&app).await.value("jobs_alerts_total{result=\"suppressed\"}") >= 1.0);

    for received in receiver.received() {
        assert_eq!(received.path, "ops");
        let header = |name: &str| received.headers.get(name).and_then(|value| value.to_str().ok());
        let verified = signature::verify(
            SECRET.as_bytes(),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &received.body,
            Timestamp::now().unix_seconds(),
        );
        assert!(verified.is_ok(), "{verified:?}: {}", received.json);
    }
    app.stop().await;
}

#[test]
fn the_alerts_section_parses_and_bad_urls_name_their_key() {
    Jail::expect_with(|jail| {
        let defaults = Config::load(None).map_err(|e| e.to_string())?;
        assert!(defaults.alerts.webhooks.is_empty());
        assert_eq!(defaults.alerts.silence.get(), Duration::from_secs(300));
        assert_eq!(defaults.alerts.timeout.get(), Duration::from_secs(5));
        assert_eq!(defaults.alerts.retries, 3);
        jail.create_file(
            "config.yaml",
            "alerts:\n  webhooks: [\"https://hooks.example/jobs\"]\n  silence: 1m\n  retries: 5\n  \
             task_webhooks:\n    nightly: [\"http://pager.example/nightly\"]\n",
        )?;
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.alerts.webhooks, ["https://hooks.example/jobs"]);
        assert_eq!(config.alerts.silence.get(), Duration::from_secs(60));
        assert_eq!(config.alerts.retries, 5);
        assert_eq!(config.alerts.task_webhooks["nightly"], ["http://pager.example/nightly"]);
        let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/example.full.yaml"))
            .expect("configs/example.full.yaml");
        jail.create_file("example.yaml", &example)?;
        let example = Config::load(Some("example.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(example.alerts, defaults.alerts, "example.full.yaml shows the defaults");
        jail.set_env("JOBS_ALERTS__TIMEOUT", "2s");
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.alerts.timeout.get(), Duration::from_secs(2));
        Ok(())
    });
    for (yaml, key) in [
        ("alerts:\n  webhooks: [\"ftp://hooks.example\"]\n", "alerts.webhooks[0]"),
        ("alerts:\n  task_webhooks:\n    nightly: [\"nope\"]\n", "alerts.task_webhooks.nightly[0]"),
        ("alerts:\n  timeout: 0s\n", "alerts.timeout"),
        ("alerts:\n  silense: 5m\n", "silense"),
    ] {
        Jail::expect_with(|jail| {
            jail.create_file("bad.yaml", yaml)?;
            let error = Config::load(Some("bad.yaml".as_ref())).expect_err("the config is rejected").to_string();
            assert!(error.contains(key), "`{error}` should mention `{key}`");
            Ok(())
        });
    }
}
