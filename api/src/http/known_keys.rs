//! The key a keyid names, found in Postgres and kept briefly in memory.
//!
//! A key can change (rotation) or stop signing (deactivation), and another
//! instance may be the one that changed it, so nothing here is kept for
//! long: a key found is trusted for [`KNOWN_KEY_TTL`], a keyid with no active
//! key is refused from memory for [`UNKNOWN_KEY_TTL`] (a flood of one forged
//! keyid costs one lookup per instance per interval). The instance that
//! makes the change forgets the entry at once. Entries are keyed by the
//! canonical keyid (see [`Principal::from_keyid`]), so case variants of one
//! id share one entry, and concurrent misses for a keyid share one lookup.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use moka::Expiry;
use moka::future::Cache;
use shared::domain::PublicKey;
use sqlx::PgPool;

use crate::http::error::ApiError;
use crate::http::principal::Principal;

/// The longest another instance accepts a rotated-away or deactivated key.
pub const KNOWN_KEY_TTL: Duration = Duration::from_secs(5);
/// How long a keyid with no active key is refused without asking Postgres.
pub const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(2);
/// The memory the keys may take: about 35,000 keyids. A flood of forged
/// keyids cannot push out the keys in use (moka's TinyLFU admission keeps
/// what is asked for often).
const MAX_BYTES: u64 = 16 << 20;
/// An entry beyond its keyid's bytes, estimated: the `VerifyingKey` (its
/// compressed and decompressed point), the `String` header, moka's entry.
const ENTRY_OVERHEAD: usize = 450;

pub struct KnownKeys(Cache<String, Option<VerifyingKey>>);

impl Default for KnownKeys {
    fn default() -> Self {
        Self(
            Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|keyid: &String, _: &Option<VerifyingKey>| {
                    u32::try_from(keyid.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .expire_after(ByOutcome)
                .build(),
        )
    }
}

/// Known keys and unknown keyids live for different times.
struct ByOutcome;

impl Expiry<String, Option<VerifyingKey>> for ByOutcome {
    fn expire_after_create(&self, _: &String, key: &Option<VerifyingKey>, _: Instant) -> Option<Duration> {
        Some(if key.is_some() { KNOWN_KEY_TTL } else { UNKNOWN_KEY_TTL })
    }
}

impl KnownKeys {
    /// The active key of `principal`; `None` when there is none. A key
    /// being registered is its own keyid and needs no lookup.
    pub async fn resolve(&self, db: &PgPool, principal: &Principal) -> Result<Option<VerifyingKey>, ApiError> {
        if let Principal::NewKey(key) = principal {
            return Ok(Some(*key.verifying_key()));
        }
        self.0.try_get_with(principal.to_string(), lookup(db, principal)).await.map_err(lookup_failed)
    }

    /// After this instance changed the principal's key or deactivated it.
    pub async fn forget(&self, principal: &Principal) {
        self.0.invalidate(&principal.to_string()).await;
    }
}

#[tracing::instrument(name = "sql resolve key", skip_all)]
async fn lookup(db: &PgPool, principal: &Principal) -> Result<Option<VerifyingKey>, sqlx::Error> {
    let bytes = match principal {
        Principal::Agent(id) => {
            sqlx::query_scalar!("SELECT public_key FROM agents WHERE id = $1 AND active", id.as_uuid())
                .fetch_optional(db)
                .await?
        }
        Principal::Client(id) => {
            sqlx::query_scalar!("SELECT public_key FROM clients WHERE id = $1 AND active", id.as_uuid())
                .fetch_optional(db)
                .await?
        }
        Principal::NewKey(key) => return Ok(Some(*key.verifying_key())),
    };
    Ok(bytes.and_then(|bytes| PublicKey::from_bytes(&bytes).ok()).map(|key| *key.verifying_key()))
}

/// Waiters on one lookup share its error, so it cannot be converted by
/// value; any failure to read a key is the database being unavailable.
fn lookup_failed(error: Arc<sqlx::Error>) -> ApiError {
    tracing::warn!(%error, during = "key lookup", "database unavailable");
    ApiError::Unavailable("cannot look the signing key up right now; retry shortly".into())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use shared::domain::{AgentId, ClientId};

    use super::*;

    /// A flood of distinct keyids, twice what the bound holds, each stored as
    /// `resolve` stores it (found keys and keyids with none), while a few keys
    /// in use are read between them: the bound holds, the memory is used, and
    /// the keys in use survive (the test ends well within their 5 s).
    #[tokio::test]
    async fn holds_its_byte_bound_and_keeps_the_keys_in_use_through_a_flood() {
        let known = KnownKeys::default();
        let keys: Vec<VerifyingKey> =
            (0..=u8::MAX).map(|seed| SigningKey::from_bytes(&[seed; 32]).verifying_key()).collect();
        let key = |seed: u8| Some(keys[usize::from(seed)]);
        let in_use: Vec<String> = (0..8).map(|_| Principal::Client(ClientId::generate()).to_string()).collect();
        for (seed, keyid) in in_use.iter().enumerate() {
            known.0.insert(keyid.clone(), key(seed as u8)).await;
        }
        let entry_weight = AgentId::generate().to_string().len() + ENTRY_OVERHEAD;
        let flood = 2 * MAX_BYTES as usize / entry_weight;
        let (mut in_use_missed, mut most) = (0, 0);
        for i in 0..flood {
            let keyid = Principal::Agent(AgentId::generate()).to_string();
            known.0.insert(keyid, if i % 2 == 0 { key(i as u8) } else { None }).await;
            if i % 64 == 0 {
                for keyid in &in_use {
                    in_use_missed += usize::from(known.0.get(keyid).await.is_none());
                }
            }
            if i % 4096 == 0 {
                known.0.run_pending_tasks().await;
                assert!(known.0.weighted_size() <= MAX_BYTES, "over the bound after {i} keyids");
                most = most.max(known.0.weighted_size());
            }
        }
        known.0.run_pending_tasks().await;
        assert!(known.0.weighted_size() <= MAX_BYTES);
        assert!(most > MAX_BYTES * 3 / 4, "the bound is what limits it: at most {most} bytes held");
        assert_eq!(in_use_missed, 0, "the flood pushed out keys in use");
    }
}
