//! Integration tests of the scheduler: real HTTP, real executors on the SDK, real databases.
#![recursion_limit = "256"]

mod api;
mod auth;
mod broadcast;
mod browser;
mod chains;
mod cluster;
mod config;
mod console_executions;
mod console_executors;
mod console_tasks;
mod e2e;
mod engine_faults;
mod executions;
mod fake_executor;
mod hot_path;
mod lists;
mod misfire;
mod operations;
mod processes;
mod registry;
mod request_ids;
mod schedules;
mod seed;
mod support;
mod tls;
