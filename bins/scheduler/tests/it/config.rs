//! Configuration: the seed's file parses as written, env variables override it, bad values name their key.

#![allow(clippy::result_large_err, reason = "figment::Jail closures return figment::Error, as its API requires")]

use std::time::Duration;

use figment::Jail;

use scheduler::{Config, LogFormat};

fn seed_file() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/config.yaml"))
        .expect("configs/config.yaml")
}

#[test]
fn the_seed_config_parses_with_every_key() {
    Jail::expect_with(|jail| {
        jail.create_file("config.yaml", &seed_file())?;
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.database.host, "127.0.0.1");
        assert_eq!(config.database.database, "jobs");
        assert_eq!(config.database.resolved_url().map_err(|e| e.to_string())?, "mysql://root@127.0.0.1:3306/jobs");
        assert_eq!(config.scheduler.instance_id, "scheduler-001");
        assert_eq!(config.scheduler.lock_key, "scheduler_leader_lock");
        assert_eq!(config.scheduler.lock_timeout.get(), Duration::from_secs(30));
        assert_eq!(config.scheduler.heartbeat_interval.get(), Duration::from_secs(10));
        assert_eq!(config.scheduler.max_workers, 10);
        assert!(config.health_check.enabled);
        assert_eq!(config.health_check.interval.get(), Duration::from_secs(30));
        assert_eq!(config.health_check.timeout.get(), Duration::from_secs(5));
        assert_eq!((config.health_check.failure_threshold, config.health_check.recovery_threshold), (3, 2));
        Ok(())
    });
}

#[test]
fn no_config_means_sqlite_on_8080() {
    Jail::expect_with(|_| {
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 8080);
        assert!(config.database.resolved_url().map_err(|e| e.to_string())?.starts_with("sqlite://data/jobs.db"));
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("config.yaml", &seed_file())?;
        jail.set_env("JOBS_DATABASE__URL", "postgres://postgres@127.0.0.1:5432/jobs");
        jail.set_env("JOBS_SERVER__PORT", "8081");
        jail.set_env("JOBS_SCHEDULER__INSTANCE_ID", "s1");
        jail.set_env("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s");
        jail.set_env("JOBS_CONFIG", "config.yaml");
        jail.set_env("JOBS_EXECUTOR_PORT", "9091");
        let config = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 8081);
        assert_eq!(config.scheduler.instance_id, "s1");
        assert_eq!(config.scheduler.heartbeat_interval.get(), Duration::from_secs(1));
        assert_eq!(
            config.database.resolved_url().map_err(|e| e.to_string())?,
            "postgres://postgres@127.0.0.1:5432/jobs"
        );
        Ok(())
    });
}

#[test]
fn retention_parses_from_yaml_and_env() {
    Jail::expect_with(|jail| {
        let defaults = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(defaults.retention.max_age.get(), Duration::from_secs(30 * 86_400));
        assert_eq!((defaults.retention.max_per_task, defaults.retention.batch_size), (0, 500));
        assert_eq!(defaults.retention.interval.get(), Duration::from_secs(60));

        jail.create_file("config.yaml", "retention:\n  max_age: 14d\n  max_per_task: 1000\n  batch_size: 50\n")?;
        let from_file = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(from_file.retention.max_age.get(), Duration::from_secs(14 * 86_400));
        assert_eq!((from_file.retention.max_per_task, from_file.retention.batch_size), (1000, 50));

        jail.set_env("JOBS_RETENTION__MAX_AGE", "7d");
        jail.set_env("JOBS_RETENTION__MAX_PER_TASK", "20");
        let from_env = Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(from_env.retention.max_age.get(), Duration::from_secs(7 * 86_400));
        assert_eq!((from_env.retention.max_per_task, from_env.retention.batch_size), (20, 50));
        Ok(())
    });
    rejects("retention:\n  batch_size: 0\n", "retention.batch_size");
    rejects("retention:\n  max_age: forever\n", "max_age");
}

#[track_caller]
fn rejects(yaml: &str, expected: &str) {
    Jail::expect_with(|jail| {
        jail.create_file("bad.yaml", yaml)?;
        let error = Config::load(Some("bad.yaml".as_ref())).expect_err("the config is rejected").to_string();
        assert!(error.contains(expected), "`{error}` should mention `{expected}`");
        Ok(())
    });
}

#[test]
fn bad_values_name_their_key() {
    rejects("scheduler:\n  heartbeat_interval: soon\n", "heartbeat_interval");
    rejects("server:\n  port: eighty\n", "port");
    rejects("database:\n  url: oracle://db/jobs\n", "database.url");
    rejects("scheduler:\n  max_workers: 0\n", "scheduler.max_workers");
    rejects("log:\n  format: xml\n", "log.format");
    rejects("log:\n  max_files: 0\n", "log.max_files");
    rejects("schedular:\n  max_workers: 3\n", "schedular");
}

#[test]
fn the_log_format_is_one_of_two_words() {
    Jail::expect_with(|jail| {
        assert_eq!(Config::load(None).map_err(|e| e.to_string())?.log.format, LogFormat::Text);
        jail.create_file("config.yaml", "log:\n  format: json\n")?;
        assert_eq!(Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?.log.format, LogFormat::Json);
        jail.set_env("JOBS_LOG__FORMAT", "text");
        assert_eq!(Config::load(Some("config.yaml".as_ref())).map_err(|e| e.to_string())?.log.format, LogFormat::Text);
        jail.set_env("JOBS_LOG__FORMAT", "xml");
        let error = Config::load(Some("config.yaml".as_ref())).expect_err("xml is refused").to_string();
        // Figment names a key from the environment as it was spelled there: `LOG.FORMAT`.
        assert!(error.to_lowercase().contains("log.format"), "`{error}` should name `log.format`");
        Ok(())
    });
    rejects("log:\n  format: JSON\n", "log.format");
    rejects("log:\n  format: 1\n", "log.format");
}

#[test]
fn a_missing_file_is_an_error() {
    Jail::expect_with(|_| {
        let error = Config::load(Some("nowhere.yaml".as_ref())).expect_err("missing file").to_string();
        assert!(error.contains("nowhere.yaml"), "{error}");
        Ok(())
    });
}
