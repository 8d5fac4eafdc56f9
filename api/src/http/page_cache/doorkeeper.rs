//! The page cache's doorkeeper: a page is kept only on its second sighting
//! within a window, so a one-off query (most of a long tail) pays no insert
//! into the cache, no eviction and no memory for a page nobody asks for again.
//!
//! Hand-written rather than a crate's: moka keeps its own doorkeeper inside
//! its admission policy, where an entry has already been inserted; the Bloom
//! filter crates need a lock around every query. This is a fixed array of
//! atomic bits (a Bloom filter with two probes) cleared after a number of
//! new sightings, so its memory is fixed and a lookup is one hash and two
//! atomic ORs.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// 2^21 bits: 256 KiB, whatever the traffic.
const BITS: usize = 1 << 21;
/// New sightings before the bits are cleared: 2^17 keys set at most 12 % of
/// the bits, so about 1.4 % of one-off keys pass as seen before.
pub const WINDOW: u32 = 1 << 17;

pub struct Doorkeeper {
    bits: Box<[AtomicU64]>,
    /// New sightings since the last clearing.
    sightings: AtomicU32,
    /// Keyed per process, so nobody can pick keys that collide.
    hasher: RandomState,
}

impl Default for Doorkeeper {
    fn default() -> Self {
        Self {
            bits: (0..BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            sightings: AtomicU32::new(0),
            hasher: RandomState::new(),
        }
    }
}

impl Doorkeeper {
    /// Whether `key` was seen since the last clearing; notes it as seen.
    pub fn seen_before(&self, key: &str) -> bool {
        let hash = self.hasher.hash_one(key);
        // Two probes from the two halves of one 64-bit hash.
        let seen = [hash, hash >> 32].into_iter().fold(true, |seen, probe| {
            let bit = (probe as usize) % BITS;
            let mask = 1 << (bit % 64);
            let was = self.bits[bit / 64].fetch_or(mask, Ordering::Relaxed);
            seen && was & mask != 0
        });
        if !seen && self.sightings.fetch_add(1, Ordering::Relaxed) + 1 >= WINDOW {
            self.clear();
        }
        seen
    }

    fn clear(&self) {
        self.sightings.store(0, Ordering::Relaxed);
        for word in &self.bits {
            word.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_passes_on_its_second_sighting_only() {
        let doorkeeper = Doorkeeper::default();
        assert!(!doorkeeper.seen_before("capabilities=translation&limit=20"));
        assert!(doorkeeper.seen_before("capabilities=translation&limit=20"));
        assert!(doorkeeper.seen_before("capabilities=translation&limit=20"));
        assert!(!doorkeeper.seen_before("capabilities=legal&limit=20"));
    }

    /// A tail of distinct keys, many windows long: few pass, the memory
    /// never grows, and a key seen twice within a window still passes.
    #[test]
    fn a_long_tail_mostly_stays_out_and_the_memory_is_fixed() {
        let doorkeeper = Doorkeeper::default();
        let bytes = |doorkeeper: &Doorkeeper| doorkeeper.bits.len() * size_of::<AtomicU64>();
        assert_eq!(bytes(&doorkeeper), 256 * 1024);
        let tail = 4 * WINDOW;
        let passed = (0..tail).filter(|i| doorkeeper.seen_before(&format!("tail-{i}"))).count();
        assert!(passed < tail as usize / 50, "{passed} of {tail} one-off keys passed");
        assert_eq!(bytes(&doorkeeper), 256 * 1024);
        // The bits the tail set pass about 1 % of new keys (the hasher is
        // seeded per process), so take a key whose first sighting does not.
        let hot = (0..1_000)
            .map(|i| format!("hot-{i}"))
            .find(|key| !doorkeeper.seen_before(key))
            .expect("every one of 1,000 new keys passed as seen before");
        assert!(doorkeeper.seen_before(&hot), "a key seen twice within the window did not pass");
    }
}
