//! Each target read from a report and checked.

use serde_json::{Value, json};

use crate::bench::targets::check;

#[track_caller]
fn check_met(report: Value, expected: &[(&str, f64, &str, bool)]) {
    let actual: Vec<(&str, f64, String, bool)> =
        check(&report).into_iter().map(|check| (check.metric, check.ours, check.target, check.met)).collect();
    let expected: Vec<(&str, f64, String, bool)> =
        expected.iter().map(|&(metric, ours, target, met)| (metric, ours, target.to_owned(), met)).collect();
    assert_eq!(actual, expected);
}

#[test]
fn a_report_without_figures_checks_nothing() {
    check_met(json!({}), &[]);
}

#[test]
fn throughput_checks_rate_ratio_and_statements() {
    check_met(
        json!({"throughput": {"executions_per_s": 1250.0, "ratio": 0.71, "statements_per_execution": 6.5}}),
        &[
            ("throughput (executions/s)", 1250.0, "≥ 5000", false),
            ("throughput / database ceiling", 0.71, "≥ 0.7", true),
            ("statements per execution", 6.5, "≤ 2", false),
        ],
    );
}

#[test]
fn curve_rows_are_found_by_tasks_and_executor_and_the_sdk_is_compared_with_the_peer() {
    let row = |tasks: u64, executor: &str, p50: f64, p99: f64| json!({"tasks": tasks, "executor": executor, "p50_ms": p50, "p99_ms": p99, "early_starts": 0});
    let report = json!({"curve": [
        row(10, "plain", 1.0, 1.5),
        row(1000, "sdk", 1.0, 12.0),
        {"tasks": 1000, "executor": "tokio-cron-scheduler", "p50_ms": 300.0, "p99_ms": 11.0},
    ]});
    check_met(
        report,
        &[
            ("curve plain p99 at 10 tasks (ms)", 1.5, "≤ 2", true),
            ("curve sdk p50 at 1,000 tasks (ms)", 1.0, "≤ 2", true),
            ("curve sdk p99 at 1,000 tasks (ms)", 12.0, "≤ 10", false),
            ("curve sdk p50 at 1,000 tasks (ms)", 1.0, "< tokio-cron-scheduler (300)", true),
            ("curve sdk p99 at 1,000 tasks (ms)", 12.0, "< tokio-cron-scheduler (11)", false),
            ("curve early starts", 0.0, "≤ 0", true),
        ],
    );
}

#[test]
fn overload_goodput_is_held_to_a_share_of_the_peak_held() {
    let report =
        json!({"overload": {"goodput_per_s": 850.0, "peak_held_per_s": 1000.0, "sent_twice": 0, "window_open": 3}});
    check_met(
        report,
        &[
            ("overload goodput in the window (per s)", 850.0, "≥ 0.9 × peak held (1000)", false),
            ("overload fires sent twice", 0.0, "≤ 0", true),
            ("overload window fires pending or running 40 s after", 3.0, "≤ 0", false),
        ],
    );
}
