//! A fixed, well-spread hash of ids, so that every scheduler instance (and a new leader) computes the same spread.

/// Mixes the 128-bit ids `a` and `b` into 64 well-distributed bits (splitmix64 finalizer).
pub(crate) fn mix(a: u128, b: u128) -> u64 {
    let folded = a ^ b.rotate_left(64) ^ (b >> 17);
    let mut x = (folded as u64) ^ ((folded >> 64) as u64).rotate_left(29);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
