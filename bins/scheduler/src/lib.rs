//! The scheduler binary's library: configuration and [`Application`], which wires
//! config → storage → election → engine + API.

mod config;
mod logging;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use jobs_api::{ApiServer, TlsReloader};
use jobs_balance::Manager;
use jobs_election::{ElectionConfig, LeaderElection, Lease, Role};
use jobs_engine::{Engine, EngineParts, HttpExecutorClient};
use jobs_registry::Registry;
use jobs_storage::{SessionTag, Store};

pub use crate::config::{Config, LogConfig, LogFormat, TlsConfig};
pub use crate::logging::init_logging;

/// A built scheduler instance, bound to its port and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    store: Store,
    engine: Arc<Engine>,
    election: Arc<dyn LeaderElection>,
    role: watch::Sender<Role>,
    api: ApiServer,
    hangups: Hangups,
}

impl Application {
    /// Checks the config (reading its TLS files), connects to the database, migrates it, binds the port and
    /// builds every part.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // From here on SIGHUP reloads `server.tls` (or is ignored), instead of ending the process.
        let hangups = Hangups::watch();
        config.validate().map_err(|error| anyhow::anyhow!("invalid config: {error}"))?;
        let tls = config.tls.client_config().map_err(|error| anyhow::anyhow!("invalid config: {error}"))?;
        let store = Store::connect(&config.database).await?;
        store.migrate().await.with_context(|| format!("cannot migrate the database at {}", store.url_redacted()))?;
        let address = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(&address).await.with_context(|| format!("cannot listen on {address}"))?;
        let port = listener.local_addr()?.port();
        let instance_id = match config.scheduler.instance_id.as_str() {
            "" => format!("{}-{port}", host_name()),
            id => id.to_owned(),
        };
        // Tagged, so that a leader taking over from this instance can end its sessions if it freezes.
        let store = store.tagged(&config.database, SessionTag::new(&instance_id)).await.with_context(|| {
            format!(
                "cannot reconnect to the database at {}",
                config.database.resolved_url().map(|url| jobs_storage::redact_url(&url)).unwrap_or_default()
            )
        })?;
        let lock_key = match config.scheduler.lock_key.as_str() {
            "" => format!("jobs_leader_{}", database_name(&config.database.resolved_url()?)),
            key => key.to_owned(),
        };
        let election_config = ElectionConfig {
            instance_id: instance_id.clone(),
            lock_key: lock_key.clone(),
            lock_timeout: config.scheduler.lock_timeout,
            heartbeat_interval: config.scheduler.heartbeat_interval,
        };
        let lease = Lease::default();
        let database_url = config.database.resolved_url()?;
        let election = jobs_election::for_store(&store, &database_url, election_config, lease.clone());
        let (role, role_receiver) = watch::channel(Role::Follower);
        let registry = Arc::new(Registry::new(store.clone(), config.executors.clone()));
        let client = HttpExecutorClient::new(
            config.scheduler.dispatch_timeout.get(),
            config.auth.executor_secret.clone(),
            Some(&tls),
        )
        .context("cannot build the HTTP client for executors")?;
        let engine = Engine::new(EngineParts {
            store: store.clone(),
            registry,
            strategies: Arc::new(Manager::default()),
            client: Arc::new(client),
            config: config.scheduler.clone(),
            instance_id,
            lock_key,
            advertised_url: config.server.advertised_url(port),
            role: role_receiver,
            lease,
            health_check: config.health_check.clone(),
            retention: config.retention.clone(),
            alerts: config.alerts.clone(),
            executor_secret: config.auth.executor_secret.clone(),
            clock: Arc::new(jobs_engine::SystemClock),
            tls: Some(tls),
        });
        let api = ApiServer::new(engine.clone(), &config.server, &config.auth)
            .map_err(|error| anyhow::anyhow!("invalid config: {error}"))?;
        Ok(Self { listener, port, store, engine, election, role, api, hangups })
    }

    /// The port the API listens on (the real one when the config asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Runs until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `stop` completes, then steps down and stops cleanly.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, port, engine, election, role, api, hangups, .. } = self;
        let reloads = tokio::spawn(hangups.reload(api.tls_reloader()));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        // Held to the end: the election's runtime lives as long as this run, since pooled connections it opened
        // are driven by it.
        let (_release_election, released) = tokio::sync::oneshot::channel::<()>();
        let mut election_task = spawn_election(election, role, shutdown_receiver.clone(), released)?;
        let engine_task = tokio::spawn(engine.run(shutdown_receiver.clone()));
        tracing::info!(port, "scheduler listening");
        let mut server_shutdown = shutdown_receiver.clone();
        let server = api.serve(listener, async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        });
        let server_task = tokio::spawn(server);
        // An election that ends by itself failed for good (a bad lock key or URL): that is fatal, not a follower
        // that never leads.
        let election_failed = tokio::select! {
            () = stop => None,
            ended = &mut election_task => Some(ended),
        };
        if election_failed.is_some() {
            tracing::error!("the leader election stopped; shutting down");
        }
        tracing::info!("shutting down");
        shutdown.send_replace(true);
        engine_task.await.context("engine task failed")?;
        match election_failed {
            Some(ended) => {
                ended.context("election task failed")?.context("leader election failed")?;
                anyhow::bail!("the leader election stopped unexpectedly");
            }
            None => election_task.await.context("election task failed")?.context("leader election failed")?,
        }
        server_task.await.context("server task failed")?.context("server failed")?;
        reloads.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Runs the election on a thread and a runtime of its own, so that the lease is renewed on time however busy the
/// work's runtime is (a renewal later than the lease deposes a live leader). The answer is the election's result;
/// the runtime keeps running until `released` ends, because the pooled connections it opened for the election's
/// statements are driven by it and stay in the pool for everyone.
fn spawn_election(
    election: Arc<dyn LeaderElection>,
    role: watch::Sender<Role>,
    shutdown: watch::Receiver<bool>,
    released: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<jobs_election::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the election's runtime")?;
    let (ended, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jobs-election".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let _ = ended.send(election.run(role, shutdown).await);
                let _ = released.await;
            });
        })
        .context("cannot start the election's thread")?;
    Ok(result)
}

/// SIGHUP, watched from the start: it reads `server.tls` again, and is otherwise ignored (never the default, which
/// ends the process).
#[derive(Debug)]
struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    fn watch() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hangups = signal(SignalKind::hangup())
                .inspect_err(|error| tracing::warn!(%error, "cannot watch SIGHUP; server.tls is read only at start"));
            Self(hangups.ok())
        }
        #[cfg(not(unix))]
        Self()
    }

    /// Runs `tls`'s reload on every SIGHUP.
    async fn reload(self, tls: Option<TlsReloader>) {
        #[cfg(unix)]
        {
            let Some(mut hangups) = self.0 else { return };
            while hangups.recv().await.is_some() {
                match &tls {
                    None => tracing::info!("SIGHUP: nothing to reload (server.tls is off)"),
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!(
                            cert = tls.cert_file(),
                            "SIGHUP: server.tls reloaded, new connections get it"
                        ),
                        Err(error) => {
                            tracing::error!(%error, "SIGHUP: cannot reload server.tls; still serving the previous certificate");
                        }
                    },
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (self, tls);
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The database a URL names (`jobs` in `mysql://root@host:3306/jobs?x=y`), which scopes the default lock key.
fn database_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.is_empty() { "jobs".to_owned() } else { name }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && jobs_model::validate::name("hostname", name).is_ok())
        .unwrap_or_else(|| "scheduler".to_owned())
}
