//! Integration tests of the executor SDK against a fake scheduler.

mod early;
mod execute;
mod registration;
mod shutdown;
mod signatures;
mod support;
