//! The executor SDK: turn a Rust service into a `jobs` executor.
//!
//! An executor serves `POST /execute`, `POST /cancel` and `GET /health` for the scheduler, registers
//! with a scheduler (retrying until one answers), heartbeats, runs handlers in the background,
//! reports each outcome with a callback, and deregisters when it shuts down.
//!
//! ```no_run
//! use jobs_executor::{DeclaredTask, ExecutionMode, Executor, JobContext, JobError};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = Executor::builder("data-processor")
//!     .instance_id("executor-001")
//!     .scheduler_urls(["http://127.0.0.1:8080"])
//!     .declare(DeclaredTask {
//!         task_name: "daily_report".into(),
//!         cron: Some("0 0 2 * * *".into()),
//!         execution_mode: Some(ExecutionMode::Sequential),
//!         load_balance_strategy: Some("round_robin".into()),
//!         timeout: Some(300),
//!         ..Default::default()
//!     })
//!     .handler("daily_report", |ctx: JobContext| async move {
//!         ctx.log("generating");
//!         Ok(serde_json::json!({"rows": 42}))
//!     })
//!     .handler("fail", |_ctx| async { Err::<(), _>(JobError::new("always fails")) })
//!     .build()?;
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9090").await?;
//! executor.run_until(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A scheduler with `auth.executor_secret` needs [`ExecutorBuilder::secret`]: every request the
//! executor sends is then signed, and `/execute` and `/cancel` take only requests the scheduler
//! signed. With `auth.api_tokens` only, [`ExecutorBuilder::api_token`] sends a bearer token.
//!
//! In tests, bind port 0 and use [`Executor::start`]: the [`ExecutorHandle`] tells the port,
//! and [`ExecutorHandle::shutdown`] stops the executor gracefully.
#![warn(missing_docs)]

mod backoff;
mod builder;
mod client;
mod context;
mod credentials;
mod error;
mod execution;
mod executions;
mod executor;
mod handler;
mod logs;
mod registration;
mod server;

pub use jobs_model::protocol::DeclaredTask;
pub use jobs_model::{
    ExecutionId, ExecutionMode, ExecutorId, MisfirePolicy, Parameters, RetryBackoff, TaskId, Timestamp,
};

pub use crate::builder::{DEFAULT_MAX_CONCURRENCY, DEFAULT_SCHEDULER_URL, DEFAULT_SHUTDOWN_TIMEOUT, ExecutorBuilder};
pub use crate::context::JobContext;
pub use crate::error::{Error, Result};
pub use crate::executor::{Executor, ExecutorHandle};
pub use crate::handler::JobError;
