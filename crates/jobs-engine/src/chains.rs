//! Checking a task's chains when it is written: every task named in `on_success` or `on_failure` exists, and no
//! chain leads back to where it started (a cycle would trigger itself forever).

use std::collections::HashMap;

use jobs_model::TaskSpec;

use crate::{Engine, Error, Result};

#[cfg(test)]
mod tests;

impl Engine {
    /// Refuses `spec` if it names a task that does not exist (400), or if storing it would close a cycle of chains
    /// (409, the cycle spelled out); `current_name` is the stored task's name when `spec` replaces it.
    pub(crate) async fn check_chains(&self, spec: &TaskSpec, current_name: Option<&str>) -> Result<()> {
        let next: Vec<String> = spec.on_success.iter().chain(&spec.on_failure).cloned().collect();
        if next.is_empty() {
            return Ok(());
        }
        let mut graph: HashMap<String, Vec<String>> = self.store.chains().await?.into_iter().collect();
        if let Some(current) = current_name {
            graph.remove(current);
        }
        graph.insert(spec.name.clone(), next.clone());
        if let Some(cycle) = cycle_through(&graph, &spec.name) {
            return Err(Error::ChainCycle(cycle.join(" → ")));
        }
        for name in next {
            if self.store.find_task_by_name(&name).await?.is_none() {
                let field = if spec.on_success.contains(&name) { "on_success" } else { "on_failure" };
                return Err(jobs_model::Error::invalid(field, format!("task `{name}` does not exist")).into());
            }
        }
        Ok(())
    }
}

/// A path of chains from `start` back to `start` (both ends listed), if there is one; the shortest by edges.
pub(crate) fn cycle_through(graph: &HashMap<String, Vec<String>>, start: &str) -> Option<Vec<String>> {
    // Breadth first, remembering how each task was reached, so the cycle reported is a shortest one.
    let mut reached_from: HashMap<&str, &str> = HashMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next_frontier = Vec::new();
        for task in frontier {
            for next in graph.get(task).into_iter().flatten() {
                if next == start {
                    let mut back = Vec::new();
                    let mut at = task;
                    while at != start {
                        back.push(at.to_owned());
                        at = reached_from[at];
                    }
                    back.reverse();
                    return Some([vec![start.to_owned()], back, vec![start.to_owned()]].concat());
                }
                if !reached_from.contains_key(next.as_str()) {
                    reached_from.insert(next, task);
                    next_frontier.push(next.as_str());
                }
            }
        }
        frontier = next_frontier;
    }
    None
}
