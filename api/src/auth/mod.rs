//! Who is calling. Every write is signed (RFC 9421, Ed25519); the
//! [`Signed`] and [`Authenticated`] extractors verify the signature, the
//! body's digest, the freshness of `created` and the nonce, then spend a
//! token of the caller's write bucket. Handlers decide what the principal
//! may do.

mod signature;

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use shared::domain::{AgentId, ClientId, PublicKey};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{parse_json, read_body};
use crate::rate_limit::{self, Class};
use crate::state::AppState;

pub use signature::{AuthFailure, KnownKeys};

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
    /// The agent this principal is, or 403.
    pub fn require_agent(&self, agent: AgentId) -> Result<(), ApiError> {
        match self {
            Self::Agent(id) if *id == agent => Ok(()),
            _ => Err(ApiError::Forbidden(format!("only agent {agent}'s own key may change it"))),
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

/// A signed request with a JSON body.
pub struct Signed<T> {
    pub principal: Principal,
    pub body: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = read_body(Request::from_parts(parts.clone(), body), state).await?;
        let principal = authenticate(&parts, &body, state).await?;
        Ok(Self { principal, body: parse_json(&parts.headers, &body)? })
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
        Ok(Self(authenticate(&parts, &body, state).await?))
    }
}

/// Verifies, then spends a token: signed reads from the principal's read
/// bucket, writes from its write bucket. Buckets are keyed by the canonical
/// principal (not the keyid as spelled), and registrations — a fresh key
/// each time — by client IP.
async fn authenticate(
    parts: &axum::http::request::Parts,
    body: &[u8],
    state: &AppState,
) -> Result<Principal, ApiError> {
    let principal = signature::verify(parts, body, state).await?;
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
    rate_limit::enforce(state, class, &bucket).await?;
    Ok(principal)
}
