//! Postgres, Redis, and the key that wraps webhook secrets at rest: what
//! both services connect to or decrypt with.

use std::fmt;
use std::time::Duration;

use secrecy::{SecretSlice, SecretString};

use super::declare::{
    Refusal, default, from_str, optional, positive, required, resource_name, seconds, text, variables,
};
use super::source::{SettingsError, SettingsSource};

variables! {
    /// Postgres connection URL, e.g. postgres://postgres@127.0.0.1:5432/agent_registry.
    DATABASE_URL: SecretString = required().secret().parse(|raw| secret_url(raw, &["postgres", "postgresql"]));
    /// Postgres connections per process, in all (the API's include DISCOVERY_DATABASE_CONNECTIONS).
    DATABASE_MAX_CONNECTIONS: u32 = default("18").parse(positive);
    /// API only: of DATABASE_MAX_CONNECTIONS, the connections that run one generic plan per statement:
    /// discovery by tag (planning it per request cost more than running it, and grew with the catalog)
    /// and the statement that creates concurrent requests' jobs; 0: they share the pool, and plan each
    /// statement anew. Below DATABASE_MAX_CONNECTIONS.
    DISCOVERY_DATABASE_CONNECTIONS: u32 = default("8").parse(from_str);
    /// API only: Postgres URL of a streaming read replica of DATABASE_URL's database; empty: none. Discovery
    /// and the other public reads run there while it lags at most READ_REPLICA_MAX_LAG; owner reads and
    /// writes always run on DATABASE_URL. Its pools are sized as DATABASE_URL's.
    DATABASE_READ_URL: Option<SecretString> = default("").secret().parse(optional_secret_url);
    /// API only: seconds the read replica may lag behind DATABASE_URL before public reads go back to the
    /// primary (they return once it has caught up).
    READ_REPLICA_MAX_LAG: Duration = default("5").parse(seconds);
    /// Redis connection URL, e.g. redis://127.0.0.1:6379/0.
    REDIS_URL: SecretString = required().secret().parse(|raw| secret_url(raw, &["redis", "rediss"]));
    /// Number of Redis connections.
    REDIS_POOL_SIZE: usize = default("4").parse(positive);
    /// Prefix of every Redis key (nonces, rate limits), so deployments can share a Redis.
    REDIS_KEY_PREFIX: String = default("ar:").parse(text);
    /// PEM CA certificate(s) that sign the Redis server certificate (Memorystore with in-transit
    /// encryption, rediss://); empty: the system roots.
    REDIS_CA_CERT: Option<String> = default("").parse(optional);
    /// 32 random bytes in base64 (`openssl rand -base64 32`): the local key wrapping the data keys
    /// webhook secrets are encrypted with at rest (development, tests). Empty in the cloud, where
    /// WEBHOOK_SECRET_KMS_KEY does it; the services need one of the two.
    WEBHOOK_SECRET_KEY: Option<SecretSlice<u8>> = default("").secret().parse(local_key);
    /// Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) wrapping the data keys webhook
    /// secrets are encrypted with at rest: the API encrypts, the worker decrypts. Empty: WEBHOOK_SECRET_KEY.
    WEBHOOK_SECRET_KMS_KEY: Option<String> = default("").parse(kms_key);
    /// Cloud KMS API endpoint override (a local stand-in, with anonymous credentials); empty: Google's,
    /// with ADC.
    WEBHOOK_SECRET_KMS_ENDPOINT: Option<String> = default("").parse(optional);
}

/// A URL with one of `schemes`; the reason never shows the value.
fn secret_url(raw: &str, schemes: &[&str]) -> Result<SecretString, Refusal> {
    let scheme = raw.split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
    if !schemes.contains(&scheme) {
        return Err(Refusal::Invalid(format!("must be a URL starting with {}://", schemes.join(":// or "))));
    }
    Ok(SecretString::from(raw.to_owned()))
}

/// [`secret_url`] for Postgres, or nothing when empty.
fn optional_secret_url(raw: &str) -> Result<Option<SecretString>, Refusal> {
    if raw.is_empty() {
        return Ok(None);
    }
    secret_url(raw, &["postgres", "postgresql"]).map(Some)
}

fn local_key(raw: &str) -> Result<Option<SecretSlice<u8>>, Refusal> {
    use base64::Engine;
    if raw.is_empty() {
        return Ok(None);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| Refusal::Invalid("must be base64 (e.g. `openssl rand -base64 32`)".into()))?;
    if bytes.len() != 32 {
        return Err(Refusal::Invalid(format!("must be 32 bytes in base64, got {} bytes", bytes.len())));
    }
    Ok(Some(SecretSlice::from(bytes)))
}

fn kms_key(raw: &str) -> Result<Option<String>, Refusal> {
    if raw.is_empty() {
        return Ok(None);
    }
    resource_name(raw, &["projects", "locations", "keyRings", "cryptoKeys"]).map(Some)
}

/// The key that wraps the data keys webhook secrets are encrypted with.
#[derive(Clone)]
pub enum WebhookSecretKey {
    /// `WEBHOOK_SECRET_KEY`: 32 bytes.
    Local(SecretSlice<u8>),
    /// `WEBHOOK_SECRET_KMS_KEY`: a Cloud KMS key's full name, and where
    /// the KMS API is (`None`: Google's).
    Kms { key: String, endpoint: Option<String> },
}

/// Only which kind, never the key.
impl fmt::Debug for WebhookSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Local([redacted])"),
            Self::Kms { key, endpoint } => f.debug_struct("Kms").field("key", key).field("endpoint", endpoint).finish(),
        }
    }
}

/// `WEBHOOK_SECRET_KEY` or `WEBHOOK_SECRET_KMS_KEY`, not both; `None`:
/// neither (the services refuse to start, other tools need none).
pub(super) fn webhook_secret_key(source: &SettingsSource) -> Result<Option<WebhookSecretKey>, SettingsError> {
    match (WEBHOOK_SECRET_KEY.read(source)?, WEBHOOK_SECRET_KMS_KEY.read(source)?) {
        (Some(_), Some(_)) => Err(SettingsError::Malformed {
            name: WEBHOOK_SECRET_KEY.variable.name,
            reason: "set it or WEBHOOK_SECRET_KMS_KEY, not both".into(),
        }),
        (Some(local), None) => Ok(Some(WebhookSecretKey::Local(local))),
        (None, Some(key)) => {
            Ok(Some(WebhookSecretKey::Kms { key, endpoint: WEBHOOK_SECRET_KMS_ENDPOINT.read(source)? }))
        }
        (None, None) => Ok(None),
    }
}
