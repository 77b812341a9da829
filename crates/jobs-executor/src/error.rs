//! The SDK's error type: configuration mistakes, scheduler calls and the local server.

use jobs_model::ErrorKind;

/// Everything that can go wrong while building or running an executor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder option has an unusable value.
    #[error("invalid executor option `{option}`: {message}")]
    InvalidOption {
        /// The builder option, e.g. `scheduler_urls`.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client for scheduler calls could not be created.
    #[error("cannot create the http client for scheduler calls")]
    HttpClient(#[source] reqwest::Error),
    /// The listener handed to the executor has no local address.
    #[error("cannot read the local address of the executor listener")]
    LocalAddr(#[source] std::io::Error),
    /// A scheduler could not be reached (connection refused, timeout, ...).
    #[error("cannot reach scheduler at {url}: {}", jobs_model::tls::explain(source, "tls_ca_file"))]
    Unreachable {
        /// The address that was called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A scheduler answered with a status other than 2xx.
    #[error("scheduler at {url} answered {status}: {body}")]
    Rejected {
        /// The address that was called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
        /// How long the scheduler asked to wait before trying again (its `Retry-After`, in seconds), if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// A scheduler answered 2xx with a body that is not what the protocol says.
    #[error("invalid answer from scheduler at {url}")]
    InvalidAnswer {
        /// The address that was called.
        url: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
    /// A request body could not be serialized.
    #[error("cannot serialize the request body for {url}")]
    Serialize {
        /// The address the body was meant for.
        url: String,
        /// The serialization error.
        #[source]
        source: serde_json::Error,
    },
    /// No scheduler url is configured (never happens after a successful `build`).
    #[error("no scheduler url is configured")]
    NoScheduler,
    /// The HTTP server of the executor stopped with an error.
    #[error("the executor http server failed")]
    Serve(#[source] std::io::Error),
    /// A background task of the executor panicked.
    #[error("the executor background task `{task}` panicked")]
    TaskPanicked {
        /// Which task.
        task: &'static str,
    },
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidOption { .. } => ErrorKind::InvalidInput,
            Self::Rejected { status: 401, .. } => ErrorKind::Unauthorized,
            Self::Rejected { status: 404, .. } => ErrorKind::NotFound,
            Self::Rejected { status: 409, .. } => ErrorKind::Conflict,
            Self::Rejected { status, .. } if *status < 500 && *status != 429 => ErrorKind::InvalidInput,
            Self::Unreachable { .. } | Self::Rejected { .. } | Self::NoScheduler => ErrorKind::Unavailable,
            Self::HttpClient(_)
            | Self::LocalAddr(_)
            | Self::InvalidAnswer { .. }
            | Self::Serialize { .. }
            | Self::Serve(_)
            | Self::TaskPanicked { .. } => ErrorKind::Internal,
        }
    }

    /// Whether calling again (maybe another scheduler instance) may succeed.
    /// How long the scheduler asked to wait before the next try (a 503 or 429 with `Retry-After`).
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Rejected { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    pub(crate) fn invalid_option(option: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidOption { option, message: message.into() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
