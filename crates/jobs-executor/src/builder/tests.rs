//! Tests of the builder's checks.

use std::time::Duration;

use jobs_model::protocol::DeclaredTask;

use crate::builder::{DEFAULT_EARLY_DELIVERY, ExecutorBuilder, http_url};
use crate::{Executor, JobContext, JobError};

async fn noop(_ctx: JobContext) -> Result<(), JobError> {
    Ok(())
}

#[track_caller]
fn check(builder: ExecutorBuilder, expected: Result<&[&str], &str>) {
    match (builder.build(), expected) {
        (Ok(executor), Ok(tasks)) => {
            let names: Vec<&str> = executor.tasks.iter().map(|t| t.task_name.as_str()).collect();
            assert_eq!(names, tasks);
        }
        (Err(error), Err(message)) => assert_eq!(error.to_string(), message),
        (Ok(executor), Err(message)) => panic!("expected `{message}`, built {executor:?}"),
        (Err(error), Ok(_)) => panic!("expected a build, got `{error}`"),
    }
}

fn declared(task_name: &str) -> DeclaredTask {
    DeclaredTask { task_name: task_name.to_owned(), cron: Some("0 0 2 * * *".to_owned()), ..DeclaredTask::default() }
}

#[test]
fn handlers_declare_their_tasks_after_the_declared_ones() {
    check(Executor::builder("g").handler("b", noop).handler("a", noop).declare(declared("b")), Ok(&["b", "a"]));
    check(Executor::builder("g"), Ok(&[]));
}

#[test]
fn bad_options_are_named() {
    check(Executor::builder(" "), Err("invalid executor option `name`: must not be empty"));
    check(Executor::builder("g").instance_id(""), Err("invalid executor option `instance_id`: must not be empty"));
    check(
        Executor::builder("g").scheduler_urls(["127.0.0.1:8080"]),
        Err("invalid executor option `scheduler_urls`: `127.0.0.1:8080` is not an http:// or https:// url"),
    );
    check(
        Executor::builder("g").scheduler_urls(Vec::<String>::new()),
        Err("invalid executor option `scheduler_urls`: at least one url is needed"),
    );
    check(
        Executor::builder("g").base_url("http://"),
        Err("invalid executor option `base_url`: `http://` is not an http:// or https:// url"),
    );
    check(
        Executor::builder("g").declare(declared("daily_report")),
        Err("invalid executor option `declare`: task `daily_report` is declared but has no handler"),
    );
    check(
        Executor::builder("g").handler("a", noop).declare(declared("a")).declare(declared("a")),
        Err("invalid executor option `declare`: task `a` is declared twice"),
    );
    check(
        Executor::builder("g").handler("a", noop).handler("a", noop),
        Err("invalid executor option `handler`: task `a` has two handlers"),
    );
    check(
        Executor::builder("g").max_concurrency(0),
        Err("invalid executor option `max_concurrency`: must be at least 1"),
    );
}

#[test]
fn early_delivery_is_on_by_default_and_at_most_a_minute() {
    assert_eq!(Executor::builder("g").build().unwrap().early_delivery, DEFAULT_EARLY_DELIVERY);
    check(Executor::builder("g").early_delivery(Duration::ZERO), Ok(&[]));
    check(Executor::builder("g").early_delivery(Duration::from_secs(60)), Ok(&[]));
    check(
        Executor::builder("g").early_delivery(Duration::from_millis(60_001)),
        Err("invalid executor option `early_delivery`: 60.001s is more than 60s, the most a scheduler accepts"),
    );
}

#[test]
fn credentials_must_not_be_empty() {
    check(Executor::builder("g").secret("s3cret").api_token("t0ken"), Ok(&[]));
    check(Executor::builder("g").secret(b"\x00\xff"), Ok(&[]));
    check(Executor::builder("g").secret(""), Err("invalid executor option `secret`: must not be empty"));
    check(Executor::builder("g").api_token(" "), Err("invalid executor option `api_token`: must not be empty"));
    check(
        Executor::builder("g").api_token("t\n1"),
        Err("invalid executor option `api_token`: must be printable ASCII"),
    );
}

#[test]
fn debug_hides_credentials() {
    let builder = Executor::builder("g").secret("s3cret").api_token("t0ken");
    let shown = format!("{builder:?}");
    assert!(shown.contains("Credentials { secret: Some(***), api_token: Some(***) }"), "{shown}");
    let shown = format!("{:?}", builder.build().unwrap());
    assert!(!shown.contains("s3cret") && !shown.contains("t0ken"), "{shown}");
}

#[test]
fn urls_lose_their_trailing_slashes() {
    assert_eq!(http_url("base_url", " http://a:1// ").unwrap(), "http://a:1");
    assert_eq!(http_url("base_url", "https://b").unwrap(), "https://b");
}
