//! Verifying an RFC 9421 signature: the parsing and the signature base come
//! from the `httpsig` crates; the policy (what must be covered, how fresh,
//! which key, nonce once) is here.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use base64::Engine;
use bytes::Bytes;
use fred::prelude::KeysInterface;
use fred::types::{Expiration, SetOptions};
use http_body_util::Full;
use httpsig_hyper::prelude::{AlgorithmName, HttpSignatureParams, PublicKey as VerifyingKey, SecretKey};
use httpsig_hyper::{MessageSignature, MessageSignatureReq, RequestContentDigest};
use shared::domain::{AgentId, ClientId, PublicKey};
use shared::signing::{COVERED_COMPONENTS, DIGEST_COMPONENT};

use super::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// How far in the future `created` may be: clocks drift.
const MAX_CLOCK_SKEW_SECONDS: i64 = 5;
const MAX_NONCE_LEN: usize = 128;
const MAX_KEYID_LEN: usize = 64;

/// Which check refused a request; each is a 401 with its own problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("the request is not signed: send Signature-Input and Signature headers (RFC 9421)")]
    Missing,
    #[error("the signature headers are malformed: {0}")]
    Malformed(String),
    #[error("the signature's created time is more than {0} seconds old")]
    Expired(u64),
    #[error("the signature's created time is in the future")]
    FromFuture,
    #[error("no key is registered under this keyid")]
    UnknownKey,
    #[error("the signature does not verify with the key of this keyid")]
    BadSignature,
    #[error("the Content-Digest does not match the body")]
    DigestMismatch,
    #[error("this nonce was already used; sign each request with a new nonce")]
    ReplayedNonce,
}

impl AuthFailure {
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Missing => "signature-missing",
            Self::Malformed(_) => "signature-malformed",
            Self::Expired(_) => "signature-expired",
            Self::FromFuture => "signature-from-future",
            Self::UnknownKey => "unknown-key",
            Self::BadSignature => "signature-invalid",
            Self::DigestMismatch => "digest-mismatch",
            Self::ReplayedNonce => "nonce-replayed",
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        Self::Unauthorized(failure)
    }
}

pub struct Verified {
    pub principal: Principal,
    pub keyid: String,
}

/// Checks run cheapest first; the nonce is stored last, so requests that
/// fail verification cannot fill Redis or burn a legitimate nonce.
pub async fn verify(parts: &Parts, body: Bytes, state: &AppState) -> Result<Verified, ApiError> {
    let has_body = !body.is_empty();
    let request = request_for_verification(parts, body)?;
    let params = signature_params(&request, has_body)?;
    let keyid = params.keyid.clone().ok_or_else(|| malformed("keyid is missing"))?;
    let nonce = params.nonce.clone().ok_or_else(|| malformed("nonce is missing"))?;
    if keyid.len() > MAX_KEYID_LEN || nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(malformed("keyid or nonce is empty or too long").into());
    }
    check_created(&params, state.settings.signature_max_age_seconds)?;

    let resolved = resolve_key(state, &keyid).await?;
    // An unknown keyid is checked against a decoy all the same, so it costs what a known one does.
    let key = resolved.as_ref().map_or(&*DECOY_KEY, |(_, key)| key);
    let verified = request.verify_message_signature(key, Some(&keyid)).await.is_ok();
    let Some((principal, _)) = resolved else {
        return Err(AuthFailure::UnknownKey.into());
    };
    if !verified {
        return Err(AuthFailure::BadSignature.into());
    }
    if request.headers().contains_key(DIGEST_COMPONENT) {
        request.verify_content_digest().await.map_err(|_| AuthFailure::DigestMismatch)?;
    }
    remember_nonce(state, &keyid, &nonce).await?;
    Ok(Verified { principal, keyid })
}

fn malformed(reason: &str) -> AuthFailure {
    AuthFailure::Malformed(reason.to_owned())
}

/// The request as the client signed it: `@target-uri` is absolute, so the
/// scheme and host the client used are put back (Cloud Run terminates TLS
/// and says `X-Forwarded-Proto: https`).
fn request_for_verification(parts: &Parts, body: Bytes) -> Result<axum::http::Request<Full<Bytes>>, AuthFailure> {
    let scheme = forwarded_proto(&parts.headers).unwrap_or("http");
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
        .ok_or_else(|| malformed("the request has no Host"))?;
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let uri: Uri = format!("{scheme}://{host}{path}").parse().map_err(|_| malformed("the Host is not valid"))?;
    let mut request = axum::http::Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(headers) = request.headers_mut() {
        headers.extend(parts.headers.clone());
    }
    request.body(Full::new(body)).map_err(|_| malformed("the request cannot be rebuilt"))
}

