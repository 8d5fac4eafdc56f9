//! A short-lived cache of whole answers for anonymous reads that many
//! callers repeat (discovery pages, agents): a hit costs no Postgres round
//! trip and no serialisation. Each instance keeps its own; an entry lives at
//! most the TTL, which bounds how stale another instance's answer can be (the
//! instance that makes a change forgets the entry at once).
//!
//! Bounded in bytes, not entries: a page weighs from a few hundred bytes to
//! tens of KB. moka's TinyLFU admission keeps the pages asked for often when
//! a long tail of one-off queries passes through, where a plain LRU (or the
//! old "start over when full") would let the tail flush the hot set.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use moka::sync::Cache;

/// What an entry costs beyond its key's and body's bytes, estimated: moka's
/// entry, its deque nodes and map slot, the `String` and `Bytes` headers.
const ENTRY_OVERHEAD: usize = 256;

pub struct PageCache(Option<Cache<String, Bytes>>);

impl PageCache {
    /// A TTL or byte bound of zero turns the cache off.
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        if ttl.is_zero() || max_bytes == 0 {
            return Self(None);
        }
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, body: &Bytes| {
                u32::try_from(key.len() + body.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        Self(Some(cache))
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.as_ref()?.get(key)
    }

    /// After a change this instance made, so it never serves it stale.
    pub fn forget(&self, key: &str) {
        if let Some(cache) = &self.0 {
            cache.invalidate(key);
        }
    }

    fn put(&self, key: String, body: Bytes) {
        if let Some(cache) = &self.0 {
            cache.insert(key, body);
        }
    }

    /// The JSON answer kept for `key`, or else `page`'s, kept; with an RFC
    /// 9211 `Cache-Status` saying which (the bench's hit rate comes from it).
    pub async fn json_response<E>(
        &self,
        key: String,
        page: impl Future<Output = Result<Bytes, E>>,
    ) -> Result<Response, E> {
        let (body, status) = match self.get(&key) {
            Some(body) => (body, HIT),
            None => {
                let body = page.await?;
                let status = if self.0.is_some() { MISS } else { BYPASS };
                self.put(key, body.clone());
                (body, status)
            }
        };
        Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (CACHE_STATUS, status)], body)
            .into_response())
    }
}

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const HIT: HeaderValue = HeaderValue::from_static("agent-registry; hit");
const MISS: HeaderValue = HeaderValue::from_static("agent-registry; fwd=miss");
/// The cache is off (`PUBLIC_READ_CACHE_MS` or `…_MAX_BYTES` is 0).
const BYPASS: HeaderValue = HeaderValue::from_static("agent-registry; fwd=bypass");

#[cfg(test)]
mod tests {
    use super::*;

    fn weighed_size(cache: &PageCache) -> u64 {
        let cache = cache.0.as_ref().expect("cache on");
        cache.run_pending_tasks();
        cache.weighted_size()
    }

    #[test]
    fn serves_an_entry_until_it_expires() {
        let cache = PageCache::new(Duration::from_millis(50), 1 << 20);
        cache.put("a".into(), Bytes::from_static(b"page"));
        assert_eq!(cache.get("a").as_deref(), Some(&b"page"[..]));
        assert_eq!(cache.get("b"), None);
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
        cache.put("a".into(), Bytes::from_static(b"page"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
    }

    /// A long tail of one-off pages, ten times the bound, passes through
    /// while a few hot pages are read between them: the bound holds throughout,
    /// and once warm the hot pages are never missed.
    #[test]
    fn holds_its_byte_bound_and_keeps_hot_pages_through_a_long_tail() {
        const MAX_BYTES: u64 = 1 << 20;
        let page = Bytes::from(vec![b'x'; 16 * 1024]);
        let cache = PageCache::new(Duration::from_secs(60), MAX_BYTES);
        let hot: Vec<String> = (0..8).map(|i| format!("hot-{i}")).collect();
        for key in &hot {
            cache.put(key.clone(), page.clone());
        }
        let mut hot_misses_after_warm_up = 0;
        for round in 0..640 {
            for key in &hot {
                if cache.get(key).is_none() {
                    hot_misses_after_warm_up += usize::from(round >= 16);
                    cache.put(key.clone(), page.clone());
                }
            }
            cache.put(format!("tail-{round}"), page.clone());
            if round % 32 == 0 {
                assert!(weighed_size(&cache) <= MAX_BYTES, "over the bound at round {round}");
            }
        }
        assert!(weighed_size(&cache) <= MAX_BYTES);
        assert_eq!(hot_misses_after_warm_up, 0, "the tail evicted hot pages");
        let kept = hot.iter().filter(|key| cache.get(key).is_some()).count();
        assert_eq!(kept, hot.len(), "every hot page survives the tail");
    }

    #[test]
    fn a_zero_ttl_or_bound_caches_nothing() {
        for cache in [PageCache::new(Duration::ZERO, 1 << 20), PageCache::new(Duration::from_secs(1), 0)] {
            cache.put("a".into(), Bytes::from_static(b"page"));
            assert_eq!(cache.get("a"), None);
        }
    }
}
