//! The `database` config section and the URL it resolves to.

use std::fmt;

use serde::{Deserialize, Serialize};

use jobs_model::{Duration, Secret};

use crate::{Error, Result};

/// Where no `database` config is given: an embedded SQLite file under `./data/`.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/jobs.db?mode=rwc";

/// The `database` section: a `url`, or the seed's `host`/`port`/`database`/`user`/`password` for MySQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `mysql://…`, `postgres://…` or `sqlite://…`; wins over the other fields.
    pub url: Option<String>,
    /// MySQL host; empty (and no `url`) means the embedded SQLite database.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Secret,
    pub max_connections: u32,
    /// How long a statement waits for a pooled connection; while the database is down, API calls fail with 503
    /// after this long.
    pub acquire_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: String::new(),
            port: 3306,
            database: "jobs".to_owned(),
            user: "root".to_owned(),
            password: Secret::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

impl DatabaseConfig {
    /// A config that only names a URL.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self { url: Some(url.into()), ..Self::default() }
    }

    /// Checks the URL and the pool settings; an error names the key.
    pub fn validate(&self) -> Result<()> {
        let url = self.resolved_url()?;
        if self.acquire_timeout.get().is_zero() {
            return Err(Error::Config("`database.acquire_timeout` must be greater than zero".to_owned()));
        }
        tls_files_readable(&url)
    }

    /// The URL to connect to: `url` if set, else MySQL from `host` and friends, else the SQLite default.
    pub fn resolved_url(&self) -> Result<String> {
        let url = match &self.url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ if !self.host.is_empty() => {
                let user = percent_encode(&self.user);
                let password = self.password.expose();
                let credentials =
                    if password.is_empty() { user } else { format!("{user}:{}", percent_encode(password)) };
                format!("mysql://{credentials}@{}:{}/{}", self.host, self.port, self.database)
            }
            _ => DEFAULT_SQLITE_URL.to_owned(),
        };
        Backend::from_url(&url)?;
        Ok(url)
    }
}

/// The database flavours `jobs` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

impl Backend {
    /// The backend a URL's scheme names; anything else is a config error naming `database.url`.
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "mysql" => Ok(Self::MySql),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(Error::Config(format!(
                "invalid `database.url`: unsupported scheme `{scheme}` in `{}` (use mysql://, postgres:// or sqlite://)",
                redact_url(url)
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::MySql => "mysql",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The URL without its password: `mysql://root:pw@h:3306/jobs` reads `mysql://root@h:3306/jobs`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    format!("{scheme}://{user}@{host}{tail}")
}

/// The URL's TLS options that name files (`ssl-ca`, `sslrootcert`, client certificates and keys) must name readable
/// ones: the drivers would say only "No such file or directory", without which file.
fn tls_files_readable(url: &str) -> Result<()> {
    const FILE_OPTIONS: [&str; 8] =
        ["ssl-ca", "sslca", "sslrootcert", "ssl-root-cert", "ssl-cert", "sslcert", "ssl-key", "sslkey"];
    let Some(query) = url.split_once('?').map(|(_, query)| query) else { return Ok(()) };
    let files = url::form_urlencoded::parse(query.as_bytes()).filter(|(key, _)| FILE_OPTIONS.contains(&key.as_ref()));
    for (option, path) in files {
        if let Err(error) = std::fs::File::open(path.as_ref()) {
            return Err(Error::Config(format!("`database.url` names {option}={path}, which cannot be read: {error}")));
        }
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for user names and passwords in URLs.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests;
