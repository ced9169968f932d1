//! The map behind the store: a fixed set of shards, each a hash map behind its own lock, so
//! that threads working on different peers rarely meet.
//!
//! A shard's lock is taken once per operation, and once per shard by a whole-store read, which
//! visits every record under one read lock (a `DashMap` iterator also bumps a shared
//! reference count for every item it yields: that was two thirds of `get_active`).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::PublicKey;

/// Keys come from the network, so every map is seeded per store (foldhash: a fraction of
/// SipHash's cost on a 32-byte key, and still no fixed seed for a flood to aim at).
pub(crate) type Map<V> = HashMap<PublicKey, V, foldhash::fast::RandomState>;

/// One shard on cache lines of its own, so two shards' locks never share a line.
#[repr(align(128))]
struct Shard<V>(RwLock<Map<V>>);

pub(crate) struct Shards<V> {
    shards: Box<[Shard<V>]>,
    /// Picks the shard; random per store, so the keys a flood chooses do not pile up in
    /// one shard (which would only cost concurrency: each map is seeded on its own).
    seed: u64,
}

impl<V> Shards<V> {
    pub(crate) fn new() -> Self {
        // As DashMap does: four shards per thread the machine runs, a power of two.
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let count = (threads * 4).next_power_of_two();
        Shards {
            shards: (0..count).map(|_| Shard(RwLock::default())).collect(),
            seed: {
                use std::hash::BuildHasher;
                foldhash::fast::RandomState::default().hash_one(count)
            },
        }
    }

    fn shard(&self, key: &PublicKey) -> &RwLock<Map<V>> {
        let folded = key
            .as_bytes()
            .chunks_exact(8)
            .map(|word| u64::from_le_bytes(word.try_into().unwrap_or_default()))
            .fold(self.seed, |acc, word| acc.rotate_left(23) ^ word);
        // Fibonacci hashing: the top bits of the product depend on every bit of the input.
        let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bits = self.shards.len().trailing_zeros();
        let index = if bits == 0 {
            0
        } else {
            (mixed >> (64 - bits)) as usize
        };
        &self.shards[index].0
    }

    // The critical sections decide before they assign, so a panic cannot leave a
    // half-merged record: a poisoned lock still guards a whole map.
    pub(crate) fn read(&self, key: &PublicKey) -> RwLockReadGuard<'_, Map<V>> {
        self.shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self, key: &PublicKey) -> RwLockWriteGuard<'_, Map<V>> {
        self.shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Visits the records of one shard at a time, each shard read-locked while visited.
    pub(crate) fn for_each_shard(
        &self,
        mut visit: impl FnMut(std::collections::hash_map::Values<'_, PublicKey, V>),
    ) {
        for shard in &self.shards {
            let map = shard.0.read().unwrap_or_else(PoisonError::into_inner);
            visit(map.values());
        }
    }

    /// Keeps the records `keep` says to keep, write-locking one shard at a time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&PublicKey, &mut V) -> bool) {
        for shard in &self.shards {
            let mut map = shard.0.write().unwrap_or_else(PoisonError::into_inner);
            map.retain(|key, value| keep(key, value));
        }
    }
}
