//! The targets of the summary: each figure of the report next to what it should be, and whether it is.

#[cfg(test)]
mod tests;

use serde_json::Value;

use self::Bound::{AtLeast, AtLeastTimes, AtMost, Below};
use self::Figure::{At, Curve, CurveTotal};

/// Where a figure is in the report.
#[derive(Debug, Clone, Copy)]
enum Figure {
    /// A JSON pointer into the report.
    At(&'static str),
    /// A field of the curve's row for (tasks, executor).
    Curve(usize, &'static str, &'static str),
    /// A field summed over the curve's rows.
    CurveTotal(&'static str),
}

impl Figure {
    fn read(self, report: &Value) -> Option<f64> {
        match self {
            Self::At(pointer) => report.pointer(pointer)?.as_f64(),
            Self::Curve(tasks, executor, field) => {
                let rows = report["curve"].as_array()?;
                rows.iter().find(|row| row["tasks"] == tasks && row["executor"] == executor)?[field].as_f64()
            }
            Self::CurveTotal(field) => {
                let rows = report["curve"].as_array()?;
                Some(rows.iter().filter_map(|row| row[field].as_f64()).sum())
            }
        }
    }
}

/// What a figure should be.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
    /// Strictly below another figure of the same run, named for the table.
    Below(Figure, &'static str),
    /// At least this share of another figure of the same run, named for the table.
    AtLeastTimes(f64, Figure, &'static str),
}

const PEER: &str = "tokio-cron-scheduler";

const TARGETS: &[(&str, Figure, Bound)] = &[
    ("accuracy lateness p50 (ms)", At("/accuracy/p50_ms"), AtMost(2.0)),
    ("accuracy lateness p99 (ms)", At("/accuracy/p99_ms"), AtMost(10.0)),
    ("accuracy lost", At("/accuracy/lost"), AtMost(0.0)),
    ("accuracy duplicated", At("/accuracy/duplicated"), AtMost(0.0)),
    ("curve plain p99 at 10 tasks (ms)", Curve(10, "plain", "p99_ms"), AtMost(2.0)),
    ("curve plain p99 at 100 tasks (ms)", Curve(100, "plain", "p99_ms"), AtMost(20.0)),
    ("curve plain p99 at 1,000 tasks (ms)", Curve(1000, "plain", "p99_ms"), AtMost(150.0)),
    ("curve sdk p50 at 1,000 tasks (ms)", Curve(1000, "sdk", "p50_ms"), AtMost(2.0)),
    ("curve sdk p99 at 1,000 tasks (ms)", Curve(1000, "sdk", "p99_ms"), AtMost(10.0)),
    ("curve sdk p50 at 1,000 tasks (ms)", Curve(1000, "sdk", "p50_ms"), Below(Curve(1000, PEER, "p50_ms"), PEER)),
    ("curve sdk p99 at 1,000 tasks (ms)", Curve(1000, "sdk", "p99_ms"), Below(Curve(1000, PEER, "p99_ms"), PEER)),
    ("curve early starts", CurveTotal("early_starts"), AtMost(0.0)),
    ("throughput (executions/s)", At("/throughput/executions_per_s"), AtLeast(5000.0)),
    ("throughput / database ceiling", At("/throughput/ratio"), AtLeast(0.7)),
    ("statements per execution", At("/throughput/statements_per_execution"), AtMost(2.0)),
    ("failover first dispatch, max (ms)", At("/failover/first_dispatch_ms_max"), AtMost(1000.0)),
    ("failover duplicated", At("/failover/duplicated"), AtMost(0.0)),
    ("failover lost", At("/failover/lost"), AtMost(0.0)),
    ("scale RSS (MB)", At("/scale/rss_mb"), AtMost(600.0)),
    ("scale idle CPU (% of a core)", At("/scale/idle_cpu_pct"), AtMost(2.0)),
    ("scale start to first fire (s)", At("/scale/start_to_first_fire_s"), AtMost(10.0)),
    ("burst sent twice", At("/burst/sent_twice"), AtMost(0.0)),
    ("burst lost", At("/burst/lost"), AtMost(0.0)),
    (
        "burst last fire after the instant (s)",
        At("/burst/last_after_instant_s"),
        Below(At("/burst/last_target_s"), "tasks / 5,000 per s + 5 s"),
    ),
    (
        "overload goodput in the window (per s)",
        At("/overload/goodput_per_s"),
        AtLeastTimes(0.9, At("/overload/peak_held_per_s"), "peak held"),
    ),
    ("overload fires sent twice", At("/overload/sent_twice"), AtMost(0.0)),
    ("overload heartbeat p99 (ms)", At("/overload/heartbeat_p99_ms"), AtMost(1000.0)),
    ("overload heartbeats failed", At("/overload/heartbeats_failed"), AtMost(0.0)),
    ("overload executor shown offline (samples)", At("/overload/executor_offline_samples"), AtMost(0.0)),
    ("overload steady lateness p99 10-30 s after (ms)", At("/overload/steady_after_p99_ms"), AtMost(1000.0)),
    (
        "overload steady fires received 10-30 s after",
        At("/overload/steady_after_received"),
        AtLeastTimes(1.0, At("/overload/steady_after_slots"), "their slots"),
    ),
    ("overload window fires pending or running 40 s after", At("/overload/window_open"), AtMost(0.0)),
    ("overload scheduler RSS, max of both (MB)", At("/overload/rss_max_mb"), AtMost(600.0)),
    ("overload /health p99 (ms)", At("/overload/health_p99_ms"), AtMost(200.0)),
    ("overload leader epochs seen", At("/overload/leader_epochs"), AtMost(1.0)),
    (
        "ramp goodput after its peak, worst 5 s (per s)",
        At("/ramp/goodput_min_after_peak_per_s"),
        AtLeastTimes(0.9, At("/ramp/goodput_peak_held_per_s"), "peak held"),
    ),
    ("ramp fires sent twice", At("/ramp/sent_twice"), AtMost(0.0)),
    ("ramp leader epochs seen", At("/ramp/leader_epochs"), AtMost(1.0)),
    ("ramp executor shown offline (samples)", At("/ramp/executor_offline_samples"), AtMost(0.0)),
    ("ramp heartbeat p99 (ms)", At("/ramp/heartbeat_p99_ms"), AtMost(1000.0)),
    ("ramp heartbeats failed", At("/ramp/heartbeats_failed"), AtMost(0.0)),
    ("ramp /health p99 (ms)", At("/ramp/health_p99_ms"), AtMost(200.0)),
    (
        "ramp slots with an execution row",
        At("/ramp/window_slots_with_row"),
        AtLeastTimes(1.0, At("/ramp/window_slots"), "its slots"),
    ),
    ("ramp fires pending or running 40 s after", At("/ramp/window_open"), AtMost(0.0)),
    ("ramp lateness p99 10-20 s after, over unloaded (ms)", At("/ramp/after_over_unloaded_p99_ms"), AtMost(100.0)),
];

/// One checked target: the metric, our figure, the target as text, and whether it is met.
#[derive(Debug, PartialEq)]
pub(crate) struct Check {
    pub(crate) metric: &'static str,
    pub(crate) ours: f64,
    pub(crate) target: String,
    pub(crate) met: bool,
}

/// The targets whose figure the report has (a run of some scenarios has only theirs).
pub(crate) fn check(report: &Value) -> Vec<Check> {
    TARGETS
        .iter()
        .filter_map(|&(metric, figure, bound)| {
            let ours = figure.read(report)?;
            let (target, met) = match bound {
                AtMost(limit) => (format!("≤ {limit}"), ours <= limit),
                AtLeast(limit) => (format!("≥ {limit}"), ours >= limit),
                Below(other, name) => {
                    let theirs = other.read(report)?;
                    (format!("< {name} ({theirs})"), ours < theirs)
                }
                AtLeastTimes(share, other, name) => {
                    let theirs = other.read(report)?;
                    (format!("≥ {share} × {name} ({theirs})"), ours >= share * theirs)
                }
            };
            Some(Check { metric, ours, target, met })
        })
        .collect()
}

pub(crate) fn print_table(report: &Value) {
    println!("\n| target | ours | wanted | met |\n|---|---|---|---|");
    for check in check(report) {
        println!("| {} | {} | {} | {} |", check.metric, check.ours, check.target, if check.met { "yes" } else { "no" });
    }
}
