//! Cycles of chains, found and spelled out.

use std::collections::HashMap;

use super::cycle_through;

fn graph(edges: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
    edges.iter().map(|(from, to)| (from.to_string(), to.iter().map(|name| name.to_string()).collect())).collect()
}

#[test]
fn a_chain_that_returns_to_its_start_is_a_cycle() {
    let chains = graph(&[("a", &["b"]), ("b", &["c", "x"]), ("c", &["a"]), ("x", &[])]);
    assert_eq!(cycle_through(&chains, "a"), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn a_task_naming_itself_is_a_cycle() {
    let chains = graph(&[("a", &["a"])]);
    assert_eq!(cycle_through(&chains, "a"), Some(vec!["a".into(), "a".into()]));
}

#[test]
fn the_shortest_cycle_is_reported() {
    let chains = graph(&[("a", &["b", "d"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
    assert_eq!(cycle_through(&chains, "a"), Some(vec!["a".into(), "d".into(), "a".into()]));
}

#[test]
fn a_diamond_or_a_cycle_elsewhere_is_not_a_cycle_through_the_start() {
    let chains = graph(&[("a", &["b", "c"]), ("b", &["d"]), ("c", &["d"]), ("d", &["e"]), ("e", &["d"])]);
    assert_eq!(cycle_through(&chains, "a"), None);
}
