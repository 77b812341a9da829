//! [`ApiServer`]: the router ready to serve on a bound listener, over HTTP or HTTPS, so that the binary runs the
//! API without naming axum.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use jobs_model::tls::{ReloadableCert, server_config};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use jobs_engine::Engine;

use crate::config::ServerTlsConfig;
use crate::{AuthConfig, ServerConfig, router};

/// The whole API (see [`router`]), built once and served by [`ApiServer::serve`].
#[derive(Debug)]
pub struct ApiServer {
    router: Router,
    tls: Option<(TlsReloader, Arc<rustls::ServerConfig>)>,
}

/// Puts the `server.tls` files in service again (a renewed certificate): new connections get it, open ones keep
/// theirs.
#[derive(Debug, Clone)]
pub struct TlsReloader {
    files: ServerTlsConfig,
    cert: Arc<ReloadableCert>,
}

impl TlsReloader {
    /// Reads both files again; on an error (naming the key and the file) the previous certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        self.cert.replace(self.files.load()?);
        Ok(())
    }

    /// The certificate file, for log lines.
    pub fn cert_file(&self) -> &str {
        &self.files.cert
    }
}

impl ApiServer {
    /// Builds the router and, with `server.tls`, reads the certificate: an unreadable or mismatched file is an
    /// error naming it.
    pub fn new(engine: Arc<Engine>, config: &ServerConfig, auth: &AuthConfig) -> Result<Self, String> {
        let tls = match config.tls.enabled() {
            true => {
                let cert = Arc::new(ReloadableCert::new(config.tls.load()?));
                let settings = server_config(cert.clone()).map_err(|error| format!("server.tls: {error}"))?;
                Some((TlsReloader { files: config.tls.clone(), cert }, Arc::new(settings)))
            }
            false => None,
        };
        Ok(Self { router: router(engine, config, auth), tls })
    }

    /// With `server.tls`, what reloads its files.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.as_ref().map(|(reloader, _)| reloader.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then lets the requests in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match self.tls {
            None => axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await,
            Some((_, settings)) => {
                let listener = HttpsListener(tls_listener::TlsListener::new(TlsAcceptor::from(settings), listener));
                axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await
            }
        }
    }
}

/// A TCP listener whose connections are TLS, handshaken concurrently, each within a deadline. A failed handshake
/// (a plain-HTTP client, a scanner, a distrusted certificate) is the client's problem: a debug line, not an error.
struct HttpsListener(tls_listener::TlsListener<TcpListener, TlsAcceptor>);

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                Err(tls_listener::Error::ListenerError(error)) => {
                    if !matches!(error.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) {
                        // Out of file descriptors, say: wait for connections to close rather than spin.
                        tracing::error!(%error, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                Err(tls_listener::Error::TlsAcceptError { error, peer_addr, .. }) => {
                    tracing::debug!(%peer_addr, %error, "TLS handshake failed");
                }
                Err(tls_listener::Error::HandshakeTimeout { peer_addr, .. }) => {
                    tracing::debug!(%peer_addr, "TLS handshake timed out");
                }
                Err(error) => tracing::debug!(%error, "TLS handshake failed"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.listener().local_addr()
    }
}
