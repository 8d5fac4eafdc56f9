//! Who is calling. Every write is signed (RFC 9421, Ed25519); the
//! [`Signed`] and [`Authenticated`] extractors verify the signature, the
//! body's digest, the freshness of `created` (and `expires`) and the nonce,
//! then spend a token of the caller's write bucket. [`Own`] adds the path's
//! `{id}` and lets only that agent's or client's own key through; other
//! handlers decide what the principal may do. Every write opens its
//! transaction with [`Signer::begin_write`], bound to the key that signed it.

mod signature;
mod signer;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::http::extract::{parse_json, read_body};
use crate::http::path_id::PathId;
use crate::http::principal::{Principal, PrincipalId};
use crate::http::rate_limit::{self, Class};
use crate::http::state::AppState;

pub use signature::AuthFailure;
pub use signer::Signer;

/// A signed request with a JSON body.
pub struct Signed<T> {
    pub signer: Signer,
    pub body: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = read_body(Request::from_parts(parts.clone(), body), state).await?;
        let signer = authenticate(&parts, &body, state).await?;
        Ok(Self { signer, body: parse_json(&parts.headers, &body)? })
    }
}

/// A signed request without a body (e.g. `DELETE`).
pub struct Authenticated(pub Signer);

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

/// What a signed request's extractor knows: who signed it, with which key.
pub trait SignedBy {
    fn signer(&self) -> &Signer;
}

impl<T> SignedBy for Signed<T> {
    fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl SignedBy for Authenticated {
    fn signer(&self) -> &Signer {
        &self.0
    }
}

/// A signed request (`E`: [`Signed`] or [`Authenticated`]) by the agent or
/// client the path's `{id}` names, with that id: only its own key may change
/// it (403 otherwise). The id is read first, as [`PathId`] reads it.
pub struct Own<Id, E = Authenticated>(pub Id, pub E);

impl<Id, E> FromRequest<AppState> for Own<Id, E>
where
    Id: PrincipalId,
    E: FromRequest<AppState, Rejection = ApiError> + SignedBy,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let PathId(id) = PathId::<Id>::from_request_parts(&mut parts, state).await?;
        let signed =
            E::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        signed.signer().principal.require_owner(id).map_err(IntoResponse::into_response)?;
        Ok(Self(id, signed))
    }
}

/// Verifies, then stores the nonce and spends a token (one Redis call):
/// signed reads from the principal's read bucket, writes from its write
/// bucket. Buckets are keyed by the canonical
/// principal (not the keyid as spelled), and registrations — a fresh key
/// each time — by client IP.
async fn authenticate(parts: &axum::http::request::Parts, body: &[u8], state: &AppState) -> Result<Signer, ApiError> {
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
    Ok(Signer::new(principal, key))
}
