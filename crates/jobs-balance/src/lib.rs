//! Load balancing: which executor instance takes one dispatch of a task.
//!
//! A [`Strategy`] picks among the candidates the engine offers (active, healthy instances that declared the task);
//! the [`Manager`] maps the names tasks use to strategies. Adding a strategy is one file and one `register` line.

mod broadcast;
mod error;
mod hash;
mod least_loaded;
mod manager;
mod random;
mod rotation;
mod round_robin;
mod sticky;
mod strategy;
mod weighted_round_robin;

pub use crate::broadcast::{BROADCAST, Broadcast};
pub use crate::error::{Error, Result};
pub use crate::least_loaded::LeastLoaded;
pub use crate::manager::Manager;
pub use crate::random::Random;
pub use crate::round_robin::RoundRobin;
pub use crate::sticky::Sticky;
pub use crate::strategy::{Candidate, Strategy};
pub use crate::weighted_round_robin::WeightedRoundRobin;

#[cfg(test)]
mod tests;
