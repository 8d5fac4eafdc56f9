//! Signing requests the way the API checks them: HTTP Message Signatures
//! (RFC 9421) with Ed25519, covering `@method`, `@target-uri`, when there
//! is a body `content-digest` (RFC 9530, sha-256), and the headers given
//! (`idempotency-key` when one is sent); parameters `created`, `keyid`,
//! `nonce`, `alg` and optionally `expires`. The API's own tests and tools sign with this;
//! any RFC 9421 library can do the same (docs/API.md shows how).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use httpsig_hyper::prelude::message_component::HttpMessageComponentId;
use httpsig_hyper::prelude::{AlgorithmName, HttpSignatureParams, SecretKey};
use httpsig_hyper::{ContentDigestType, MessageSignatureReq, RequestContentDigest};

/// The components every signed request covers.
pub const COVERED_COMPONENTS: &[&str] = &["@method", "@target-uri"];
/// Covered as well when the request has a body.
pub const DIGEST_COMPONENT: &str = "content-digest";
/// Covered as well when the request carries one (the API refuses it
/// otherwise: an intermediary could strip it and turn a retry into a second job).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The label of our signature in `Signature-Input` / `Signature`.
pub const SIGNATURE_LABEL: &str = "sig1";

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SignError(String);

/// An Ed25519 private key and the key id the API knows it by: an agent or
/// client id, or — to register that key — the base64 public key itself.
pub struct RequestSigner {
    key: SecretKey,
    keyid: String,
}

impl RequestSigner {
    /// From the 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32], keyid: impl Into<String>) -> Result<Self, SignError> {
        let key = SecretKey::from_bytes(&AlgorithmName::Ed25519, seed).map_err(|e| SignError(e.to_string()))?;
        Ok(Self { key, keyid: keyid.into() })
    }

    /// From a PKCS#8 PEM file such as `openssl genpkey -algorithm ed25519` writes.
    pub fn from_pem(pem: &str, keyid: impl Into<String>) -> Result<Self, SignError> {
        let key = SecretKey::from_pem(&AlgorithmName::Ed25519, pem).map_err(|e| SignError(e.to_string()))?;
        Ok(Self { key, keyid: keyid.into() })
    }

    pub fn with_keyid(self, keyid: impl Into<String>) -> Self {
        Self { keyid: keyid.into(), ..self }
    }

    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Headers to add to `method url` with this `body`: `Content-Digest`
    /// (when there is a body), `Signature-Input` and `Signature`. A fresh
    /// random nonce each time; `created` is now.
    pub async fn sign(&self, method: &str, url: &str, body: &[u8]) -> Result<Vec<(String, String)>, SignError> {
        self.sign_with(method, url, body, &SignOptions::default()).await
    }

    /// As [`sign`](Self::sign), with a chosen `created` time and nonce.
    pub async fn sign_at(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        created: u64,
        nonce: &str,
    ) -> Result<Vec<(String, String)>, SignError> {
        self.sign_with(
            method,
            url,
            body,
            &SignOptions { created: Some(created), nonce: Some(nonce), ..SignOptions::default() },
        )
        .await
    }

    /// As [`sign`](Self::sign), with [`SignOptions`]. The headers to cover
    /// are among those returned: send them as returned.
    pub async fn sign_with(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        options: &SignOptions<'_>,
    ) -> Result<Vec<(String, String)>, SignError> {
        let error = |e: &dyn std::fmt::Display| SignError(e.to_string());
        let created = match options.created {
            Some(created) => created,
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| error(&e))?.as_secs(),
        };
        let nonce = options.nonce.map_or_else(random_nonce, str::to_owned);
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in options.headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::copy_from_slice(body))).map_err(|e| error(&e))?;
        let mut components = COVERED_COMPONENTS.to_vec();
        let mut request = if body.is_empty() {
            request.map(|body| body.map_err(|never| match never {}).boxed())
        } else {
            components.push(DIGEST_COMPONENT);
            request.set_content_digest(&ContentDigestType::Sha256).await.map_err(|e| error(&e))?
        };
        components.extend(options.headers.iter().map(|(name, _)| *name));
        let components = components
            .iter()
            .map(|component| HttpMessageComponentId::try_from(*component))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(&e))?;
        let mut params = HttpSignatureParams::try_new(&components).map_err(|e| error(&e))?;
        params.set_created(created).set_nonce(&nonce).set_keyid(&self.keyid).set_alg(&AlgorithmName::Ed25519);
        if let Some(expires) = options.expires {
            params.set_expires(expires);
        }
        request.set_message_signature(&params, &self.key, Some(SIGNATURE_LABEL)).await.map_err(|e| error(&e))?;

        Ok(request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect())
    }
}

/// What [`RequestSigner::sign_with`] may add to a plain signature.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignOptions<'a> {
    /// Headers to send and cover, e.g. `("idempotency-key", "order-42")`
    /// (lower-case names).
    pub headers: &'a [(&'a str, &'a str)],
    /// Default: now.
    pub created: Option<u64>,
    /// Default: 16 random bytes.
    pub nonce: Option<&'a str>,
    /// The `expires` parameter (unix time), which the API enforces when sent.
    pub expires: Option<u64>,
}

fn random_nonce() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
