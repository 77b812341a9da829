//! [`Executor`]: serve the executor protocol, register, heartbeat, and shut down gracefully.

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use jobs_model::protocol::{DeclaredTask, RegisterRequest};
use jobs_model::{ErrorKind, ExecutorId};

use crate::builder::{ExecutorBuilder, ListenerTls};
use crate::client::SchedulerClient;
use crate::error::{Error, Result};
use crate::executions::Executions;
use crate::handler::Handler;
use tokio_rustls::TlsAcceptor;

use crate::https::HttpsListener;
use crate::{registration, server};

/// How long handlers interrupted at shutdown get to deliver their failure callbacks.
const INTERRUPTED_CALLBACK_GRACE: Duration = Duration::from_secs(5);

/// An executor, built and checked, not yet serving; see the [crate documentation](crate).
#[derive(Debug)]
pub struct Executor {
    pub(crate) name: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) weight: Option<u32>,
    pub(crate) tags: Vec<String>,
    pub(crate) tasks: Vec<DeclaredTask>,
    pub(crate) handlers: BTreeMap<String, Handler>,
    pub(crate) client: SchedulerClient,
    pub(crate) max_concurrency: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) early_delivery: Duration,
    /// HTTPS on the listener ([`ExecutorBuilder::tls_listener`]).
    pub(crate) listener_tls: Option<ListenerTls>,
}

/// What the server, the runner and the registration loop share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) instance_id: String,
    pub(crate) handlers: BTreeMap<String, Handler>,
    pub(crate) client: Arc<SchedulerClient>,
    pub(crate) executions: Executions,
    /// Early delivery is on: a fire that arrives before its instant is held until then.
    pub(crate) early_delivery: bool,
    /// The id the scheduler gave this instance, once registered.
    pub(crate) executor_id: watch::Sender<Option<ExecutorId>>,
}

impl Executor {
    /// Starts the options of an executor in the group (service) `name`.
    pub fn builder(name: impl Into<String>) -> ExecutorBuilder {
        ExecutorBuilder::new(name)
    }

    /// The tasks the registration declares: the declared ones, then the other handlers' (without schedule).
    pub fn tasks(&self) -> &[DeclaredTask] {
        &self.tasks
    }

    /// Serves on `listener` and registers until `shutdown` completes, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// See [`start`](Self::start) and [`ExecutorHandle::shutdown`].
    pub async fn run_until(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<()> {
        let handle = self.start(listener).await?;
        shutdown.await;
        handle.shutdown().await
    }

    /// Serves on `listener` in the background and registers with the scheduler (retrying until one answers).
    ///
    /// Dropping the returned handle stops the server and the heartbeats without deregistering;
    /// call [`ExecutorHandle::shutdown`] instead.
    ///
    /// # Errors
    ///
    /// [`Error::LocalAddr`] if the listener has no local address.
    pub async fn start(self, listener: TcpListener) -> Result<ExecutorHandle> {
        let local_addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let port = local_addr.port();
        let instance_id = self.instance_id.unwrap_or_else(|| format!("{}-{port}", hostname()));
        let scheme = if self.listener_tls.is_some() { "https" } else { "http" };
        let base_url = self.base_url.unwrap_or_else(|| format!("{scheme}://127.0.0.1:{port}"));
        // At most `MAX_EARLY_DELIVERY` after `build`, so it fits.
        let early_delivery_ms = u64::try_from(self.early_delivery.as_millis()).unwrap_or(u64::MAX);
        let request = RegisterRequest {
            name: self.name,
            instance_id: instance_id.clone(),
            health_check_url: Some(format!("{base_url}/health")),
            base_url: base_url.clone(),
            weight: self.weight,
            tags: self.tags,
            metadata: Default::default(),
            tasks: self.tasks,
            early_delivery_ms: (early_delivery_ms > 0).then_some(early_delivery_ms),
            // The scheduler then holds what this instance has no slot for, rather than sending it to be refused.
            max_concurrency: Some(u32::try_from(self.max_concurrency).unwrap_or(u32::MAX).min(100_000)),
        };
        let shared = Arc::new(Shared {
            instance_id,
            handlers: self.handlers,
            client: Arc::new(self.client),
            executions: Executions::new(self.max_concurrency),
            early_delivery: early_delivery_ms > 0,
            executor_id: watch::Sender::new(None),
        });

        let (stop_server, server_stopped) = oneshot::channel::<()>();
        let router = server::router(shared.clone());
        // A dropped handle stops the server as well.
        let stopped = async move {
            let _ = server_stopped.await;
        };
        let server = match &self.listener_tls {
            None => tokio::spawn(axum::serve(listener, router).with_graceful_shutdown(stopped).into_future()),
            Some(tls) => {
                let listener =
                    HttpsListener(tls_listener::TlsListener::new(TlsAcceptor::from(tls.settings.clone()), listener));
                tokio::spawn(axum::serve(listener, router).with_graceful_shutdown(stopped).into_future())
            }
        };
        tracing::info!(%local_addr, base_url = %base_url, instance_id = %shared.instance_id, "executor listening");

        let (stop_registration, registration_stopped) = watch::channel(false);
        let registration = tokio::spawn(registration::run(shared.clone(), request, registration_stopped));

        Ok(ExecutorHandle {
            shared,
            local_addr,
            base_url,
            shutdown_timeout: self.shutdown_timeout,
            stop_registration,
            registration,
            stop_server,
            server,
            listener_tls: self.listener_tls,
        })
    }
}

/// A running executor: its address, its registration, and the way to stop it.
#[derive(Debug)]
pub struct ExecutorHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    base_url: String,
    shutdown_timeout: Duration,
    stop_registration: watch::Sender<bool>,
    registration: JoinHandle<()>,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    listener_tls: Option<ListenerTls>,
}

