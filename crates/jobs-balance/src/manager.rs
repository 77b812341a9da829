//! The registry that maps strategy names to strategies.

use std::sync::Arc;

use jobs_model::TaskId;

use crate::error::{Error, Result};
use crate::strategy::Strategy;
use crate::{Broadcast, LeastLoaded, Random, RoundRobin, Sticky, WeightedRoundRobin};

/// Strategies by name. `Default` registers the six built-in ones.
#[derive(Debug)]
pub struct Manager {
    strategies: Vec<Arc<dyn Strategy>>,
}

impl Default for Manager {
    fn default() -> Self {
        let mut manager = Manager { strategies: Vec::new() };
        manager.register(Arc::new(RoundRobin::default()));
        manager.register(Arc::new(WeightedRoundRobin::default()));
        manager.register(Arc::new(Random));
        manager.register(Arc::new(Sticky::default()));
        manager.register(Arc::new(LeastLoaded::default()));
        manager.register(Arc::new(Broadcast));
        manager
    }
}

impl Manager {
    /// Adds `strategy` under its name, replacing any strategy of the same name.
    pub fn register(&mut self, strategy: Arc<dyn Strategy>) {
        match self.strategies.iter_mut().find(|known| known.name() == strategy.name()) {
            Some(known) => *known = strategy,
            None => self.strategies.push(strategy),
        }
    }

    /// The strategy called `name`; an unknown name is an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Strategy>> {
        self.strategies
            .iter()
            .find(|strategy| strategy.name() == name)
            .cloned()
            .ok_or_else(|| Error::UnknownStrategy { name: name.to_owned(), expected: self.names() })
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.strategies.iter().map(|strategy| strategy.name()).collect()
    }

    /// Tells every strategy to drop its state about `task`.
    pub fn forget(&self, task: TaskId) {
        for strategy in &self.strategies {
            strategy.forget(task);
        }
    }
}
