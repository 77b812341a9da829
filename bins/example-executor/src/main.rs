//! The example executor: the seed's `daily_report` and a few demo handlers on the SDK.
//!
//! It is configured by `JOBS_EXECUTOR_PORT`, `JOBS_SCHEDULER_URL` (comma-separated), `JOBS_EXECUTOR_NAME`,
//! `JOBS_EXECUTOR_INSTANCE_ID`, `JOBS_EXECUTOR_BASE_URL`, `JOBS_EXECUTOR_SECRET`, `JOBS_EXECUTOR_API_TOKEN`, and
//! the TLS files (PEM): `JOBS_EXECUTOR_TLS_CERT` + `JOBS_EXECUTOR_TLS_KEY` serve HTTPS (read again on SIGHUP),
//! `JOBS_EXECUTOR_TLS_CA_FILE` trusts a private CA for calls to the scheduler, and `JOBS_EXECUTOR_TLS_CLIENT_CERT` +
//! `JOBS_EXECUTOR_TLS_CLIENT_KEY` present a client certificate to it. Everything else keeps the SDK's defaults,
//! early delivery included (fires may arrive up to a second before their instant, and handlers start at the
//! instant by this machine's clock).

mod handlers;

use anyhow::Context;
use jobs_executor::{DEFAULT_SCHEDULER_URL, Executor};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // From the start, so that a SIGHUP (a certificate renewed) never meets the default action, which ends the process.
    let mut hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot listen for SIGHUP")?;

    let port: u16 = env_or("JOBS_EXECUTOR_PORT", "9090").parse().context("JOBS_EXECUTOR_PORT is not a port number")?;
    let scheduler_urls = env_or("JOBS_SCHEDULER_URL", DEFAULT_SCHEDULER_URL);
    let scheduler_urls = scheduler_urls.split(',').map(str::trim).filter(|url| !url.is_empty());
    let mut builder = Executor::builder(env_or("JOBS_EXECUTOR_NAME", "data-processor")).scheduler_urls(scheduler_urls);
    if let Ok(instance_id) = std::env::var("JOBS_EXECUTOR_INSTANCE_ID") {
        builder = builder.instance_id(instance_id);
    }
    if let Ok(base_url) = std::env::var("JOBS_EXECUTOR_BASE_URL") {
        builder = builder.base_url(base_url);
    }
    // The scheduler's `auth.executor_secret` and one of its `auth.api_tokens`, when it has them.
    if let Ok(secret) = std::env::var("JOBS_EXECUTOR_SECRET") {
        builder = builder.secret(secret);
    }
    if let Ok(token) = std::env::var("JOBS_EXECUTOR_API_TOKEN") {
        builder = builder.api_token(token);
    }
    let listener_tls = pair("JOBS_EXECUTOR_TLS_CERT", "JOBS_EXECUTOR_TLS_KEY")?;
    if let Some((cert, key)) = listener_tls.clone() {
        builder = builder.tls_listener(cert, key);
    }
    if let Some(ca_file) = env("JOBS_EXECUTOR_TLS_CA_FILE") {
        builder = builder.tls_ca_file(ca_file);
    }
    if let Some((cert, key)) = pair("JOBS_EXECUTOR_TLS_CLIENT_CERT", "JOBS_EXECUTOR_TLS_CLIENT_KEY")? {
        builder = builder.tls_client_cert(cert, key);
    }
    let executor = handlers::add_to(builder).build().context("invalid executor configuration")?;

    let listener =
        TcpListener::bind(("0.0.0.0", port)).await.with_context(|| format!("cannot listen on 0.0.0.0:{port}"))?;
    let handle = executor.start(listener).await.context("the executor failed")?;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = hangups.recv() => match (&listener_tls, handle.reload_tls()) {
                (None, _) => tracing::info!("SIGHUP: nothing to reload (JOBS_EXECUTOR_TLS_CERT is not set)"),
                (Some(_), Ok(())) => tracing::info!("SIGHUP: the TLS certificate was read again"),
                (Some(_), Err(error)) => {
                    tracing::error!(%error, "SIGHUP: cannot reload TLS; still serving the previous certificate");
                }
            },
        }
    }
    handle.shutdown().await.context("the executor failed")
}

/// A variable's value; unset and empty are the same (compose files often write `VAR: ""`).
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|value| !value.trim().is_empty())
}

/// Two variables that go together: both set, or neither.
fn pair(first: &str, second: &str) -> anyhow::Result<Option<(String, String)>> {
    match (env(first), env(second)) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => anyhow::bail!("{first} and {second} go together: set both or neither"),
    }
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM, only Ctrl-C stops the executor");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
