//! The scheduler's configuration: built-in defaults, then YAML, then `JOBS_<SECTION>__<KEY>` variables.

use std::path::Path;
use std::sync::Arc;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::{Deserialize, Serialize};

use jobs_api::{AuthConfig, ServerConfig};
use jobs_engine::{AlertsConfig, RetentionConfig, SchedulerConfig};
use jobs_model::tls::TlsError;
use jobs_registry::{ExecutorsConfig, HealthCheckConfig};
use jobs_storage::DatabaseConfig;

/// Every section; each belongs to the crate that uses it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub scheduler: SchedulerConfig,
    pub health_check: HealthCheckConfig,
    pub executors: ExecutorsConfig,
    pub auth: AuthConfig,
    pub retention: RetentionConfig,
    pub alerts: AlertsConfig,
    pub log: LogConfig,
    pub tls: TlsConfig,
}

/// `tls`: how this instance's outgoing HTTPS (executors, health checks, alert webhooks) trusts and identifies.
/// The platform's roots are always trusted; every key is a PEM file, empty when unused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates trusted besides the platform's (a private CA).
    pub ca_file: String,
    /// A client certificate chain, presented to executors that demand mutual TLS.
    pub client_cert: String,
    /// Its private key.
    pub client_key: String,
}

impl TlsConfig {
    /// Checks the keys and reads the files, so that a bad one stops the start before anything else happens.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_cert.is_empty() != self.client_key.is_empty() {
            return Err("tls.client_cert and tls.client_key go together: set both or neither".to_owned());
        }
        self.client_config().map(drop)
    }

    /// The settings for outgoing HTTPS: the platform's roots plus `ca_file`, and the client certificate when set.
    /// The error names the key and the file.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let read = |key: &str, path: &str| -> Result<Option<Vec<u8>>, String> {
            match path {
                "" => Ok(None),
                path => {
                    std::fs::read(path).map(Some).map_err(|error| format!("tls.{key}: cannot read {path}: {error}"))
                }
            }
        };
        let roots = read("ca_file", &self.ca_file)?;
        if let Some(pem) = &roots {
            jobs_model::tls::trust_anchors(pem).map_err(|error| format!("tls.ca_file: {} {error}", self.ca_file))?;
        }
        let cert = read("client_cert", &self.client_cert)?;
        let key = read("client_key", &self.client_key)?;
        let identity = cert.as_deref().zip(key.as_deref());
        let config = jobs_model::tls::client_config(roots.as_deref(), identity).map_err(|error| match error {
            TlsError::NoKey => format!("tls.client_key: {} {error}", self.client_key),
            TlsError::BadKey(_) => {
                format!("tls.client_key: {} does not fit {}: {error}", self.client_key, self.client_cert)
            }
            TlsError::NoCertificate | TlsError::BadCertificate(_) => {
                format!("tls.client_cert: {} {error}", self.client_cert)
            }
            TlsError::Setup(_) => format!("tls: {error}"),
        })?;
        Ok(Arc::new(config))
    }
}

/// The seed's `log` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`) or a tracing filter (`info,jobs_engine=debug`); `RUST_LOG` wins when set.
    pub level: String,
    /// Log file; empty means stdout only. It rolls at each new UTC day: yesterday's lines move to `{file}.1`, the day
    /// before's to `{file}.2`, and so on.
    pub file: String,
    pub format: LogFormat,
    /// How many earlier days' files are kept beside the current one; older ones are deleted. At least 1.
    pub max_files: usize,
}

/// How log lines are written, `log.format`: an unknown word is a config error naming the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".to_owned(), file: "logs/scheduler.log".to_owned(), format: LogFormat::Text, max_files: 7 }
    }
}

impl Config {
    /// Reads the layers; `path` is `--config` or `JOBS_CONFIG`.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            figment = figment.merge(Yaml::file_exact(path));
        }
        Self::from_figment(figment.merge(env()))
    }

    pub fn from_figment(figment: Figment) -> anyhow::Result<Self> {
        let config: Config = figment.extract().map_err(|error| {
            let messages: Vec<String> = error.into_iter().map(|error| error.to_string()).collect();
            anyhow::anyhow!("invalid config: {}", messages.join("; "))
        })?;
        config.validate().map_err(|error| anyhow::anyhow!("invalid config: {error}"))?;
        Ok(config)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.scheduler.validate()?;
        self.health_check.validate()?;
        self.database.validate().map_err(|error| error.to_string())?;
        self.executors.validate()?;
        self.auth.validate()?;
        self.retention.validate()?;
        self.alerts.validate()?;
        self.tls.validate()?;
        if self.log.max_files == 0 {
            return Err("log.max_files must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// `JOBS_SERVER__PORT=8081` → `server.port`; variables without a section (`JOBS_CONFIG`) are not config keys.
fn env() -> Env {
    Env::prefixed("JOBS_").split("__").filter(|key| key.as_str().contains('.'))
}
