//! A short-lived cache of whole answers for anonymous reads that many
//! callers repeat (discovery pages, agents): a hit costs no Postgres round
//! trip and no serialisation. Each instance keeps its own; an entry lives at
//! most the TTL, which bounds how stale another instance's answer can be (the
//! instance that makes a change forgets the entry at once). Bounded in size:
//! when full, expired entries go first, and if none has expired the cache
//! starts over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub struct PageCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl PageCache {
    /// A TTL of zero turns the cache off.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(key) {
            Some((expires, body)) if *expires > Instant::now() => Some(body.clone()),
            _ => None,
        }
    }

    /// After a change this instance made, so it never serves it stale.
    pub fn forget(&self, key: &str) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }

    pub fn put(&self, key: String, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (now + self.ttl, body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_an_entry_until_it_expires() {
        let cache = PageCache::new(Duration::from_millis(50), 10);
        cache.put("a".into(), Bytes::from_static(b"page"));
        assert_eq!(cache.get("a").as_deref(), Some(&b"page"[..]));
        assert_eq!(cache.get("b"), None);
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
        cache.put("a".into(), Bytes::from_static(b"page"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = PageCache::new(Duration::from_secs(60), 2);
        for key in ["a", "b", "c"] {
            cache.put(key.into(), Bytes::from_static(b"page"));
        }
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert!(cache.get("c").is_some(), "the newest entry is kept");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = PageCache::new(Duration::ZERO, 10);
        cache.put("a".into(), Bytes::from_static(b"page"));
        assert_eq!(cache.get("a"), None);
    }
}
