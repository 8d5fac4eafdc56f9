//! Who is calling. Every write is signed (RFC 9421, Ed25519); the
//! [`Signed`] and [`Authenticated`] extractors verify the signature, the
//! body's digest, the freshness of `created` (and `expires`) and the nonce,
//! then spend a token of the caller's write bucket. Handlers decide what the
//! principal may do.

mod keys;
mod signature;

use std::fmt;

use axum::extract::{FromRequest, Request};
use ed25519_dalek::VerifyingKey;
use serde::de::DeserializeOwned;
use shared::domain::{AgentId, ClientId, PublicKey};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::{parse_json, read_body};
use crate::http::rate_limit::{self, Class};
use crate::http::state::AppState;

pub use keys::{KNOWN_KEY_TTL, KnownKeys, UNKNOWN_KEY_TTL};
pub use signature::AuthFailure;

/// The verified signer of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Agent(AgentId),
    Client(ClientId),
    /// A key not registered yet, signing its own registration (`keyid` is
    /// the base64 public key).
    NewKey(PublicKey),
}

impl Principal {
    /// The principal a keyid names (`agt_…`, `cli_…`, or a base64 public
    /// key); `None` when it names none. Printed back it is canonical
    /// (lower-case ids, padded base64), so every spelling of one key shares
    /// its cache entry, its nonces and its bucket.
    pub fn from_keyid(keyid: &str) -> Option<Self> {
        if let Ok(id) = keyid.parse() {
            Some(Self::Agent(id))
        } else if let Ok(id) = keyid.parse() {
            Some(Self::Client(id))
        } else {
            keyid.parse().ok().map(Self::NewKey)
        }
    }

    /// The agent this principal is, or 403.
    pub fn require_agent(&self, agent: AgentId) -> Result<(), ApiError> {
        match self {
            Self::Agent(id) if *id == agent => Ok(()),
            _ => Err(ApiError::Forbidden(format!("only agent {agent}'s own key may change it"))),
        }
    }

    /// The client this principal is, or 403.
    pub fn require_client(&self, client: ClientId) -> Result<(), ApiError> {
        match self {
            Self::Client(id) if *id == client => Ok(()),
            _ => Err(ApiError::Forbidden(format!("only client {client}'s own key may change it"))),
        }
    }

    /// Whether this principal is the agent or the client of a job (given by
    /// their ids): the parties who may read it.
    pub fn is_party(&self, agent: Uuid, client: Uuid) -> bool {
        match self {
            Self::Agent(id) => id.as_uuid() == agent,
            Self::Client(id) => id.as_uuid() == client,
            Self::NewKey(_) => false,
        }
    }

    /// A registration must be signed by the key it registers (proof of
    /// possession), or 403.
    pub fn require_new_key(&self, key: &PublicKey) -> Result<(), ApiError> {
        match self {
            Self::NewKey(signer) if signer == key => Ok(()),
            _ => Err(ApiError::Forbidden(
                "sign a registration with the key being registered, keyid = its base64 public_key".into(),
            )),
        }
    }
}

/// The canonical keyid.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(id) => id.fmt(f),
            Self::Client(id) => id.fmt(f),
            Self::NewKey(key) => key.fmt(f),
        }
    }
}

/// A signed request with a JSON body.
pub struct Signed<T> {
    pub principal: Principal,
    /// The key the signature verified with: what a key rotation replaces.
    pub key: VerifyingKey,
    pub body: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = read_body(Request::from_parts(parts.clone(), body), state).await?;
        let (principal, key) = authenticate(&parts, &body, state).await?;
        Ok(Self { principal, key, body: parse_json(&parts.headers, &body)? })
    }
}

/// A signed request without a body (e.g. `DELETE`).
pub struct Authenticated(pub Principal);

impl FromRequest<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = read_body(Request::from_parts(parts.clone(), body), state).await?;
        if !body.is_empty() {
            return Err(ApiError::invalid("body", "this request takes no body"));
        }
        Ok(Self(authenticate(&parts, &body, state).await?.0))
    }
}

/// Verifies, then stores the nonce and spends a token (one Redis call):
/// signed reads from the principal's read bucket, writes from its write
/// bucket. Buckets are keyed by the canonical
/// principal (not the keyid as spelled), and registrations — a fresh key
/// each time — by client IP.
async fn authenticate(
    parts: &axum::http::request::Parts,
    body: &[u8],
    state: &AppState,
) -> Result<(Principal, VerifyingKey), ApiError> {
    let signature::Verified { principal, key, nonce_key } = signature::verify(parts, body, state).await?;
    let class = match parts.method {
        axum::http::Method::GET | axum::http::Method::HEAD => Class::Read,
        _ => Class::Write,
    };
    let (class_name, bucket) = match &principal {
        Principal::Agent(id) => ("agent", id.to_string()),
        Principal::Client(id) => ("client", id.to_string()),
        Principal::NewKey(_) => {
            ("new_key", format!("registration:{}", rate_limit::client_ip(&parts.headers, &parts.extensions)))
        }
    };
    // The request span says who called (a class, not an id: traces are not an audit log).
    tracing::Span::current().record("principal", class_name);
    let decision = rate_limit::take_with_nonce(state, class, &bucket, nonce_key)
        .await
        .map_err(|error| rate_limit::unavailable(&error, "the request's nonce and rate limit"))?;
    rate_limit::admit(decision.ok_or(AuthFailure::ReplayedNonce)?)?;
    Ok((principal, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyid_prints_back_in_one_canonical_spelling() {
        let id = AgentId::generate().to_string();
        let shouted = format!("agt_{}", id[4..].to_uppercase());
        assert_eq!(Principal::from_keyid(&shouted).unwrap().to_string(), id);
        let key = "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";
        assert_eq!(Principal::from_keyid(key.trim_end_matches('=')).unwrap().to_string(), key, "padding restored");
        let client = ClientId::generate().to_string();
        assert_eq!(Principal::from_keyid(&client), Some(Principal::Client(client.parse().unwrap())));
        for nothing in ["", "AGT_0123", "cli_", "not base64!", "agt_0123456789abcdef0123456789abcdeg"] {
            assert_eq!(Principal::from_keyid(nothing), None, "{nothing}");
        }
    }
}
