//! [`ExecutorBuilder`]: the options of an executor, checked once by [`ExecutorBuilder::build`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use jobs_model::protocol::DeclaredTask;
use jobs_model::tls;

use crate::client::SchedulerClient;
use crate::context::JobContext;
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::handler::{Handler, JobError};

/// The scheduler an executor registers with when no url is given (the scheduler's default port).
pub const DEFAULT_SCHEDULER_URL: &str = "http://127.0.0.1:8080";
/// How many executions an instance runs at once unless told otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// How long a graceful shutdown waits for running handlers unless told otherwise.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long before a fire's instant the scheduler may send it unless told otherwise; see
/// [`ExecutorBuilder::early_delivery`].
pub const DEFAULT_EARLY_DELIVERY: Duration = Duration::from_secs(1);
/// The longest [`ExecutorBuilder::early_delivery`] a scheduler accepts.
pub const MAX_EARLY_DELIVERY: Duration = Duration::from_secs(60);

/// Options of an [`Executor`]; start with [`Executor::builder`].
#[derive(Debug)]
#[must_use]
pub struct ExecutorBuilder {
    name: String,
    instance_id: Option<String>,
    base_url: Option<String>,
    scheduler_urls: Option<Vec<String>>,
    weight: Option<u32>,
    tags: Vec<String>,
    declared: Vec<DeclaredTask>,
    handlers: BTreeMap<String, Handler>,
    duplicate_handlers: Vec<String>,
    max_concurrency: usize,
    shutdown_timeout: Duration,
    credentials: Credentials,
    early_delivery: Duration,
    tls: TlsFiles,
}

/// The PEM files of [`ExecutorBuilder::tls_ca_file`], [`ExecutorBuilder::tls_client_cert`] and
/// [`ExecutorBuilder::tls_listener`], read by `build`.
#[derive(Debug, Default)]
struct TlsFiles {
    ca_file: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
    listener: Option<(PathBuf, PathBuf)>,
}

