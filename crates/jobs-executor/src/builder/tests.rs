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

#[test]
fn tls_files_are_read_at_build_and_a_bad_one_is_named() {
    /// Removes the directory however the test ends.
    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = TempDir(std::env::temp_dir().join(format!("jobs-executor-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let (cert_file, key_file, missing) = (dir.0.join("cert.pem"), dir.0.join("key.pem"), dir.0.join("missing.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let built = Executor::builder("g")
        .tls_listener(&cert_file, &key_file)
        .tls_ca_file(&cert_file)
        .tls_client_cert(&cert_file, &key_file)
        .build();
    assert!(built.is_ok(), "{built:?}");
    let error = Executor::builder("g").tls_listener(&missing, &key_file).build().unwrap_err().to_string();
    assert!(error.starts_with("invalid executor option `tls_listener`: cannot read"), "{error}");
    assert!(error.contains("missing.pem"), "{error}");
    let error = Executor::builder("g").tls_listener(&cert_file, &cert_file).build().unwrap_err().to_string();
    assert!(error.contains("cert.pem holds no PEM private key"), "{error}");
    let error = Executor::builder("g").tls_ca_file(&key_file).build().unwrap_err().to_string();
    assert!(error.contains("`tls_ca_file`") && error.contains("key.pem holds no PEM certificate"), "{error}");
    let error = Executor::builder("g").tls_listener(&cert_file, &key_file).base_url("http://a:1").build().unwrap_err();
    assert!(error.to_string().contains("`base_url`: is http://, but tls_listener serves HTTPS"), "{error}");
}
