//! Cron planning: parsing expressions in a time zone, next fire times across DST changes, previews and misfires.
//!
//! [`Schedule::next_after`] is the one definition of when a task fires; the planner ([`plan`]) and the preview
//! endpoint ([`Schedule::preview`]) are both built on it.

mod error;
mod expression;
mod plan;
mod schedule;

pub use crate::error::{Error, Result};
pub use crate::plan::{Plan, plan};
pub use crate::schedule::{MAX_PREVIEW, Schedule, validate_timezone};

#[cfg(test)]
mod tests;
