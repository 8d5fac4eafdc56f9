//! The platform's keys: `PLATFORM_SIGNING_KEY` signs (Agent Cards, job
//! receipts); it and `PLATFORM_SIGNING_KEY_PREVIOUS` are published as a JWK
//! Set at `/.well-known/jwks.json` (served by `features::jwks`), so anything either signed verifies
//! offline with a standard JOSE library. Each key's `kid` is its RFC 7638
//! thumbprint, so a key names itself and no registry of key ids is needed.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use shared::platform_key::PlatformSigningKey;
use shared::settings::PLATFORM_SIGNING_KEY;
use utoipa::ToSchema;

/// A JWK Set of Ed25519 public keys.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JsonWebKeySet {
    /// The signing key first, then the previous one during a rotation.
    pub keys: Vec<JsonWebKey>,
}

/// An Ed25519 public key as a JWK (RFC 8037).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JsonWebKey {
    /// `OKP`.
    #[schema(example = "OKP")]
    pub kty: &'static str,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    /// The public key, base64url without padding.
    pub x: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub key_use: &'static str,
    /// `EdDSA`.
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    /// The key's RFC 7638 SHA-256 thumbprint, base64url: the `kid` of the JWS headers it signed.
    pub kid: String,
}

/// A JWS whose payload travels on its own (RFC 7515 appendix F), as A2A
/// Agent Card signatures are: the payload is the canonical card.
pub struct DetachedSignature {
    /// Base64url of the protected header.
    pub protected: String,
    /// Base64url of the signature over `protected.base64url(payload)`.
    pub signature: String,
}

pub struct PlatformKeys {
    signing: EncodingKey,
    kid: String,
    key_set: JsonWebKeySet,
}

impl PlatformKeys {
    /// The API cannot start without a signing key; the worker never builds this.
    pub fn new(current: Option<&PlatformSigningKey>, previous: Option<&PlatformSigningKey>) -> anyhow::Result<Self> {
        let current = current.ok_or_else(|| PLATFORM_SIGNING_KEY.variable.missing())?;
        let current_jwk = public_jwk(current.signing_key())?;
        let mut keys = vec![current_jwk.clone()];
        if let Some(previous) = previous {
            keys.push(public_jwk(previous.signing_key())?);
        }
        let der = current.signing_key().to_pkcs8_der().context("the signing key encodes as PKCS#8")?;
        Ok(Self {
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            kid: current_jwk.kid,
            key_set: JsonWebKeySet { keys },
        })
    }

    pub fn key_set(&self) -> &JsonWebKeySet {
        &self.key_set
    }

    /// A compact JWS (a JWT) of `claims`, `typ: JWT`, with the signing key's `kid`.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).context("signing claims")
    }

    /// A detached JWS over `payload`, header `{"alg":"EdDSA","kid":…,"typ":"JOSE"}`.
    pub fn sign_detached(&self, payload: &[u8]) -> anyhow::Result<DetachedSignature> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JOSE".into());
        header.kid = Some(self.kid.clone());
        let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        let signing_input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.signing, Algorithm::EdDSA)
            .context("signing a detached payload")?;
        Ok(DetachedSignature { protected, signature })
    }
}

/// The public half of `key` as a JWK, its `kid` the RFC 7638 thumbprint.
fn public_jwk(key: &SigningKey) -> anyhow::Result<JsonWebKey> {
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let decoding = DecodingKey::from_ed_components(&x).context("an Ed25519 public key")?;
    let thumbprint = Jwk::from_decoding_key(&decoding, Some(Algorithm::EdDSA))
        .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
        .context("the key's thumbprint")?;
    Ok(JsonWebKey { kty: "OKP", crv: "Ed25519", x, key_use: "sig", alg: "EdDSA", kid: thumbprint })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Validation, decode, decode_header};

    use super::*;

    /// RFC 8037 appendix A.1 (the private key) and A.3 (its thumbprint).
    const RFC8037_SEED: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    fn key(seed: &[u8]) -> PlatformSigningKey {
        PlatformSigningKey::from_seed(seed.try_into().unwrap())
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let rfc = key(&URL_SAFE_NO_PAD.decode(RFC8037_SEED).unwrap());
        let keys = PlatformKeys::new(Some(&rfc), None).unwrap();
        let published = &keys.key_set().keys[0];
        assert_eq!((published.x.as_str(), published.kid.as_str()), (RFC8037_X, RFC8037_THUMBPRINT));
    }

    #[test]
    fn signed_claims_verify_against_the_published_key_and_the_previous_key_is_published_too() {
        let keys = PlatformKeys::new(Some(&key(&[1; 32])), Some(&key(&[2; 32]))).unwrap();
        assert_eq!(keys.key_set().keys.len(), 2);
        let token = keys.sign_claims(&serde_json::json!({"job_id": "job_1"})).unwrap();
        let kid = decode_header(&token).unwrap().kid.unwrap();
        let jwk = keys.key_set().keys.iter().find(|key| key.kid == kid).unwrap();
        let decoding = DecodingKey::from_ed_components(&jwk.x).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        let claims = decode::<serde_json::Value>(&token, &decoding, &validation).unwrap().claims;
        assert_eq!(claims["job_id"], "job_1");
        assert_eq!(kid, keys.key_set().keys[0].kid, "the current key signs");
    }

    #[test]
    fn the_api_refuses_to_start_without_a_key() {
        let err = PlatformKeys::new(None, None).err().unwrap().to_string();
        assert!(err.contains("PLATFORM_SIGNING_KEY is missing"), "{err}");
    }
}
