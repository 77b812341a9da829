//! `deploy/docker/` is honest: the compose file has the seed's topology, its variables are real config keys,
//! and `cargo xtask cluster` runs the same environment locally.

#![allow(clippy::result_large_err, reason = "figment::Jail closures return figment::Error, as its API requires")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::{Figment, Jail};
use serde_json::Value;

use crate::cluster::{COMPOSE_FILE, Compose, local_nodes};

fn path(relative: &str) -> PathBuf {
    crate::cluster::root().join(relative)
}

fn compose() -> Compose {
    Compose::load(&path(COMPOSE_FILE)).expect("the compose file parses")
}

/// The whole compose file, for the parts the local cluster does not read.
fn raw() -> Value {
    Figment::from(Yaml::file_exact(path(COMPOSE_FILE))).extract().expect("the compose file parses")
}

fn schedulers() -> [(usize, &'static str); 3] {
    [(1, "scheduler1"), (2, "scheduler2"), (3, "scheduler3")]
}

#[test]
fn compose_has_mysql_three_schedulers_and_the_executor() {
    let raw = raw();
    let services = &raw["services"];

    let mysql = &services["mysql"];
    assert!(mysql["image"].as_str().is_some_and(|image| image.starts_with("mysql:8")), "{mysql}");
    let check = mysql["healthcheck"]["test"].to_string();
    assert!(check.contains("mysqladmin ping"), "mysql needs a `mysqladmin ping` healthcheck: {check}");

    let compose = compose();
    for (n, name) in schedulers() {
        let service = &services[name];
        assert_eq!(service["ports"], serde_json::json!([format!("808{n}:808{n}")]), "{name}");
        assert_eq!(service["depends_on"]["mysql"]["condition"], "service_healthy", "{name}");
        assert_eq!(service["command"], Value::Null, "{name} runs the image's default, the scheduler");
        let env = compose.services[name].env();
        assert_eq!(env["JOBS_SERVER__PORT"], format!("808{n}"), "{name}");
        assert_eq!(env["JOBS_SCHEDULER__INSTANCE_ID"], format!("s{n}"), "{name}");
        assert_eq!(env["JOBS_SERVER__ADVERTISE_URL"], format!("http://{name}:808{n}"), "{name}");
        assert!(env["JOBS_DATABASE__URL"].contains("@mysql:3306/"), "{name} uses the mysql service");
    }

    let executor = &services["executor"];
    assert_eq!(executor["command"], serde_json::json!(["example-executor"]));
    assert_eq!(executor["ports"], serde_json::json!(["9090:9090"]));
    let env = compose.services["executor"].env();
    assert_eq!(env["JOBS_SCHEDULER_URL"], "http://scheduler1:8081,http://scheduler2:8082,http://scheduler3:8083");
    assert_eq!(env["JOBS_EXECUTOR_BASE_URL"], "http://executor:9090");
}

#[test]
fn scheduler_variables_are_real_config_keys() {
    let compose = compose();
    for (n, name) in schedulers() {
        let env = compose.services[name].env();
        for key in env.keys() {
            // The binary reads only `JOBS_<SECTION>__<KEY>`; anything else would be silently ignored.
            assert!(key.starts_with("JOBS_") && key.contains("__"), "{name}: `{key}` is not a config variable");
        }
        Jail::expect_with(|jail| {
            for (key, value) in &env {
                jail.set_env(key, value);
            }
            let config = scheduler::Config::load(None).map_err(|error| format!("{name}: {error:#}"))?;
            assert_eq!(config.server.port, 8080 + n as u16);
            assert_eq!(config.server.advertise_url, format!("http://{name}:808{n}"));
            assert_eq!(config.scheduler.instance_id, format!("s{n}"));
            assert_eq!(config.scheduler.heartbeat_interval.get(), Duration::from_secs(1));
            assert!(config.database.resolved_url().map_err(|error| error.to_string())?.starts_with("mysql://"));
            Ok(())
        });
    }
}

#[test]
fn executor_variables_are_read_by_the_example_executor() {
    let source = std::fs::read_to_string(path("bins/example-executor/src/main.rs")).expect("the executor's main");
    for key in compose().services["executor"].env().keys() {
        assert!(source.contains(&format!("\"{key}\"")), "bins/example-executor does not read `{key}`");
    }
}

#[test]
fn the_local_cluster_runs_the_compose_environment() {
    let nodes = local_nodes(&compose(), "mysql://root@127.0.0.1:3306/jobs_cluster");
    let names: Vec<(&str, &str)> = nodes.iter().map(|node| (node.name.as_str(), node.binary)).collect();
    assert_eq!(
        names,
        [
            ("scheduler1", "scheduler"),
            ("scheduler2", "scheduler"),
            ("scheduler3", "scheduler"),
            ("executor", "example-executor"),
        ]
    );
    let expected = |n: usize| -> BTreeMap<String, String> {
        [
            ("JOBS_DATABASE__URL", "mysql://root@127.0.0.1:3306/jobs_cluster".to_owned()),
            ("JOBS_LOG__FILE", format!("logs/scheduler{n}.log")),
            ("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s".to_owned()),
            ("JOBS_SCHEDULER__INSTANCE_ID", format!("s{n}")),
            ("JOBS_SERVER__ADVERTISE_URL", format!("http://127.0.0.1:808{n}")),
            ("JOBS_SERVER__PORT", format!("808{n}")),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    };
    for n in 1..=3 {
        assert_eq!(nodes[n - 1].env, expected(n), "scheduler{n}");
    }
    let executor = &nodes[3].env;
    assert_eq!(executor["JOBS_SCHEDULER_URL"], "http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083");
    assert_eq!(executor["JOBS_EXECUTOR_BASE_URL"], "http://127.0.0.1:9090");
    assert_eq!(executor["JOBS_EXECUTOR_PORT"], "9090");
}

#[test]
fn the_image_builds_both_binaries_and_checks_its_health() {
    let dockerfile = std::fs::read_to_string(path("deploy/docker/Dockerfile")).expect("deploy/docker/Dockerfile");
    for needle in [
        "cargo build --release --locked -p scheduler -p example-executor",
        "FROM debian:bookworm-slim",
        "USER jobs",
        "/usr/local/bin/",
        "HEALTHCHECK",
        "/health",
    ] {
        assert!(dockerfile.contains(needle), "the Dockerfile should contain `{needle}`");
    }
    let ignored = std::fs::read_to_string(path(".dockerignore")).expect(".dockerignore");
    for entry in ["target", "data", "logs", ".git"] {
        assert!(ignored.lines().any(|line| line.trim() == entry), ".dockerignore should list `{entry}`");
    }
}