fn forwarded_proto(headers: &HeaderMap) -> Option<&'static str> {
    let proto = headers.get("x-forwarded-proto")?.to_str().ok()?;
    match proto.split(',').next()?.trim() {
        "https" => Some("https"),
        "http" => Some("http"),
        _ => None,
    }
}

/// The parameters of the request's signature, and the components it must cover.
fn signature_params(
    request: &axum::http::Request<Full<Bytes>>,
    has_body: bool,
) -> Result<HttpSignatureParams, AuthFailure> {
    if !request.has_message_signature() {
        return Err(AuthFailure::Missing);
    }
    let signatures = request.get_signature_params().map_err(|e| AuthFailure::Malformed(e.to_string()))?;
    let mut signatures = signatures.into_values();
    let (Some(params), None) = (signatures.next(), signatures.next()) else {
        return Err(malformed("send exactly one signature"));
    };
    if params.alg.as_deref().is_some_and(|alg| alg != AlgorithmName::Ed25519.as_str()) {
        return Err(malformed("alg must be ed25519"));
    }
    let covered: Vec<String> = params.covered_components.iter().map(|component| component.to_string()).collect();
    let covers = |name: &str| covered.iter().any(|component| component == &format!("\"{name}\""));
    let mut required: Vec<&str> = COVERED_COMPONENTS.to_vec();
    if has_body {
        required.push(DIGEST_COMPONENT);
    }
    // `@authority` + `@path` (+ `@query`) say what `@target-uri` says.
    let target_by_parts =
        covers("@authority") && covers("@path") && (request.uri().query().is_none() || covers("@query"));
    if let Some(missing) = required.iter().find(|name| !(covers(name) || (**name == "@target-uri" && target_by_parts)))
    {
        return Err(AuthFailure::Malformed(format!("the signature must cover {missing}")));
    }
    Ok(params)
}

fn check_created(params: &HttpSignatureParams, max_age_seconds: u64) -> Result<(), AuthFailure> {
    let created = params.created.ok_or_else(|| malformed("created is missing"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |now| now.as_secs());
    let age = i128::from(now) - i128::from(created);
    if age > i128::from(max_age_seconds) {
        return Err(AuthFailure::Expired(max_age_seconds));
    }
    if -age > i128::from(MAX_CLOCK_SKEW_SECONDS) {
        return Err(AuthFailure::FromFuture);
    }
    Ok(())
}

/// `agt_…` and `cli_…` name registered keys; any other keyid must be a
/// base64 public key signing its own registration. `None`: no such key.
async fn resolve_key(state: &AppState, keyid: &str) -> Result<Option<(Principal, VerifyingKey)>, ApiError> {
    let (principal, key_bytes) = if let Ok(id) = keyid.parse::<AgentId>() {
        let key = sqlx::query_scalar!("SELECT public_key FROM agents WHERE id = $1", id.as_uuid())
            .fetch_optional(&state.db)
            .await?;
        (Principal::Agent(id), key)
    } else if let Ok(id) = keyid.parse::<ClientId>() {
        let key = sqlx::query_scalar!("SELECT public_key FROM clients WHERE id = $1", id.as_uuid())
            .fetch_optional(&state.db)
            .await?;
        (Principal::Client(id), key)
    } else if let Ok(key) = keyid.parse::<PublicKey>() {
        let bytes = key.as_bytes().to_vec();
        (Principal::NewKey(key), Some(bytes))
    } else {
        return Ok(None);
    };
    Ok(key_bytes
        .and_then(|bytes| VerifyingKey::from_bytes(&AlgorithmName::Ed25519, &bytes).ok())
        .map(|key| (principal, key)))
}

static DECOY_KEY: LazyLock<VerifyingKey> = LazyLock::new(|| {
    SecretKey::from_bytes(&AlgorithmName::Ed25519, &[7; 32]).expect("a fixed seed is a valid key").public_key()
});

/// `SET NX EX`: atomic, so two replays racing each other cannot both pass.
/// Without Redis no replay can be ruled out, so signed writes fail closed.
async fn remember_nonce(state: &AppState, keyid: &str, nonce: &str) -> Result<(), ApiError> {
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
    let key = format!("{}nonce:{keyid}:{nonce}", state.settings.redis_key_prefix);
    let ttl = i64::try_from(state.settings.nonce_ttl_seconds).unwrap_or(i64::MAX);
    let stored: Option<String> =
        state.redis.set(key, 1, Some(Expiration::EX(ttl)), Some(SetOptions::NX), false).await.map_err(|error| {
            tracing::warn!(%error, "nonce store unavailable; refusing signed write");
            ApiError::Unavailable("cannot check the request's nonce right now; retry shortly".into())
        })?;
    match stored {
        Some(_) => Ok(()),
        None => Err(AuthFailure::ReplayedNonce.into()),
    }
}
