//! The silence window's arithmetic and the `alerts` section's checks.

use std::time::{Duration, Instant};

use jobs_model::{ExecutorId, TaskId};

use crate::alerts::{AlertsConfig, Silences, Subject};

/// Raises alerts about `subject` at each offset (ms) under a `window_ms` window; expects, per raise, what was
/// sent: `Some(suppressed)`, or `None` when held back.
#[track_caller]
fn check(window_ms: u64, raises: &[(Subject, u64)], expected: &[Option<u64>]) {
    let start = Instant::now();
    let mut silences = Silences::new(Duration::from_millis(window_ms));
    let got: Vec<Option<u64>> =
        raises.iter().map(|(subject, at)| silences.admit(*subject, start + Duration::from_millis(*at))).collect();
    assert_eq!(got, expected);
}

#[test]
fn one_alert_per_subject_per_window_carrying_the_count_held_back() {
    let task = Subject::Task(TaskId::new());
    let every_second: Vec<(Subject, u64)> = (0..8).map(|second| (task, second * 1000)).collect();
    check(3000, &every_second, &[Some(0), None, None, Some(2), None, None, Some(2), None]);
    check(0, &every_second[..3], &[Some(0), Some(0), Some(0)]);
    check(3000, &[(task, 0), (task, 10_000)], &[Some(0), Some(0)]);
}

#[test]
fn subjects_have_their_own_windows() {
    let (first, second) = (Subject::Task(TaskId::new()), Subject::Task(TaskId::new()));
    let executor = Subject::Executor(ExecutorId::new());
    check(
        3000,
        &[(first, 0), (second, 0), (executor, 100), (first, 200), (executor, 3100), (first, 3000)],
        &[Some(0), Some(0), Some(0), None, Some(0), Some(1)],
    );
}

#[track_caller]
fn check_config(yaml_like: AlertsConfig, expected: Result<Vec<&str>, &str>) {
    match (yaml_like.normalized(), expected) {
        (Ok(config), Ok(urls)) => assert_eq!(config.webhooks, urls),
        (Err(error), Err(part)) => assert!(error.contains(part), "`{error}` should mention `{part}`"),
        (got, expected) => panic!("got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn the_section_is_checked_and_urls_normalized() {
    let with = |webhooks: &[&str]| AlertsConfig {
        webhooks: webhooks.iter().map(|url| (*url).to_owned()).collect(),
        ..AlertsConfig::default()
    };
    check_config(AlertsConfig::default(), Ok(vec![]));
    check_config(
        with(&["http://Hooks.example:80/alert/", "https://hooks.example/a?b=c", "http://hooks.example/alert"]),
        Ok(vec!["http://hooks.example/alert", "https://hooks.example/a?b=c"]),
    );
    check_config(with(&["ftp://hooks.example"]), Err("alerts.webhooks[0]"));
    check_config(with(&["http://ok.example", "http://user:pw@hooks.example"]), Err("alerts.webhooks[1]"));
    let mut per_task = AlertsConfig::default();
    per_task.task_webhooks.insert("nightly".to_owned(), vec!["not a url".to_owned()]);
    check_config(per_task, Err("alerts.task_webhooks.nightly[0]"));
    let mut bad_name = AlertsConfig::default();
    bad_name.task_webhooks.insert("no spaces".to_owned(), vec![]);
    check_config(bad_name, Err("alerts.task_webhooks.no spaces"));
    check_config(
        AlertsConfig { timeout: jobs_model::Duration::from_secs(0), ..AlertsConfig::default() },
        Err("alerts.timeout"),
    );
    check_config(AlertsConfig { retries: 11, ..AlertsConfig::default() }, Err("alerts.retries"));
}
