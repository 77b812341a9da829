//! The log file rolls daily under the name `log.file` gives, and keeps at most `log.max_files` files.

use std::io::Write;
use std::path::PathBuf;

use crate::LogConfig;
use crate::logging::file_appender;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jobs-logging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn utc_date() -> String {
    jobs_model::Timestamp::now().to_string()[..10].to_owned()
}

fn names(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the log directory exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[test]
fn files_are_named_by_the_day_and_the_oldest_are_deleted() {
    let dir = scratch_dir("daily");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("scratch directory");
    for day in ["2020-01-01", "2020-01-02", "2020-01-03"] {
        std::fs::write(logs.join(format!("scheduler.{day}.log")), "old\n").expect("old log file");
    }
    std::fs::write(logs.join("other.txt"), "not a log\n").expect("unrelated file");
    let config =
        LogConfig { file: format!("{}/logs/scheduler.log", dir.display()), max_files: 2, ..LogConfig::default() };

    let before = utc_date();
    let mut appender = file_appender(&config).expect("the appender opens");
    appender.write_all(b"hello\n").expect("written");
    appender.flush().expect("flushed");
    let after = utc_date();

    let names = names(&logs);
    let today = [format!("scheduler.{before}.log"), format!("scheduler.{after}.log")];
    let current =
        names.iter().find(|name| today.contains(name)).unwrap_or_else(|| panic!("no file for today in {names:?}"));
    assert_eq!(std::fs::read_to_string(logs.join(current)).expect("today's file"), "hello\n");
    let logs_kept = names.iter().filter(|name| name.starts_with("scheduler.") && name.ends_with(".log")).count();
    assert_eq!(logs_kept, 2, "{names:?}");
    assert!(names.contains(&"other.txt".to_owned()), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_without_extension_or_directory_still_rolls() {
    let dir = scratch_dir("bare");
    let config = LogConfig { file: format!("{}/scheduler", dir.display()), ..LogConfig::default() };
    let mut appender = file_appender(&config).expect("the appender opens");
    appender.write_all(b"x\n").expect("written");
    let names = names(&dir);
    assert!(names.iter().all(|name| name.starts_with("scheduler.20")), "{names:?}");
    assert_eq!(names.len(), 1, "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
