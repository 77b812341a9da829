//! Task handlers: the async functions an executor runs, and the error they fail with.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::context::JobContext;

/// Why a handler failed; its message is reported to the scheduler as the execution's `error`.
///
/// Any [`std::error::Error`] converts into it, so `?` works inside handlers:
///
/// ```
/// use jobs_executor::{JobContext, JobError};
///
/// async fn parse_count(ctx: JobContext) -> Result<u64, JobError> {
///     let text = ctx.parameters().get("count").and_then(|v| v.as_str()).unwrap_or("0");
///     let count: u64 = text.parse()?;
///     if count > 1000 {
///         return Err(JobError::new(format!("count {count} is over the limit of 1000")));
///     }
///     Ok(count)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    message: String,
}

impl JobError {
    /// A failure with this message.
    pub fn new(message: impl fmt::Display) -> Self {
        Self { message: message.to_string() }
    }

    /// The message reported to the scheduler.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// `JobError` deliberately does not implement `std::error::Error`, so that this blanket
// conversion does not overlap with `From<T> for T` (the `anyhow` pattern).
impl<E: std::error::Error> From<E> for JobError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self { message }
    }
}

/// What a finished handler produced: the JSON `result` (`None` for `null`) or the failure.
pub(crate) type Outcome = Result<Option<serde_json::Value>, JobError>;

type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// A type-erased handler, shared by every execution of its task.
#[derive(Clone)]
pub(crate) struct Handler(Arc<dyn Fn(JobContext) -> BoxFuture + Send + Sync>);

impl Handler {
    pub(crate) fn new<F, Fut, T>(handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, JobError>> + Send + 'static,
        T: Serialize,
    {
        Self(Arc::new(move |ctx| {
            let future = handler(ctx);
            Box::pin(async move {
                let value = future.await?;
                let value = serde_json::to_value(value)
                    .map_err(|e| JobError::new(format!("cannot serialize the handler's result: {e}")))?;
                Ok(Some(value).filter(|v| !v.is_null()))
            })
        }))
    }

    pub(crate) fn call(&self, ctx: JobContext) -> BoxFuture {
        (self.0)(ctx)
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}
