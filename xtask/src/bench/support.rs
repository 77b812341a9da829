//! What the benchmark scenarios share: options, the release build, lateness figures and CPU time; processes,
//! HTTP and the recording executor are in `crate::procs`.

use std::process::Command;

use anyhow::Context;

/// Command-line options of the bench.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) kills: usize,
    /// The MySQL server (no database): each scenario creates its own database on it.
    pub(crate) server_url: String,
    /// How many tasks `burst` puts at its instant, in place of its default.
    pub(crate) burst_tasks: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self { quick: false, kills: 10, server_url: "mysql://root@127.0.0.1:3306".to_owned(), burst_tasks: None }
    }
}

/// Builds the release binaries the scenarios run.
pub(crate) fn build_release() -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO")).args(["build", "--release", "-p", "scheduler"]).status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}

/// Lateness figures in milliseconds (negative values, a clock read before the slot, count as 0).
pub(crate) fn lateness_summary(latenesses_us: impl IntoIterator<Item = i64>) -> anyhow::Result<(f64, f64, f64)> {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    for value in latenesses_us {
        histogram.record(value.max(0) as u64)?;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Ok((ms(histogram.value_at_quantile(0.5)), ms(histogram.value_at_quantile(0.99)), ms(histogram.max())))
}

/// User plus system CPU time of a process, in clock ticks (see [`ticks_per_second`]).
pub(crate) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("no process {pid}"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 where that cannot be asked).
pub(crate) fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
