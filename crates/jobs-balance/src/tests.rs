//! Distributions of every strategy, their tolerance of a changing candidate set, and the registry.

use std::sync::Arc;

use jobs_model::{ErrorKind, ExecutorId, TaskId};

use crate::{Broadcast, Candidate, LeastLoaded, Manager, Random, RoundRobin, Sticky, Strategy, WeightedRoundRobin};

fn executor(n: usize) -> ExecutorId {
    ExecutorId::parse(&format!("00000000-0000-7000-8000-{n:012}")).unwrap()
}

/// Candidates with ids 1, 2, … in order, from (weight, running) pairs.
fn candidates(specs: &[(u32, u32)]) -> Vec<Candidate> {
    specs
        .iter()
        .enumerate()
        .map(|(index, &(weight, running))| Candidate { id: executor(index + 1), weight, running })
        .collect()
}

fn task(n: usize) -> TaskId {
    TaskId::parse(&format!("00000000-0000-7000-9000-{n:012}")).unwrap()
}

/// The indices `strategy` picks for `picks` dispatches of one task.
fn picks(strategy: &dyn Strategy, candidates: &[Candidate], picks: usize) -> Vec<usize> {
    (0..picks).map(|_| strategy.pick(task(1), candidates).unwrap()).collect()
}

/// How many of `picks` dispatches of one task go to each candidate.
#[track_caller]
fn check(strategy: &dyn Strategy, candidates: &[Candidate], picks: usize, expected: &[usize]) {
    let mut counts = vec![0; candidates.len()];
    for index in self::picks(strategy, candidates, picks) {
        counts[index] += 1;
    }
    assert_eq!(counts, expected, "{}", strategy.name());
}

#[test]
fn round_robin_is_exactly_even() {
    let strategy = RoundRobin::default();
    let three = candidates(&[(1, 0); 3]);
    check(&strategy, &three, 300, &[100, 100, 100]);
    // In turn: every three consecutive picks hit all three.
    let sequence = picks(&strategy, &three, 30);
    assert!(
        sequence.windows(3).all(|window| window[0] != window[1] && window[1] != window[2] && window[0] != window[2])
    );
    // The order of the candidates does not matter: the rotation follows ids.
    let reversed: Vec<Candidate> = three.iter().rev().cloned().collect();
    let ids: Vec<ExecutorId> = (0..6).map(|_| reversed[strategy.pick(task(1), &reversed).unwrap()].id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] != pair[1]), "{ids:?}");
}

#[test]
fn round_robin_per_task_and_across_set_changes() {
    let strategy = RoundRobin::default();
    let three = candidates(&[(1, 0); 3]);
    let first = strategy.pick(task(1), &three).unwrap();
    // The refused instance is removed: the retry goes to another one, and the rotation carries on from there.
    let rest: Vec<Candidate> = three.iter().filter(|candidate| candidate.id != three[first].id).cloned().collect();
    let retry = rest[strategy.pick(task(1), &rest).unwrap()].id;
    assert_ne!(retry, three[first].id);
    // Tasks keep their own turns and, firing together, start spread out.
    let starts: Vec<usize> = (0..30).map(|n| strategy.pick(task(100 + n), &three).unwrap()).collect();
    for index in 0..3 {
        assert!(starts.contains(&index), "{starts:?}");
    }
    check(&strategy, &three, 300, &[100, 100, 100]);
    assert_eq!(strategy.pick(task(1), &[]), None);
}

#[test]
fn weighted_round_robin_is_smooth() {
    let strategy = WeightedRoundRobin::default();
    let weighted = candidates(&[(5, 0), (1, 0), (1, 0)]);
    // Nginx's sequence: a a b a c a a.
    assert_eq!(picks(&strategy, &weighted, 7), [0, 0, 1, 0, 2, 0, 0]);
    check(&strategy, &weighted, 700, &[500, 100, 100]);
    // Weight 0 counts as 1.
    check(&WeightedRoundRobin::default(), &candidates(&[(0, 0), (1, 0)]), 100, &[50, 50]);
    check(&WeightedRoundRobin::default(), &candidates(&[(3, 0), (2, 0)]), 500, &[300, 200]);
    assert_eq!(strategy.pick(task(1), &[]), None);
}

#[test]
fn weighted_round_robin_tolerates_set_changes() {
    let strategy = WeightedRoundRobin::default();
    let weighted = candidates(&[(5, 0), (1, 0), (1, 0)]);
    picks(&strategy, &weighted, 3);
    // One instance leaves, then comes back: the sequence starts again, so the proportions stay exact.
    check(&strategy, &weighted[1..], 100, &[50, 50]);
    assert_eq!(picks(&strategy, &weighted, 7), [0, 0, 1, 0, 2, 0, 0]);
    check(&strategy, &weighted, 700, &[500, 100, 100]);
    // The same instances in another order are the same set.
    let reversed: Vec<Candidate> = weighted.iter().rev().cloned().collect();
    check(&strategy, &reversed, 700, &[100, 100, 500]);
}

