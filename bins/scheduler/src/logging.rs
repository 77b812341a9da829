//! Logging to stdout and to daily log files (`logs/scheduler.YYYY-MM-DD.log` by default), as text or JSON.

use std::path::Path;

use anyhow::Context;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::LogConfig;

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber; keep the guard alive so that the file writer flushes.
pub fn init_logging(config: &LogConfig) -> anyhow::Result<Option<WorkerGuard>> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .with_context(|| format!("log.level: `{}` is not a valid level or filter", config.level))?;
    let json = config.format == "json";
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

/// The daily files `log.file` names: `logs/scheduler.log` means `logs/scheduler.YYYY-MM-DD.log` (the UTC date),
/// a new one each day at midnight UTC, the oldest deleted beyond `log.max_files`.
pub(crate) fn file_appender(config: &LogConfig) -> anyhow::Result<RollingFileAppender> {
    let path = Path::new(&config.file);
    let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .with_context(|| format!("log.file: `{}` names no file", config.file))?;
    let mut builder = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .max_log_files(config.max_files);
    if let Some(suffix) = path.extension().and_then(|suffix| suffix.to_str()) {
        builder = builder.filename_suffix(suffix);
    }
    std::fs::create_dir_all(directory).with_context(|| format!("log.file: cannot create {}", directory.display()))?;
    builder.build(directory).with_context(|| format!("log.file: cannot open a log file in {}", directory.display()))
}

#[cfg(test)]
mod tests;
