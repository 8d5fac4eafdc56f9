//! Webhook secrets at rest: envelope encryption. Each secret is sealed with
//! AES-256-GCM under a data key, with its owner's id (`agt_…`/`cli_…`) as
//! associated data, so a sealed secret copied to another row does not open.
//! The data key is wrapped by a key-encryption key: Cloud KMS in the cloud
//! (`WEBHOOK_SECRET_KMS_KEY`; the API may only encrypt with it, the worker
//! only decrypt), a local key from `WEBHOOK_SECRET_KEY` in development and
//! tests. The wrapped data key travels inside each sealed secret, so nothing
//! else needs storing.
//!
//! One data key per process, made (and wrapped: one KMS call) on its first
//! seal; whoever opens keeps unwrapped data keys in memory for a while, so a
//! KMS call is made once per data key and hour, not per webhook.
//!
//! Sealed form: `1` (format), wrapping (`1` local, `2` KMS), the wrapped
//! key's length (u16, big-endian), the wrapped key, a 12-byte nonce, the
//! ciphertext with its tag. A local wrapping is itself a nonce followed by
//! the AES-256-GCM ciphertext of the data key.

mod legacy;

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use google_cloud_kms_v1::client::KeyManagementService;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::settings::{Settings, WebhookSecretKey};

pub use legacy::seal_legacy_secrets;

const FORMAT: u8 = 1;
const WRAPPED_LOCALLY: u8 = 1;
const WRAPPED_BY_KMS: u8 = 2;
const NONCE_BYTES: usize = 12;
/// Associated data of a data key's wrapping: it wraps nothing else.
const DATA_KEY_LABEL: &[u8] = b"agent-registry webhook-secret data key";
/// Unwrapped data keys kept by an opener: one per process that sealed, so few.
const OPENED_KEYS: u64 = 1024;
const OPENED_KEY_IDLE: Duration = Duration::from_secs(3600);

enum Wrapping {
    Local(Box<Aes256Gcm>),
    Kms { client: KeyManagementService, key: String },
}

/// This process's data key and its wrapped form.
struct DataKey {
    cipher: Aes256Gcm,
    wrapped: Vec<u8>,
}

pub struct Sealer {
    wrapping: Wrapping,
    current: OnceCell<DataKey>,
    /// Wrapped data key → its cipher. Concurrent misses of one key share one
    /// unwrap (one KMS call), however many webhooks go out at once.
    opened: moka::future::Cache<Vec<u8>, Arc<Aes256Gcm>>,
}