impl ExecutorBuilder {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            instance_id: None,
            base_url: None,
            scheduler_urls: None,
            weight: None,
            tags: Vec::new(),
            declared: Vec::new(),
            handlers: BTreeMap::new(),
            duplicate_handlers: Vec::new(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            credentials: Credentials::default(),
            early_delivery: DEFAULT_EARLY_DELIVERY,
            tls: TlsFiles::default(),
        }
    }

    /// This process's id within the group; default `{hostname}-{port}`.
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = Some(instance_id.into());
        self
    }

    /// The scheduler instances to talk to; any of them accepts every call. Default [`DEFAULT_SCHEDULER_URL`].
    pub fn scheduler_urls<I>(mut self, urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.scheduler_urls = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// The url schedulers reach this instance at; default `http://127.0.0.1:{port}` (`https://` with
    /// [`tls_listener`](Self::tls_listener)).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The weight for weighted round robin (the scheduler's default is 1).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Adds a tag to the registration.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Declares a task at registration: with a `cron`, the scheduler creates it if it is missing.
    ///
    /// The task needs a [`handler`](Self::handler) of the same name.
    pub fn declare(mut self, task: DeclaredTask) -> Self {
        self.declared.push(task);
        self
    }

    /// Runs `handler` for executions of `task_name`.
    ///
    /// A task that is not [declared](Self::declare) is declared without a schedule: the instance
    /// only says it can run it.
    pub fn handler<F, Fut, T>(mut self, task_name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, JobError>> + Send + 'static,
        T: Serialize,
    {
        let task_name = task_name.into();
        if self.handlers.insert(task_name.clone(), Handler::new(handler)).is_some() {
            self.duplicate_handlers.push(task_name);
        }
        self
    }

    /// Early delivery: the scheduler may send a fire up to `lead` before its instant (less if its own
    /// `scheduler.early_delivery` is shorter), so that a burst of fires due at the same second starts on time.
    ///
    /// A fire that arrives early takes its concurrency slot at once and is held: its handler starts at the fire's
    /// `scheduled_at` by this process's clock (keep it synchronized with NTP). A `/cancel` before then drops it.
    /// `lead` is counted in whole milliseconds, at most [`MAX_EARLY_DELIVERY`].
    /// Default [`DEFAULT_EARLY_DELIVERY`]; `Duration::ZERO` turns early delivery off: every fire is sent at its
    /// instant and its handler starts when it arrives.
    pub fn early_delivery(mut self, lead: Duration) -> Self {
        self.early_delivery = lead;
        self
    }

    /// How many executions may run at once; more dispatches get 429. Default [`DEFAULT_MAX_CONCURRENCY`].
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }

    /// How long a graceful shutdown waits for running handlers before it interrupts them and
    /// reports them failed. Default [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The secret shared with the scheduler (its `auth.executor_secret`).
    ///
    /// Every request to the scheduler is then signed with it (`X-Jobs-Timestamp`,
    /// `X-Jobs-Signature`), and `POST /execute` and `POST /cancel` answer 401 unless the scheduler
    /// signed them with it less than five minutes ago. `GET /health` stays open.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.credentials.secret = Some(Arc::from(secret.as_ref()));
        self
    }

    /// An API token (one of the scheduler's `auth.api_tokens`), sent as `Authorization: Bearer`
    /// on every request to the scheduler; for clusters that use tokens without a shared secret.
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.credentials.api_token = Some(token.into());
        self
    }

    /// Trusts the CA certificates in this PEM file, besides the platform's roots, for HTTPS calls to the
    /// scheduler (a private CA; the scheduler's `tls.ca_file`).
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate chain and key (PEM files) to a scheduler, or a proxy in front of it, that
    /// demands mutual TLS.
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client = Some((cert.into(), key.into()));
        self
    }

    /// Serves the executor protocol over HTTPS with this certificate chain and key (PEM files), for sites without
    /// a TLS-terminating proxy; [`ExecutorHandle::reload_tls`](crate::ExecutorHandle::reload_tls) reads them again.
    pub fn tls_listener(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.listener = Some((cert.into(), key.into()));
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the option for an empty name or id, a url that is not
    /// `http(s)://`, a declared task without a handler, a task declared or handled twice, a
    /// zero `max_concurrency`, an `early_delivery` over [`MAX_EARLY_DELIVERY`], an empty `secret` or
    /// `api_token`, or a TLS file that cannot be read or used.
    pub fn build(self) -> Result<Executor> {
        let name = non_empty("name", self.name)?;
        let instance_id = self.instance_id.map(|id| non_empty("instance_id", id)).transpose()?;
        let base_url = self.base_url.map(|url| http_url("base_url", &url)).transpose()?;
        let scheduler_urls = match self.scheduler_urls {
            None => vec![DEFAULT_SCHEDULER_URL.to_owned()],
            Some(urls) if urls.is_empty() => {
                return Err(Error::invalid_option("scheduler_urls", "at least one url is needed"));
            }
            Some(urls) => urls.iter().map(|url| http_url("scheduler_urls", url)).collect::<Result<_>>()?,
        };
        if let Some(task) = self.duplicate_handlers.first() {
            return Err(Error::invalid_option("handler", format!("task `{task}` has two handlers")));
        }
        if self.handlers.contains_key("") {
            return Err(Error::invalid_option("handler", "a task name is empty"));
        }
        if self.max_concurrency == 0 {
            return Err(Error::invalid_option("max_concurrency", "must be at least 1"));
        }
        if self.early_delivery > MAX_EARLY_DELIVERY {
            let message =
                format!("{:?} is more than {MAX_EARLY_DELIVERY:?}, the most a scheduler accepts", self.early_delivery);
            return Err(Error::invalid_option("early_delivery", message));
        }
        if self.credentials.secret.as_ref().is_some_and(|secret| secret.is_empty()) {
            return Err(Error::invalid_option("secret", "must not be empty"));
        }
        match &self.credentials.api_token {
            Some(token) if token.trim().is_empty() => {
                return Err(Error::invalid_option("api_token", "must not be empty"));
            }
            Some(token) if token.chars().any(|c| c.is_control() || !c.is_ascii()) => {
                return Err(Error::invalid_option("api_token", "must be printable ASCII"));
            }
            _ => {}
        }
        if self.tls.listener.is_some() && base_url.as_deref().is_some_and(|url| url.starts_with("http://")) {
            return Err(Error::invalid_option("base_url", "is http://, but tls_listener serves HTTPS: use https://"));
        }
        let tasks = declared_tasks(self.declared, &self.handlers)?;
        let client_tls = self.tls.client_config()?;
        let listener_tls = self.tls.listener.map(ListenerTls::load).transpose()?;
        let client = SchedulerClient::new(scheduler_urls, self.credentials, client_tls)?;
        Ok(Executor {
            name,
            instance_id,
            base_url,
            weight: self.weight,
            tags: self.tags,
            tasks,
            handlers: self.handlers,
            client,
            max_concurrency: self.max_concurrency,
            shutdown_timeout: self.shutdown_timeout,
            early_delivery: self.early_delivery,
            listener_tls,
        })
    }
}

