//! The seed's `server` section.

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { host: "0.0.0.0".to_owned(), port: 8080, advertise_url: String::new(), max_body_bytes: 1024 * 1024 }
    }
}

impl ServerConfig {
    /// The URL executors reach this instance on, once the real port is known.
    pub fn advertised_url(&self, port: u16) -> String {
        if !self.advertise_url.is_empty() {
            return self.advertise_url.trim_end_matches('/').to_owned();
        }
        let host = match self.host.as_str() {
            "0.0.0.0" | "" => "127.0.0.1",
            "::" | "[::]" => "[::1]",
            host => host,
        };
        format!("http://{host}:{port}")
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.advertise_url.is_empty() {
            jobs_model::validate::http_url("server.advertise_url", &self.advertise_url).map_err(|e| e.to_string())?;
        }
        if self.max_body_bytes < 1024 {
            return Err("server.max_body_bytes must be at least 1024".to_owned());
        }
        Ok(())
    }
}
