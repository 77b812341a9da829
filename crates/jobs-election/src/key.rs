//! How a lock key becomes a MySQL lock name or a PostgreSQL advisory lock id, the same in every instance.

use std::borrow::Cow;

/// The longest lock name MySQL accepts, in characters.
pub(crate) const MYSQL_LOCK_NAME_MAX: usize = 64;

/// The MySQL/MariaDB lock name for `key`: the key itself when it fits in 64 characters, otherwise its first
/// 47 characters, `_` and the 16 hex digits of a stable 64-bit hash of the whole key (64 characters in all).
///
/// Lock names are global to a MySQL server, so distinct keys must stay distinct; the hash keeps them apart.
pub fn mysql_lock_name(key: &str) -> Cow<'_, str> {
    if key.chars().count() <= MYSQL_LOCK_NAME_MAX {
        return Cow::Borrowed(key);
    }
    let prefix: String = key.chars().take(MYSQL_LOCK_NAME_MAX - 17).collect();
    Cow::Owned(format!("{prefix}_{:016x}", stable_hash(key)))
}

/// The PostgreSQL advisory lock id for `key`: a stable 64-bit hash of it.
/// (Advisory locks are per database, so the key needs no database name there.)
pub fn postgres_lock_id(key: &str) -> i64 {
    // Reinterprets the 64 bits as a signed BIGINT, which is what `pg_advisory_lock(bigint)` takes.
    i64::from_ne_bytes(stable_hash(key).to_ne_bytes())
}

/// 64-bit FNV-1a: fixed by its definition, unlike `std`'s hasher, so every build of every instance agrees.
fn stable_hash(key: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes().fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests;
