//! The seed's `server` section.

use jobs_model::tls::TlsError;
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

/// Where the API listens and how executors reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// The URL executors call back on; empty means `http://{host}:{port}` (127.0.0.1 when host is 0.0.0.0).
    pub advertise_url: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// HTTPS on this port, for sites without a TLS-terminating proxy in front.
    pub tls: ServerTlsConfig,
}

/// `server.tls`: PEM files; both empty serves plain HTTP. SIGHUP reads them again (a renewed certificate), and new
/// connections get the new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The certificate chain, leaf first.
    pub cert: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl ServerTlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }

    /// Reads both files and checks that they belong together; the error names the key and the file.
    pub fn load(&self) -> Result<CertifiedKey, String> {
        let read = |key: &str, path: &str| {
            std::fs::read(path).map_err(|error| format!("server.tls.{key}: cannot read {path}: {error}"))
        };
        let cert = read("cert", &self.cert)?;
        let key = read("key", &self.key)?;
        jobs_model::tls::certified_key(&cert, &key).map_err(|error| match error {
            TlsError::NoKey => format!("server.tls.key: {} {error}", self.key),
            TlsError::BadKey(_) => format!("server.tls.key: {} does not fit {}: {error}", self.key, self.cert),
            _ => format!("server.tls.cert: {} {error}", self.cert),
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 8080,
            advertise_url: String::new(),
            max_body_bytes: 1024 * 1024,
            tls: ServerTlsConfig::default(),
        }
    }
}

impl ServerConfig {
    /// The URL executors reach this instance on, once the real port is known: `https` when `server.tls` is on.
    pub fn advertised_url(&self, port: u16) -> String {
        if !self.advertise_url.is_empty() {
            return self.advertise_url.trim_end_matches('/').to_owned();
        }
        let host = match self.host.as_str() {
            "0.0.0.0" | "" => "127.0.0.1",
            "::" | "[::]" => "[::1]",
            host => host,
        };
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        format!("{scheme}://{host}:{port}")
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.advertise_url.is_empty() {
            jobs_model::validate::http_url("server.advertise_url", &self.advertise_url).map_err(|e| e.to_string())?;
        }
        if self.max_body_bytes < 1024 {
            return Err("server.max_body_bytes must be at least 1024".to_owned());
        }
        if self.tls.enabled() {
            if self.tls.cert.is_empty() || self.tls.key.is_empty() {
                return Err("server.tls needs both `cert` and `key` (PEM files), or neither".to_owned());
            }
            if self.advertise_url.starts_with("http://") {
                return Err("server.advertise_url is http://, but server.tls serves HTTPS: use https://".to_owned());
            }
            self.tls.load()?;
        }
        Ok(())
    }
}
