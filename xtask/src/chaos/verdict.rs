//! What a scenario measured and whether it passed: one row of the table and one entry of the report.

use serde::Serialize;
use serde_json::Value;

/// The figures of one scenario run; it passed when `failures` is empty.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Outcome {
    pub(crate) scenario: String,
    pub(crate) backend: &'static str,
    pub(crate) seconds: f64,
    /// Every every-second task times every second of the measured window.
    pub(crate) expected: u64,
    /// Distinct (task, scheduled_at) the executor received in the window.
    pub(crate) received: u64,
    /// Expected slots neither received nor recorded as missed (negative if more were accounted for than expected).
    pub(crate) lost: i64,
    /// Receipts beyond the first of the same (task, scheduled_at).
    pub(crate) duplicated: u64,
    /// Executions recorded `missed`, plus the slots folded into catch-up fires (`missed_slots`).
    pub(crate) missed_recorded: u64,
    pub(crate) triggers_acked: u64,
    pub(crate) triggers_refused: u64,
    pub(crate) triggers_unanswered: u64,
    /// Triggers answered 2xx whose execution does not exist afterwards.
    pub(crate) acked_lost: u64,
    /// From the end of the fault to the first fire received of a slot after it.
    pub(crate) recovery_ms: Option<i64>,
    /// From the freeze or kill of the leader to the first fire received of a slot after it.
    pub(crate) failover_ms: Option<i64>,
    /// Figures of this scenario only.
    pub(crate) details: serde_json::Map<String, Value>,
    pub(crate) failures: Vec<String>,
    pub(crate) passed: bool,
}

impl Outcome {
    pub(crate) fn new(scenario: &str, backend: &'static str) -> Self {
        Self { scenario: scenario.to_owned(), backend, ..Self::default() }
    }

    /// Records `reason` as a failure unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, reason: impl Into<String>) {
        if !ok {
            self.failures.push(reason.into());
        }
    }

    pub(crate) fn note(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(key.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
    }

    /// The checks most scenarios share: nothing lost, nothing run twice, no acknowledged trigger lost.
    pub(crate) fn check_accounting(&mut self) {
        self.check(self.lost <= 0, format!("{} slots lost", self.lost));
        self.check(self.duplicated == 0, format!("{} fires duplicated", self.duplicated));
        self.check(self.acked_lost == 0, format!("{} acknowledged triggers lost", self.acked_lost));
    }

    /// Fails unless the recovery was measured and took at most `limit_ms`.
    pub(crate) fn check_recovery(&mut self, limit_ms: i64) {
        match self.recovery_ms {
            Some(ms) => self.check(ms <= limit_ms, format!("recovery {ms} ms > {limit_ms} ms")),
            None => self.check(false, "no fire after the fault"),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.passed = self.failures.is_empty();
    }
}

fn cell(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// The outcomes as plain aligned text, one row each.
pub(crate) fn table(outcomes: &[Outcome]) -> String {
    let header = [
        "scenario",
        "backend",
        "s",
        "expected",
        "received",
        "lost",
        "dup",
        "missed",
        "acked",
        "ack lost",
        "recov ms",
        "failover ms",
        "verdict",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|cell| (*cell).to_owned()).collect()];
    for outcome in outcomes {
        rows.push(vec![
            outcome.scenario.clone(),
            outcome.backend.to_owned(),
            format!("{:.0}", outcome.seconds),
            outcome.expected.to_string(),
            outcome.received.to_string(),
            outcome.lost.to_string(),
            outcome.duplicated.to_string(),
            outcome.missed_recorded.to_string(),
            outcome.triggers_acked.to_string(),
            outcome.acked_lost.to_string(),
            cell(outcome.recovery_ms),
            cell(outcome.failover_ms),
            if outcome.passed { "pass".to_owned() } else { "FAIL".to_owned() },
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    for outcome in outcomes.iter().filter(|outcome| !outcome.passed) {
        text.push_str(&format!("\n{} ({}) failed:\n", outcome.scenario, outcome.backend));
        for reason in &outcome.failures {
            text.push_str(&format!("  - {reason}\n"));
        }
    }
    text
}
