//! Logging to stdout and to the log file (`logs/scheduler.log` by default), as text or JSON.

use std::path::Path;

use anyhow::Context;
use tracing_appender::non_blocking::WorkerGuard;
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
        let path = Path::new(&config.file);
        let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().with_context(|| format!("log.file: `{}` names no file", config.file))?;
        std::fs::create_dir_all(directory)
            .with_context(|| format!("log.file: cannot create {}", directory.display()))?;
        let appender = tracing_appender::rolling::never(directory, name);
        let (writer, file_guard) = tracing_appender::non_blocking(appender);
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
