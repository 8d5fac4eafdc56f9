//! Google's token-signing keys (a JWKS, `GOOGLE_OIDC_JWKS_URL`), fetched
//! when first needed and kept for as long as the answer's
//! `Cache-Control: max-age` says (within bounds). A token naming a key not
//! in the set fetches it again (Google rotates its keys), at most once per
//! [`MIN_REFETCH`]: tokens with made-up key ids cannot make the worker hammer
//! the endpoint. One fetch at a time; when a fetch fails, the keys held
//! stay in use.

use shared::error_chain::Causes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use reqwest::header::{CACHE_CONTROL, HeaderMap};
use tokio::sync::{Mutex, RwLock};

/// Kept this long when the answer says nothing (Google says ~6 h).
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Bounds on what `max-age` may ask for.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most one fetch for an unknown key id in this long.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// A JWKS is a few keys; more is not Google's answer.
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_KEYS: usize = 32;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Held {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// Until when `keys` are fresh (`None`: never fetched).
    fresh_until: Option<Instant>,
    fetched_at: Option<Instant>,
}

pub struct GoogleKeys {
    url: String,
    http: reqwest::Client,
    held: RwLock<Held>,
    /// Held while fetching, so concurrent pushes wait for one fetch.
    fetching: Mutex<()>,
}

impl GoogleKeys {
    pub fn new(url: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the JWKS client")?;
        Ok(Self { url, http, held: RwLock::default(), fetching: Mutex::new(()) })
    }

    /// The key `kid`, fetching the set when it is stale or lacks it (within
    /// the refetch bound); `None` when Google has no such key.
    pub async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        if let Some(key) = self.fresh_key(kid).await {
            return Some(key);
        }
        let _fetching = self.fetching.lock().await;
        // Another push may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid).await {
            return Some(key);
        }
        let recently_fetched = {
            let held = self.held.read().await;
            held.fetched_at.is_some_and(|at| at.elapsed() < MIN_REFETCH)
        };
        if !recently_fetched {
            match self.fetch().await {
                Ok(fetched) => *self.held.write().await = fetched,
                Err(error) => {
                    tracing::warn!(
                        error = %Causes(&*error),
                        "cannot fetch Google's signing keys; keeping those held"
                    );
                    // Counts as a fetch for the refetch bound.
                    self.held.write().await.fetched_at = Some(Instant::now());
                }
            }
        }
        self.held.read().await.keys.get(kid).cloned()
    }

    async fn fresh_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let held = self.held.read().await;
        let fresh = held.fresh_until.is_some_and(|until| until > Instant::now());
        fresh.then(|| held.keys.get(kid).cloned()).flatten()
    }

    async fn fetch(&self) -> anyhow::Result<Held> {
        let response = self.http.get(&self.url).send().await?.error_for_status()?;
        let ttl = max_age(response.headers()).unwrap_or(DEFAULT_TTL).clamp(MIN_TTL, MAX_TTL);
        if response.content_length().is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            anyhow::bail!("the JWKS is larger than {MAX_BODY_BYTES} bytes");
        }
        let body = response.bytes().await?;
        anyhow::ensure!(body.len() <= MAX_BODY_BYTES, "the JWKS is larger than {MAX_BODY_BYTES} bytes");
        let set: JwkSet = serde_json::from_slice(&body).context("the JWKS is not a JSON Web Key Set")?;
        anyhow::ensure!(set.keys.len() <= MAX_KEYS, "the JWKS has more than {MAX_KEYS} keys");
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                // A key that is not an RSA signing key is skipped, not fatal.
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(key)))
            })
            .collect();
        let now = Instant::now();
        Ok(Held { keys, fresh_until: Some(now + ttl), fetched_at: Some(now) })
    }
}

/// `max-age` of a `Cache-Control` header (`no-store`/`no-cache`: zero).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|directive| {
        let directive = directive.to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return Some(Duration::ZERO);
        }
        let seconds = directive.strip_prefix("max-age=")?.trim_matches('"').parse().ok()?;
        Some(Duration::from_secs(seconds))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, value.parse().unwrap());
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        // What Google sends.
        let google = headers("public, max-age=19903, must-revalidate, no-transform");
        assert_eq!(max_age(&google), Some(Duration::from_secs(19_903)));
        assert_eq!(max_age(&headers("Max-Age=60")), Some(Duration::from_secs(60)));
        assert_eq!(max_age(&headers("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&headers("public")), None);
        assert_eq!(max_age(&headers("max-age=soon")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
