//! [`ApiServer`]: the router ready to serve on a bound listener, so that the binary runs the API without naming
//! axum.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use jobs_engine::Engine;

use crate::{AuthConfig, ServerConfig, router};

/// The whole API (see [`router`]), built once and served by [`ApiServer::serve`].
#[derive(Debug)]
pub struct ApiServer {
    router: Router,
}

impl ApiServer {
    pub fn new(engine: Arc<Engine>, config: &ServerConfig, auth: &AuthConfig) -> Self {
        Self { router: router(engine, config, auth) }
    }

    /// Serves on `listener` until `shutdown` completes, then lets the requests in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
