//! A short-lived cache of whole answers for anonymous reads that many
//! callers repeat (discovery pages, agents): a hit costs no Postgres round
//! trip and no serialisation. Each instance keeps its own; an entry lives at
//! most the TTL, which bounds how stale another instance's answer can be (the
//! instance that makes a change forgets the entry at once).
//!
//! Bounded in bytes, not entries: a page weighs from a few hundred bytes to
//! tens of KB. moka's TinyLFU admission keeps the pages asked for often when
//! a long tail of one-off queries passes through, where a plain LRU (or the
//! old "start over when full") would let the tail flush the hot set. A
//! [`Doorkeeper`] in front keeps a page only on its second sighting, so a
//! one-off query costs no more than with the cache off.

mod doorkeeper;

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use moka::sync::Cache;

use doorkeeper::Doorkeeper;

/// What an entry costs beyond its key's and body's bytes, estimated: moka's
/// entry, its deque nodes and map slot, the `String` and `Bytes` headers.
const ENTRY_OVERHEAD: usize = 256;

pub struct PageCache(Option<Admitted>);

/// The pages kept, and what decides which are.
struct Admitted {
    pages: Cache<String, Bytes>,
    doorkeeper: Doorkeeper,
}

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
        Self(Some(Admitted { pages: cache, doorkeeper: Doorkeeper::default() }))
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.as_ref()?.pages.get(key)
    }

    /// After a change this instance made, so it never serves it stale.
    pub fn forget(&self, key: &str) {
        if let Some(cache) = &self.0 {
            cache.pages.invalidate(key);
        }
    }

    /// Keeps `body` for `key` if the key was asked for before (within the
    /// doorkeeper's window).
    fn offer(&self, key: String, body: Bytes) {
        if let Some(cache) = &self.0
            && cache.doorkeeper.seen_before(&key)
        {
            cache.pages.insert(key, body);
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
                self.offer(key, body.clone());
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
        let pages = &cache.0.as_ref().expect("cache on").pages;
        pages.run_pending_tasks();
        pages.weighted_size()
    }

    /// Offered twice, as a page asked for twice is.
    fn keep(cache: &PageCache, key: &str, body: &Bytes) {
        cache.offer(key.into(), body.clone());
        cache.offer(key.into(), body.clone());
    }

    #[test]
    fn serves_an_entry_until_it_expires() {
        let cache = PageCache::new(Duration::from_millis(50), 1 << 20);
        let page = Bytes::from_static(b"page");
        keep(&cache, "a", &page);
        assert_eq!(cache.get("a").as_deref(), Some(&b"page"[..]));
        assert_eq!(cache.get("b"), None);
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
        keep(&cache, "a", &page);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
    }

    /// A pure tail of one-off pages is never kept: it costs no insert and no
    /// memory; the second offer of a page keeps it.
    #[test]
    fn keeps_a_page_on_its_second_sighting_only() {
        let cache = PageCache::new(Duration::from_secs(60), 1 << 20);
        let page = Bytes::from(vec![b'x'; 1024]);
        for i in 0..2_000 {
            cache.offer(format!("tail-{i}"), page.clone());
        }
        let kept = (0..2_000).filter(|i| cache.get(&format!("tail-{i}")).is_some()).count();
        assert!(kept < 40, "{kept} of 2,000 one-off pages were kept");
        cache.offer("hot".into(), page.clone());
        assert_eq!(cache.get("hot"), None, "kept on its first sighting");
        cache.offer("hot".into(), page.clone());
        assert_eq!(cache.get("hot"), Some(page));
    }

    /// A long tail of pages, ten times the bound, each asked for twice (so
    /// the doorkeeper lets them in), passes through while a few hot pages are
    /// read between them: the bound holds throughout, and once warm the hot
    /// pages are never missed.
    #[test]
    fn holds_its_byte_bound_and_keeps_hot_pages_through_a_long_tail() {
        const MAX_BYTES: u64 = 1 << 20;
        let page = Bytes::from(vec![b'x'; 16 * 1024]);
        let cache = PageCache::new(Duration::from_secs(60), MAX_BYTES);
        let hot: Vec<String> = (0..8).map(|i| format!("hot-{i}")).collect();
        let mut hot_misses_after_warm_up = 0;
        for round in 0..640 {
            for key in &hot {
                if cache.get(key).is_none() {
                    hot_misses_after_warm_up += usize::from(round >= 16);
                    cache.offer(key.clone(), page.clone());
                }
            }
            keep(&cache, &format!("tail-{round}"), &page);
            if round % 32 == 0 {
                assert!(weighed_size(&cache) <= MAX_BYTES, "over the bound at round {round}");
            }
        }
        assert!(weighed_size(&cache) <= MAX_BYTES);
        assert!(weighed_size(&cache) > MAX_BYTES / 2, "the tail was kept too, up to the bound");
        assert_eq!(hot_misses_after_warm_up, 0, "the tail evicted hot pages");
        let kept = hot.iter().filter(|key| cache.get(key).is_some()).count();
        assert_eq!(kept, hot.len(), "every hot page survives the tail");
    }

    #[test]
    fn a_zero_ttl_or_bound_caches_nothing() {
        for cache in [PageCache::new(Duration::ZERO, 1 << 20), PageCache::new(Duration::from_secs(1), 0)] {
            keep(&cache, "a", &Bytes::from_static(b"page"));
            assert_eq!(cache.get("a"), None);
        }
    }
}
