//! [`HttpsListener`]: the executor's listener with `tls_listener` on.

use std::io::ErrorKind;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A TCP listener whose connections are TLS, handshaken concurrently, each within a deadline. A failed handshake
/// (a plain-HTTP client, a scanner, a distrusted certificate) is the client's problem: a debug line, not an error.
pub(crate) struct HttpsListener(pub(crate) tls_listener::TlsListener<TcpListener, TlsAcceptor>);

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
