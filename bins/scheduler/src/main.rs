//! `scheduler`: runs one scheduler instance. `scheduler [--config FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use scheduler::{Application, Config, init_logging};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var_os("JOBS_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                path = Some(args.next().ok_or_else(|| anyhow::anyhow!("--config needs a file"))?.into())
            }
            _ => match arg.strip_prefix("--config=") {
                Some(value) => path = Some(value.into()),
                None => anyhow::bail!("unknown argument `{arg}` (usage: scheduler [--config FILE])"),
            },
        }
    }
    let config = Config::load(path.as_deref())?;
    let _guard = init_logging(&config.log)?;
    Application::build(config).await?.run_until_stopped().await
}
