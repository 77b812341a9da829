//! [`ApiServer`]: the router ready to serve on a bound listener, over HTTP or HTTPS, so that the binary runs the
//! API without naming axum.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use jobs_model::tls::{ReloadableCert, server_config};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use jobs_engine::Engine;

use crate::config::ServerTlsConfig;
use crate::{AuthConfig, ServerConfig, router};

/// The whole API (see [`router`]), built once and served by [`ApiServer::serve`].
#[derive(Debug)]
pub struct ApiServer {
    router: Router,
    tls: Option<Tls>,
}

/// `server.tls`, loaded: the files to read again on SIGHUP and the certificate being served.
#[derive(Debug)]
struct Tls {
    files: ServerTlsConfig,
    cert: Arc<ReloadableCert>,
}

impl ApiServer {
    /// Builds the router and, with `server.tls`, reads the certificate: an unreadable or mismatched file is an
    /// error naming it.
    pub fn new(engine: Arc<Engine>, config: &ServerConfig, auth: &AuthConfig) -> Result<Self, String> {
        let tls = match config.tls.enabled() {
            true => Some(Tls { files: config.tls.clone(), cert: Arc::new(ReloadableCert::new(config.tls.load()?)) }),
            false => None,
        };
        Ok(Self { router: router(engine, config, auth), tls })
    }

    /// Serves on `listener` until `shutdown` completes, then lets the requests in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(tls) = self.tls else {
            return axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await;
        };
        let config = server_config(tls.cert.clone()).map_err(std::io::Error::other)?;
        let listener = tls_listener::TlsListener::new(tokio_rustls::TlsAcceptor::from(Arc::new(config)), listener);
        // Watched before the first connection is served, so that a SIGHUP never finds the process without a handler.
        let reloads = tokio::spawn(reload_on_hangup(tls, hangups()));
        let served = axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await;
        reloads.abort();
        served
    }
}

/// The process's SIGHUPs from now on; `None` (logged) when they cannot be watched.
fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup())
        .inspect_err(|error| tracing::warn!(%error, "cannot watch SIGHUP; server.tls is read only at start"))
        .ok()
}

/// Reads `server.tls` again on every SIGHUP; a bad file keeps the certificate being served, and says why.
async fn reload_on_hangup(tls: Tls, hangups: Option<Signal>) {
    let Some(mut hangups) = hangups else { return };
    while hangups.recv().await.is_some() {
        match tls.files.load() {
            Ok(key) => {
                tls.cert.replace(key);
                tracing::info!(cert = %tls.files.cert, "server.tls reloaded: new connections get the new certificate");
            }
            Err(error) => tracing::error!(%error, "cannot reload server.tls; still serving the previous certificate"),
        }
    }
}
