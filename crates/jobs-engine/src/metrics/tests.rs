//! The exposition: every family present from the start, and counters that move.

use jobs_model::{ExecutionStatus, TriggerType};
use prometheus_client::registry::Registry;

use crate::DispatchError;
use crate::metrics::Metrics;

/// Whether the rendered text has exactly the sample `line`.
#[track_caller]
fn check(metrics: &Metrics, lines: &[&str]) {
    let text = metrics.render(&Registry::default());
    for line in lines {
        assert!(text.lines().any(|got| got == *line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn families_exist_at_zero_and_counters_move() {
    let metrics = Metrics::default();
    check(
        &metrics,
        &[
            "# TYPE jobs_fires_planned_total counter",
            "jobs_fires_planned_total{trigger=\"cron\"} 0",
            "jobs_dispatches_total{outcome=\"no_executor\"} 0",
            "jobs_executions_finished_total{status=\"missed\"} 0",
            "# TYPE jobs_dispatch_lateness_seconds histogram",
            "jobs_dispatch_lateness_seconds_bucket{le=\"0.001\"} 0",
            "jobs_dispatch_lateness_seconds_bucket{le=\"60\"} 0",
            "jobs_dispatch_lateness_seconds_bucket{le=\"+Inf\"} 0",
            "jobs_database_errors_total 0",
            "jobs_alerts_total{result=\"dropped\"} 0",
        ],
    );
    metrics.fired(TriggerType::Cron, 3);
    metrics.refused(&DispatchError::Busy(429));
    metrics.refused(&DispatchError::Unreachable("refused".to_owned()));
    metrics.finished(ExecutionStatus::Timeout);
    metrics.database_error();
    check(
        &metrics,
        &[
            "jobs_fires_planned_total{trigger=\"cron\"} 3",
            "jobs_dispatches_total{outcome=\"busy\"} 1",
            "jobs_dispatches_total{outcome=\"unreachable\"} 1",
            "jobs_executions_finished_total{status=\"timeout\"} 1",
            "jobs_database_errors_total 1",
        ],
    );
}