impl ExecutorHandle {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The url advertised to the scheduler.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Reads the [`tls_listener`](crate::ExecutorBuilder::tls_listener) files again (a renewed certificate, on
    /// SIGHUP say): new connections get the new certificate, open ones keep theirs. Without `tls_listener`,
    /// nothing happens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the file that cannot be read or used; the previous certificate stays.
    pub fn reload_tls(&self) -> Result<()> {
        self.listener_tls.as_ref().map_or(Ok(()), ListenerTls::reload)
    }

    /// This instance's id within its group.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }

    /// The id the scheduler gave this instance; `None` until registered.
    pub fn executor_id(&self) -> Option<ExecutorId> {
        *self.shared.executor_id.borrow()
    }

    /// Waits until the instance is registered and returns its id.
    ///
    /// Waits as long as no scheduler answers: wrap it in a timeout.
    pub async fn registered(&self) -> ExecutorId {
        let mut executor_id = self.shared.executor_id.subscribe();
        loop {
            if let Some(id) = *executor_id.borrow_and_update() {
                return id;
            }
            // The sender lives in `self.shared`, so the channel stays open while we wait.
            if executor_id.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops taking work (503), drops the executions held for a later instant (reporting them failed, their
    /// handlers never run), waits up to `shutdown_timeout` for running handlers and their callbacks (interrupting
    /// and reporting failed those that outlive it), stops heartbeating, deregisters, and stops the server.
    ///
    /// A failed deregistration is logged, not returned: the scheduler's health checks catch up.
    ///
    /// # Errors
    ///
    /// [`Error::Serve`] or [`Error::TaskPanicked`] if the server or the registration loop failed.
    pub async fn shutdown(self) -> Result<()> {
        let executions = &self.shared.executions;
        executions.begin_shutdown();
        tracing::info!(instance_id = %self.shared.instance_id, "shutting down: waiting for running executions");
        if tokio::time::timeout(self.shutdown_timeout, executions.wait_idle()).await.is_err() {
            let running = executions.ids();
            tracing::warn!(?running, timeout = ?self.shutdown_timeout, "executions still running or reporting, interrupting them");
            executions.interrupt_all();
            if tokio::time::timeout(INTERRUPTED_CALLBACK_GRACE, executions.wait_idle()).await.is_err() {
                tracing::warn!(running = ?executions.ids(), "callbacks of interrupted executions not delivered");
            }
        }

        self.stop_registration.send_replace(true);
        let registration = self.registration.await.map_err(|_| Error::TaskPanicked { task: "registration" });
        let executor_id = *self.shared.executor_id.borrow();
        if let Some(executor_id) = executor_id {
            match self.shared.client.deregister(executor_id).await {
                Ok(()) => tracing::info!(%executor_id, "deregistered"),
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    tracing::info!(%executor_id, "already unknown to the scheduler");
                }
                Err(error) => tracing::warn!(%executor_id, error = %error, "deregistration failed"),
            }
        }

        // The server may already be gone, then there is nothing to stop.
        let _ = self.stop_server.send(());
        let served = match self.server.await {
            Ok(served) => served.map_err(Error::Serve),
            Err(_) => Err(Error::TaskPanicked { task: "server" }),
        };
        registration.and(served)
    }
}

/// The host name: `$HOSTNAME`, else `/etc/hostname`, else `localhost`.
fn hostname() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    // A read of a tiny file once at start; not worth `spawn_blocking`.
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .or_else(from_file)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
