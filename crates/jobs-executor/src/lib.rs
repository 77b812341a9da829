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
//! # TLS
//!
//! `https://` scheduler urls work with the platform's trusted roots; [`ExecutorBuilder::tls_ca_file`] trusts a
//! private CA besides them, and [`ExecutorBuilder::tls_client_cert`] presents a client certificate where mutual TLS
//! is required. [`ExecutorBuilder::tls_listener`] serves `/execute`, `/cancel` and `/health` over HTTPS (the
//! default `base_url` is then `https://127.0.0.1:{port}`; give one the certificate names), and
//! [`ExecutorHandle::reload_tls`] puts a renewed certificate in service. The scheduler trusts it through its own
//! `tls.ca_file`. Every file is read by [`ExecutorBuilder::build`], so a missing or mismatched one is an
//! [`Error::InvalidOption`] naming it.
//!
//! # Early delivery
//!
//! By default an executor asks the scheduler for early delivery ([`DEFAULT_EARLY_DELIVERY`], one second): a fire
//! may arrive up to that long before its instant, so that a burst of fires due at the same second is already
//! here when the second begins. The executor answers such an `/execute` with 202 at once and holds the
//! execution: it takes its concurrency slot (a full instance answers 429 on receipt), it is listed in the
//! heartbeats as running, and its handler starts at the fire's `scheduled_at` ([`JobContext::scheduled_at`]) by
//! this process's clock, never earlier. Keep the clock synchronized (NTP): a clock that runs behind starts
//! handlers late, one that runs ahead starts them early.
//!
//! A `/cancel` that comes before the instant drops the execution: its handler never runs and no callback is sent
//! (the scheduler already ended it). At shutdown, held executions are dropped too, but reported failed (error
//! `not started: the executor instance shut down before the scheduled time`), so that the scheduler's retry
//! policy applies as for a handler interrupted at shutdown.
//!
//! [`ExecutorBuilder::early_delivery`] sets the lead, at most [`MAX_EARLY_DELIVERY`] (the scheduler caps it
//! with its own `scheduler.early_delivery`); `early_delivery(Duration::ZERO)` turns it off, and every handler
//! then starts when its fire arrives.
//!
//! # Delivered twice, run once
//!
//! A scheduler may send the same fire again, for instance a new leader after a failover. An `/execute` for an
//! attempt of an execution this instance already took (held, running, or finished within the last ten minutes;
//! the most recent 100,000 are remembered) answers 202 and runs nothing; so does an earlier attempt. A later
//! attempt is a retry and runs (it takes the place of an earlier attempt still held here; while an earlier
//! attempt still runs here it gets 429, and the scheduler tries another instance).
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
mod https;
mod logs;
mod recent;
mod registration;
mod server;

pub use jobs_model::protocol::{DeclaredTask, Shard};
pub use jobs_model::{
    ExecutionId, ExecutionMode, ExecutorId, MisfirePolicy, Parameters, RetryBackoff, TaskId, Timestamp,
};

pub use crate::builder::{
    DEFAULT_EARLY_DELIVERY, DEFAULT_MAX_CONCURRENCY, DEFAULT_SCHEDULER_URL, DEFAULT_SHUTDOWN_TIMEOUT, ExecutorBuilder,
    MAX_EARLY_DELIVERY,
};
pub use crate::context::JobContext;
pub use crate::error::{Error, Result};
pub use crate::executor::{Executor, ExecutorHandle};
pub use crate::handler::JobError;
