//! Logging to stdout and to the log file (`logs/scheduler.log` by default), as text or JSON; the file rolls daily
//! to `scheduler.log.1`, `scheduler.log.2`, … (newest first), keeping `log.max_files` older files.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Local, NaiveDate, Utc};
use rolling_file::{RollingCondition, RollingFileAppender};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::{LogConfig, LogFormat};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber; keep the guard alive so that the file writer flushes.
pub fn init_logging(config: &LogConfig) -> anyhow::Result<Option<WorkerGuard>> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .with_context(|| format!("log.level: `{}` is not a valid level or filter", config.level))?;
    let json = config.format == LogFormat::Json;
    // Span fields are formatted once and shared by both layers, so colours would leak into the file.
    let ansi = config.file.is_empty() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let stdout = fmt::layer().with_ansi(ansi);
    let mut layers: Vec<BoxedLayer> = vec![if json { stdout.json().boxed() } else { stdout.boxed() }];
    let mut guard = None;
    if !config.file.is_empty() {
        let (writer, file_guard) = tracing_appender::non_blocking(file_appender(config)?);
        guard = Some(file_guard);
        let layer = fmt::layer().with_writer(writer).with_ansi(false);
        layers.push(if json { layer.json().boxed() } else { layer.boxed() });
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))?;
    Ok(guard)
}

/// The file `log.file` names, written in place and rolled at the first line of each new UTC day: the current file
/// becomes `{file}.1`, `{file}.1` becomes `{file}.2`, and the file beyond `log.max_files` is deleted.
pub(crate) fn file_appender(config: &LogConfig) -> anyhow::Result<RollingFileAppender<DailyUtc>> {
    let path = Path::new(&config.file);
    if path.file_name().is_none() {
        anyhow::bail!("log.file: `{}` names no file", config.file);
    }
    let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).with_context(|| format!("log.file: cannot create {}", directory.display()))?;
    // A file last written on an earlier day rolls at the first line, even across a restart.
    let written = std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let condition = DailyUtc { day: written.map(|at| DateTime::<Utc>::from(at).date_naive()) };
    RollingFileAppender::new(path, condition, config.max_files)
        .with_context(|| format!("log.file: cannot open {}", path.display()))
}

/// Rolls when the UTC date of a line differs from the previous line's (or the file's last write).
#[derive(Debug)]
pub(crate) struct DailyUtc {
    day: Option<NaiveDate>,
}

impl RollingCondition for DailyUtc {
    fn should_rollover(&mut self, now: &DateTime<Local>, _current_filesize: u64) -> bool {
        let today = now.with_timezone(&Utc).date_naive();
        let roll = self.day.is_some_and(|day| day != today);
        self.day = Some(today);
        roll
    }
}

#[cfg(test)]
mod tests;
