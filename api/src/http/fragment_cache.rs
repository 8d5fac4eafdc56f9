//! The JSON of rows that many answers repeat (an agent on every discovery
//! page it ranks on), each kept with the version of the row it was written
//! from: Postgres's `xmin`, the transaction that wrote that version, which
//! every change to the row replaces. A read that lists ids with their
//! versions takes the JSON of each one still current from here, so the
//! cache is never stale, and reads only the others' rows.
//!
//! Bounded in bytes like the page cache (TinyLFU keeps rows seen often
//! through a long tail of one-off ones). The TTL is not for freshness: it
//! keeps an entry from outliving the 2³² transactions after which an `xmin`
//! could come round again.

use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;
use uuid::Uuid;

/// What an entry costs beyond its JSON, estimated: moka's entry, its deque
/// nodes and map slot, the key, the version and the `Bytes` header.
const ENTRY_OVERHEAD: usize = 160;
/// Far below the time Postgres takes to use up 2³² transaction ids (it must
/// freeze every row before then anyway).
const TTL: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Fragment {
    version: i64,
    json: Bytes,
}

pub struct FragmentCache(Option<Cache<Uuid, Fragment>>);

impl FragmentCache {
    /// A bound of zero turns the cache off.
    pub fn new(max_bytes: u64) -> Self {
        if max_bytes == 0 {
            return Self(None);
        }
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &Uuid, fragment: &Fragment| {
                u32::try_from(fragment.json.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .time_to_live(TTL)
            .build();
        Self(Some(cache))
    }

    /// The JSON kept for row `id` if it was written from `version`.
    pub fn get(&self, id: Uuid, version: i64) -> Option<Bytes> {
        let fragment = self.0.as_ref()?.get(&id)?;
        (fragment.version == version).then_some(fragment.json)
    }

    /// Keeps `json`, written from `version` of row `id`, in place of any older one.
    pub fn insert(&self, id: Uuid, version: i64, json: Bytes) {
        if let Some(cache) = &self.0 {
            cache.insert(id, Fragment { version, json });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_the_version_it_was_written_from() {
        let cache = FragmentCache::new(1 << 20);
        let id = Uuid::from_u128(7);
        assert_eq!(cache.get(id, 1), None);
        cache.insert(id, 1, Bytes::from_static(b"{\"v\":1}"));
        assert_eq!(cache.get(id, 1).as_deref(), Some(&b"{\"v\":1}"[..]));
        assert_eq!(cache.get(id, 2), None, "a newer version of the row is not served the older JSON");
        cache.insert(id, 2, Bytes::from_static(b"{\"v\":2}"));
        assert_eq!(cache.get(id, 2).as_deref(), Some(&b"{\"v\":2}"[..]));
        assert_eq!(cache.get(id, 1), None, "nor an older one the newer");
        assert_eq!(cache.get(Uuid::from_u128(8), 2), None);
    }

    /// Twenty times the bound passes through while a few rows are read
    /// between them: the bound holds, and the hot rows stay.
    #[test]
    fn holds_its_byte_bound_and_keeps_hot_rows_through_a_long_tail() {
        const MAX_BYTES: u64 = 256 * 1024;
        let json = Bytes::from(vec![b'x'; 600]);
        let cache = FragmentCache::new(MAX_BYTES);
        let hot: Vec<Uuid> = (0..20).map(Uuid::from_u128).collect();
        for round in 0..9_000_u128 {
            for &id in &hot {
                if cache.get(id, 1).is_none() {
                    cache.insert(id, 1, json.clone());
                }
            }
            cache.insert(Uuid::from_u128(1_000 + round), 1, json.clone());
        }
        let entries = cache.0.as_ref().expect("cache on");
        entries.run_pending_tasks();
        assert!(entries.weighted_size() <= MAX_BYTES, "{} bytes kept", entries.weighted_size());
        assert!(entries.weighted_size() > MAX_BYTES / 2, "the tail was kept too, up to the bound");
        assert!(hot.iter().all(|&id| cache.get(id, 1).is_some()), "a hot row was evicted by the tail");
    }

    #[test]
    fn a_zero_bound_keeps_nothing() {
        let cache = FragmentCache::new(0);
        cache.insert(Uuid::from_u128(1), 1, Bytes::from_static(b"{}"));
        assert_eq!(cache.get(Uuid::from_u128(1), 1), None);
    }
}
