//! Tests of lock names and ids.

use crate::key::{MYSQL_LOCK_NAME_MAX, mysql_lock_name, postgres_lock_id, stable_hash};

#[track_caller]
fn check(key: &str, expected: &str) {
    let name = mysql_lock_name(key);
    assert_eq!(name, expected);
    assert!(name.chars().count() <= MYSQL_LOCK_NAME_MAX, "`{name}` is too long");
}

#[test]
fn short_keys_are_used_as_they_are() {
    check("jobs_leader_jobs", "jobs_leader_jobs");
    check("", "");
    let exactly_64 = "k".repeat(64);
    check(&exactly_64, &exactly_64);
    let wide = "é".repeat(64);
    check(&wide, &wide);
}

#[test]
fn long_keys_are_shortened_deterministically() {
    let long = format!("jobs_leader_{}", "a".repeat(60));
    let prefix: String = long.chars().take(47).collect();
    check(&long, &format!("{prefix}_{:016x}", stable_hash(&long)));
    assert_eq!(mysql_lock_name(&long).chars().count(), 64);
    assert_eq!(mysql_lock_name(&long), mysql_lock_name(&long.clone()));
    // Keys that share the first 47 characters stay apart.
    let other = format!("jobs_leader_{}b", "a".repeat(59));
    assert_ne!(mysql_lock_name(&long), mysql_lock_name(&other));
    // Characters, not bytes: a multi-byte prefix is cut on a character boundary.
    let wide = "é".repeat(65);
    let name = mysql_lock_name(&wide);
    assert_eq!(name.chars().count(), 64);
    assert!(name.starts_with(&"é".repeat(47)));
}

#[test]
fn the_hash_is_fnv1a() {
    // Published FNV-1a 64 test vectors: the hash must never change between builds.
    assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn postgres_ids_are_stable_and_distinct() {
    assert_eq!(postgres_lock_id("jobs_leader_jobs"), postgres_lock_id("jobs_leader_jobs"));
    assert_ne!(postgres_lock_id("jobs_leader_a"), postgres_lock_id("jobs_leader_b"));
    assert_eq!(postgres_lock_id("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
}