#[test]
fn random_is_roughly_even() {
    let strategy = Random;
    let three = candidates(&[(1, 0); 3]);
    let mut counts = [0; 3];
    for index in picks(&strategy, &three, 3000) {
        counts[index] += 1;
    }
    // 25% to 42% each; a binomial(3000, 1/3) is that far off once in more than 10^12 runs.
    assert!(counts.iter().all(|&count| (750..=1260).contains(&count)), "{counts:?}");
    assert_eq!(strategy.pick(task(1), &[]), None);
    assert_eq!(strategy.pick(task(1), &three[..1]), Some(0));
}

#[test]
fn sticky_stays_then_moves_and_stays() {
    let strategy = Sticky::default();
    let three = candidates(&[(1, 0); 3]);
    let first = three[strategy.pick(task(1), &three).unwrap()].id;
    let ids = |candidates: &[Candidate]| -> Vec<ExecutorId> {
        (0..10).map(|_| candidates[strategy.pick(task(1), candidates).unwrap()].id).collect()
    };
    assert_eq!(ids(&three), [first; 10]);
    // Its instance goes away: the task moves, and stays on the new one.
    let rest: Vec<Candidate> = three.iter().filter(|candidate| candidate.id != first).cloned().collect();
    let second = ids(&rest)[0];
    assert_ne!(second, first);
    assert_eq!(ids(&rest), [second; 10]);
    // Even once the old instance is back.
    assert_eq!(ids(&three), [second; 10]);
    // Another order of the same candidates changes nothing.
    let reversed: Vec<Candidate> = three.iter().rev().cloned().collect();
    assert_eq!(ids(&reversed), [second; 10]);
    // Forgotten, the task goes back to its first choice, which depends on ids only.
    strategy.forget(task(1));
    assert_eq!(ids(&reversed), [first; 10]);
    assert_eq!(strategy.pick(task(1), &[]), None);
}

#[test]
fn sticky_spreads_tasks() {
    let strategy = Sticky::default();
    let three = candidates(&[(1, 0); 3]);
    let mut counts = [0; 3];
    for n in 0..300 {
        counts[strategy.pick(task(n), &three).unwrap()] += 1;
    }
    assert!(counts.iter().all(|&count| count >= 60), "{counts:?}");
}

#[test]
fn least_loaded_picks_the_minimum_and_spreads_ties() {
    let strategy = LeastLoaded::default();
    check(&strategy, &candidates(&[(1, 3), (1, 1), (1, 2)]), 30, &[0, 30, 0]);
    check(&strategy, &candidates(&[(1, 1), (1, 0), (1, 0), (1, 5)]), 100, &[0, 50, 50, 0]);
    check(&strategy, &candidates(&[(1, 0); 3]), 300, &[100, 100, 100]);
    assert_eq!(strategy.pick(task(1), &[]), None);
}

#[test]
fn broadcast_places_a_stray_shard_on_the_least_busy() {
    let strategy = Broadcast;
    check(&strategy, &candidates(&[(1, 3), (1, 1), (1, 1)]), 10, &[0, 10, 0]);
    assert_eq!(strategy.pick(task(1), &[]), None);
}

#[test]
fn manager_knows_the_six() {
    let manager = Manager::default();
    let names = ["round_robin", "weighted_round_robin", "random", "sticky", "least_loaded", "broadcast"];
    assert_eq!(manager.names(), names);
    for name in names {
        assert_eq!(manager.get(name).unwrap().name(), name);
    }
    let error = manager.get("fastest").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown load balance strategy `fastest` (expected one of round_robin, weighted_round_robin, random, sticky, least_loaded, broadcast)"
    );
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

/// Always the first candidate: what adding a strategy takes.
#[derive(Debug)]
struct First;

impl Strategy for First {
    fn name(&self) -> &'static str {
        "first"
    }

    fn pick(&self, _task: TaskId, candidates: &[Candidate]) -> Option<usize> {
        (!candidates.is_empty()).then_some(0)
    }
}

#[test]
fn manager_registers_and_replaces() {
    let mut manager = Manager::default();
    manager.register(Arc::new(First));
    assert_eq!(manager.names().last(), Some(&"first"));
    check(manager.get("first").unwrap().as_ref(), &candidates(&[(1, 0); 3]), 5, &[5, 0, 0]);
    // The same name replaces, in place.
    manager.register(Arc::new(RoundRobin::default()));
    assert_eq!(manager.names().len(), 7);
    manager.forget(task(1));
}

#[test]
fn strategies_are_shared_across_threads() {
    let manager = Arc::new(Manager::default());
    let three = Arc::new(candidates(&[(1, 0); 3]));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (manager, three) = (Arc::clone(&manager), Arc::clone(&three));
            std::thread::spawn(move || {
                let strategy = manager.get("round_robin").unwrap();
                (0..300).map(|_| strategy.pick(task(1), &three).unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts = [0; 3];
    for thread in threads {
        for index in thread.join().unwrap() {
            counts[index] += 1;
        }
    }
    assert_eq!(counts, [400, 400, 400]);
}