impl Sealer {
    /// From `WEBHOOK_SECRET_KEY` or `WEBHOOK_SECRET_KMS_KEY`; neither set is
    /// an error naming both. KMS uses Application Default Credentials.
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let wrapping = match &settings.webhook_secret_key {
            None => anyhow::bail!(
                "webhook secrets are encrypted at rest: set WEBHOOK_SECRET_KEY (development: `openssl rand -base64 32`) or WEBHOOK_SECRET_KMS_KEY (cloud)"
            ),
            Some(WebhookSecretKey::Local(key)) => {
                let key =
                    Aes256Gcm::new_from_slice(key.expose_secret()).context("WEBHOOK_SECRET_KEY is not 32 bytes")?;
                Wrapping::Local(Box::new(key))
            }
            Some(WebhookSecretKey::Kms { key, endpoint }) => {
                let builder = KeyManagementService::builder();
                let client = match endpoint {
                    // A local stand-in: anonymous, as for Cloud Tasks.
                    Some(endpoint) => {
                        let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                        builder.with_endpoint(endpoint).with_credentials(anonymous).build().await
                    }
                    None => builder.build().await,
                }
                .context("cannot build the Cloud KMS client")?;
                Wrapping::Kms { client, key: key.clone() }
            }
        };
        let opened = moka::future::Cache::builder().max_capacity(OPENED_KEYS).time_to_idle(OPENED_KEY_IDLE).build();
        Ok(Self { wrapping, current: OnceCell::new(), opened })
    }

    /// `secret` sealed for `owner` (the prefixed id of its agent or client).
    pub async fn seal(&self, secret: &str, owner: &str) -> anyhow::Result<Vec<u8>> {
        let key = self.current.get_or_try_init(|| self.new_data_key()).await?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: owner.as_bytes() })
            .map_err(|_| anyhow::anyhow!("cannot seal a webhook secret"))?;
        let wrapped_length = u16::try_from(key.wrapped.len()).context("the wrapped data key is too long")?;
        let mut sealed = Vec::with_capacity(4 + key.wrapped.len() + NONCE_BYTES + ciphertext.len());
        sealed.push(FORMAT);
        sealed.push(match self.wrapping {
            Wrapping::Local(_) => WRAPPED_LOCALLY,
            Wrapping::Kms { .. } => WRAPPED_BY_KMS,
        });
        sealed.extend_from_slice(&wrapped_length.to_be_bytes());
        sealed.extend_from_slice(&key.wrapped);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The secret `sealed` holds, if it was sealed for `owner`.
    pub async fn open(&self, sealed: &[u8], owner: &str) -> anyhow::Result<SecretString> {
        let parts = Parts::parse(sealed)?;
        let unwrap = async { self.unwrap(parts.wrapping, parts.wrapped_key).await.map(Arc::new) };
        let cipher = self
            .opened
            .try_get_with(parts.wrapped_key.to_vec(), unwrap)
            .await
            .map_err(|error| anyhow::anyhow!(crate::error_chain::render(&**error)))?;
        let plaintext = cipher
            .decrypt(&nonce(parts.nonce)?, Payload { msg: parts.ciphertext, aad: owner.as_bytes() })
            .map_err(|_| anyhow::anyhow!("a webhook secret does not open: altered, or sealed for another owner"))?;
        let secret = String::from_utf8(plaintext).context("a sealed webhook secret is not text")?;
        Ok(SecretString::from(secret))
    }

    async fn new_data_key(&self) -> anyhow::Result<DataKey> {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        let wrapped = match &self.wrapping {
            Wrapping::Local(wrapping) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let ciphertext = wrapping
                    .encrypt(&nonce, Payload { msg: &key[..], aad: DATA_KEY_LABEL })
                    .map_err(|_| anyhow::anyhow!("cannot wrap a data key"))?;
                [&nonce[..], &ciphertext].concat()
            }
            Wrapping::Kms { client, key: name } => {
                let response = client
                    .encrypt()
                    .set_name(name)
                    .set_plaintext(key.to_vec())
                    .set_additional_authenticated_data(DATA_KEY_LABEL)
                    .send()
                    .await
                    .context("Cloud KMS did not wrap a data key")?;
                response.ciphertext.to_vec()
            }
        };
        Ok(DataKey { cipher: Aes256Gcm::new(&key), wrapped })
    }

    async fn unwrap(&self, wrapping: u8, wrapped: &[u8]) -> anyhow::Result<Aes256Gcm> {
        let key = match (&self.wrapping, wrapping) {
            (Wrapping::Local(unwrapping), WRAPPED_LOCALLY) => {
                anyhow::ensure!(wrapped.len() > NONCE_BYTES, "a locally wrapped data key is too short");
                let (nonce, ciphertext) = wrapped.split_at(NONCE_BYTES);
                unwrapping
                    .decrypt(&self::nonce(nonce)?, Payload { msg: ciphertext, aad: DATA_KEY_LABEL })
                    .map_err(|_| anyhow::anyhow!("a data key does not unwrap with WEBHOOK_SECRET_KEY (another key?)"))?
            }
            (Wrapping::Kms { client, key }, WRAPPED_BY_KMS) => client
                .decrypt()
                .set_name(key)
                .set_ciphertext(wrapped.to_vec())
                .set_additional_authenticated_data(DATA_KEY_LABEL)
                .send()
                .await
                .context("Cloud KMS did not unwrap a data key")?
                .plaintext
                .to_vec(),
            (Wrapping::Local(_), _) => {
                anyhow::bail!("a webhook secret was sealed under Cloud KMS, and only WEBHOOK_SECRET_KEY is set")
            }
            (Wrapping::Kms { .. }, _) => {
                anyhow::bail!("a webhook secret was sealed under WEBHOOK_SECRET_KEY, and WEBHOOK_SECRET_KMS_KEY is set")
            }
        };
        Aes256Gcm::new_from_slice(&key).map_err(|_| anyhow::anyhow!("an unwrapped data key is not 32 bytes"))
    }
}

fn nonce(bytes: &[u8]) -> anyhow::Result<Nonce<aes_gcm::aead::consts::U12>> {
    let bytes: [u8; NONCE_BYTES] =
        bytes.try_into().map_err(|_| anyhow::anyhow!("a nonce is not {NONCE_BYTES} bytes"))?;
    Ok(bytes.into())
}

