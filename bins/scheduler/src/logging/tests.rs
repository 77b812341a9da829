//! The log file keeps the name `log.file` gives, rolls to `.1`, `.2`, … at each new UTC day, and keeps at most
//! `log.max_files` earlier files.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Local, TimeZone};
use rolling_file::RollingCondition;

use crate::LogConfig;
use crate::logging::{DailyUtc, file_appender};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jobs-logging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the log directory exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn utc(day: u32, hour: u32) -> chrono::DateTime<Local> {
    chrono::Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).single().expect("a valid instant").with_timezone(&Local)
}

#[test]
fn the_condition_rolls_at_each_new_utc_day_only() {
    let mut condition = DailyUtc { day: None };
    let rolls: Vec<bool> = [utc(24, 1), utc(24, 23), utc(25, 0), utc(25, 12), utc(27, 3)]
        .iter()
        .map(|at| condition.should_rollover(at, 0))
        .collect();
    assert_eq!(rolls, [false, false, true, false, true]);
}

#[test]
fn the_file_keeps_its_name_and_at_most_max_files_earlier_days() {
    let dir = scratch_dir("daily");
    let logs = dir.join("logs");
    let config = LogConfig { file: format!("{}/scheduler.log", logs.display()), max_files: 2, ..LogConfig::default() };
    let mut appender = file_appender(&config).expect("the appender opens");
    for (day, line) in [(21, "a"), (22, "b"), (23, "c"), (24, "d")] {
        appender.write_with_datetime(format!("{line}\n").as_bytes(), &utc(day, 12)).expect("written");
    }
    appender.flush().expect("flushed");
    assert_eq!(names(&logs), ["scheduler.log", "scheduler.log.1", "scheduler.log.2"]);
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).expect("a log file");
    assert_eq!(
        (read("scheduler.log"), read("scheduler.log.1"), read("scheduler.log.2")),
        ("d\n".into(), "c\n".into(), "b\n".into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_from_an_earlier_day_rolls_at_the_first_line_after_a_restart() {
    let dir = scratch_dir("restart");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join("scheduler.log");
    std::fs::write(&path, "yesterday\n").expect("an old log file");
    let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::options().append(true).open(&path).and_then(|file| file.set_modified(yesterday)).expect("mtime");
    let config = LogConfig { file: path.display().to_string(), ..LogConfig::default() };
    let mut appender = file_appender(&config).expect("the appender opens");
    appender.write_all(b"today\n").expect("written");
    appender.flush().expect("flushed");
    assert_eq!(std::fs::read_to_string(&path).expect("current"), "today\n");
    assert_eq!(std::fs::read_to_string(dir.join("scheduler.log.1")).expect("rolled"), "yesterday\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_path_without_a_file_name_is_refused() {
    let config = LogConfig { file: "logs/..".to_owned(), ..LogConfig::default() };
    let error = file_appender(&config).expect_err("no file name");
    assert!(error.to_string().starts_with("log.file:"), "{error}");
}