impl TlsFiles {
    /// The settings for HTTPS calls to the scheduler: the platform's roots plus `tls_ca_file`, and
    /// `tls_client_cert`'s certificate when set.
    fn client_config(&self) -> Result<rustls::ClientConfig> {
        let roots = self.ca_file.as_deref().map(|path| read_pem("tls_ca_file", path)).transpose()?;
        if let (Some(pem), Some(path)) = (&roots, &self.ca_file) {
            tls::trust_anchors(pem).map_err(|error| tls_error("tls_ca_file", path, &error))?;
        }
        let identity = match &self.client {
            Some((cert, key)) => Some((read_pem("tls_client_cert", cert)?, read_pem("tls_client_cert", key)?)),
            None => None,
        };
        let pair = identity.as_ref().map(|(cert, key)| (cert.as_slice(), key.as_slice()));
        tls::client_config(roots.as_deref(), pair).map_err(|error| {
            let (cert, key) = self.client.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path())).unzip();
            match (&error, cert, key) {
                (tls::TlsError::NoKey | tls::TlsError::BadKey(_), _, Some(key)) => {
                    tls_error("tls_client_cert", key, &error)
                }
                (tls::TlsError::NoCertificate | tls::TlsError::BadCertificate(_), Some(cert), _) => {
                    tls_error("tls_client_cert", cert, &error)
                }
                _ => Error::invalid_option("tls_ca_file", error.to_string()),
            }
        })
    }
}

/// [`ExecutorBuilder::tls_listener`]'s files, the certificate read from them, and the settings that serve it.
#[derive(Debug)]
pub(crate) struct ListenerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    cert: Arc<tls::ReloadableCert>,
    pub(crate) settings: Arc<rustls::ServerConfig>,
}

impl ListenerTls {
    fn load((cert_file, key_file): (PathBuf, PathBuf)) -> Result<Self> {
        let cert = Arc::new(tls::ReloadableCert::new(Self::read(&cert_file, &key_file)?));
        let settings = tls::server_config(cert.clone())
            .map_err(|error| Error::invalid_option("tls_listener", error.to_string()))?;
        Ok(Self { cert_file, key_file, cert, settings: Arc::new(settings) })
    }

    fn read(cert_file: &Path, key_file: &Path) -> Result<rustls::sign::CertifiedKey> {
        let cert = read_pem("tls_listener", cert_file)?;
        let key = read_pem("tls_listener", key_file)?;
        tls::certified_key(&cert, &key).map_err(|error| {
            let path = match error {
                tls::TlsError::NoKey | tls::TlsError::BadKey(_) => key_file,
                _ => cert_file,
            };
            tls_error("tls_listener", path, &error)
        })
    }

    /// Reads the files again and serves the new certificate to new connections.
    pub(crate) fn reload(&self) -> Result<()> {
        self.cert.replace(Self::read(&self.cert_file, &self.key_file)?);
        Ok(())
    }
}

fn read_pem(option: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|error| Error::invalid_option(option, format!("cannot read {}: {error}", path.display())))
}

fn tls_error(option: &'static str, path: &Path, error: &tls::TlsError) -> Error {
    Error::invalid_option(option, format!("{} {error}", path.display()))
}

/// The declared tasks, then a schedule-less declaration for every other handler.
fn declared_tasks(declared: Vec<DeclaredTask>, handlers: &BTreeMap<String, Handler>) -> Result<Vec<DeclaredTask>> {
    let mut tasks: Vec<DeclaredTask> = Vec::with_capacity(declared.len() + handlers.len());
    for task in declared {
        if task.task_name.trim().is_empty() {
            return Err(Error::invalid_option("declare", "a declared task has an empty `task_name`"));
        }
        if !handlers.contains_key(&task.task_name) {
            return Err(Error::invalid_option(
                "declare",
                format!("task `{}` is declared but has no handler", task.task_name),
            ));
        }
        if tasks.iter().any(|t| t.task_name == task.task_name) {
            return Err(Error::invalid_option("declare", format!("task `{}` is declared twice", task.task_name)));
        }
        tasks.push(task);
    }
    for task_name in handlers.keys() {
        if !tasks.iter().any(|t| &t.task_name == task_name) {
            tasks.push(DeclaredTask { task_name: task_name.clone(), ..DeclaredTask::default() });
        }
    }
    Ok(tasks)
}

fn non_empty(option: &'static str, value: String) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::invalid_option(option, "must not be empty"));
    }
    Ok(value)
}

/// An `http://` or `https://` url without its trailing slashes.
fn http_url(option: &'static str, url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let host = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match host {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(Error::invalid_option(option, format!("`{url}` is not an http:// or https:// url"))),
    }
}

#[cfg(test)]
mod tests;