/// A sealed secret taken apart.
struct Parts<'a> {
    wrapping: u8,
    wrapped_key: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Parts<'a> {
    fn parse(sealed: &'a [u8]) -> anyhow::Result<Self> {
        let malformed = || anyhow::anyhow!("a sealed webhook secret is malformed");
        let [format, wrapping, high, low, rest @ ..] = sealed else {
            return Err(malformed());
        };
        anyhow::ensure!(*format == FORMAT, "a sealed webhook secret has unknown format {format}");
        let wrapped_length = usize::from(u16::from_be_bytes([*high, *low]));
        let (wrapped_key, rest) = rest.split_at_checked(wrapped_length).ok_or_else(malformed)?;
        let (nonce, ciphertext) = rest.split_at_checked(NONCE_BYTES).ok_or_else(malformed)?;
        Ok(Self { wrapping: *wrapping, wrapped_key, nonce, ciphertext })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsSource;

    async fn local_sealer(key: &str) -> Sealer {
        let source = SettingsSource::from_pairs([
            ("DATABASE_URL", "postgres://localhost/db"),
            ("REDIS_URL", "redis://localhost"),
            ("WEBHOOK_SECRET_KEY", key),
        ]);
        Sealer::from_settings(&Settings::from_source(&source).unwrap()).await.unwrap()
    }

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    #[tokio::test]
    async fn a_sealed_secret_opens_for_its_owner_only() {
        let sealer = local_sealer(KEY).await;
        let sealed = sealer.seal("whsec_c2VjcmV0", "agt_1").await.unwrap();
        assert!(!sealed.windows(6).any(|window| window == b"whsec_"), "no plaintext in the sealed form");
        assert_eq!(sealer.open(&sealed, "agt_1").await.unwrap().expose_secret(), "whsec_c2VjcmV0");
        assert!(sealer.open(&sealed, "agt_2").await.is_err(), "another row's id is other associated data");

        // Another process (a new data key) with the same key opens it: the worker.
        let worker = local_sealer(KEY).await;
        assert_eq!(worker.open(&sealed, "agt_1").await.unwrap().expose_secret(), "whsec_c2VjcmV0");
        let stranger = local_sealer(OTHER_KEY).await;
        assert!(stranger.open(&sealed, "agt_1").await.is_err(), "another key does not unwrap the data key");

        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&altered, "agt_1").await.is_err());
        for truncated in [&sealed[..3], &sealed[..20], &[][..]] {
            assert!(sealer.open(truncated, "agt_1").await.is_err());
        }
    }

    #[tokio::test]
    async fn without_a_key_nothing_starts() {
        let source = SettingsSource::from_pairs([
            ("DATABASE_URL", "postgres://localhost/db"),
            ("REDIS_URL", "redis://localhost"),
        ]);
        let error = Sealer::from_settings(&Settings::from_source(&source).unwrap()).await.err().unwrap().to_string();
        assert!(error.contains("WEBHOOK_SECRET_KEY") && error.contains("WEBHOOK_SECRET_KMS_KEY"), "{error}");
    }

    #[tokio::test]
    async fn one_data_key_per_process_and_a_fresh_nonce_per_seal() {
        let sealer = local_sealer(KEY).await;
        let first = sealer.seal("whsec_same", "cli_1").await.unwrap();
        let second = sealer.seal("whsec_same", "cli_1").await.unwrap();
        assert_ne!(first, second, "fresh nonces");
        let (first, second) = (Parts::parse(&first).unwrap(), Parts::parse(&second).unwrap());
        assert_eq!(first.wrapped_key, second.wrapped_key, "one data key, wrapped once");
        assert_ne!(first.nonce, second.nonce);
    }

    /// Secrets sealed by more processes (data keys) than it keeps: the
    /// unwrapped keys held stay within the bound, and each still opens.
    #[tokio::test]
    async fn keeps_at_most_its_bound_of_opened_data_keys() {
        let opener = local_sealer(KEY).await;
        let processes = OPENED_KEYS as usize + 100;
        for process in 0..processes {
            let owner = format!("agt_{process}");
            let sealed = local_sealer(KEY).await.seal("whsec_x", &owner).await.unwrap();
            assert_eq!(opener.open(&sealed, &owner).await.unwrap().expose_secret(), "whsec_x");
        }
        opener.opened.run_pending_tasks().await;
        let held = opener.opened.entry_count();
        assert!(held <= OPENED_KEYS && held > OPENED_KEYS / 2, "{held} opened data keys held");
    }
}
