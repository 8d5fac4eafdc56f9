//! Replacing an agent's or a client's signing key (`POST /v1/agents/{id}/keys`,
//! `POST /v1/clients/{id}/keys`). The request is signed by the current key;
//! its body names the new key and proves possession of it: `proof` is the new
//! key's Ed25519 signature over the UTF-8 bytes of [`proof_message`],
//! `agent-registry key rotation:<id>:<current public key>:<new public key>`
//! (keys in base64 as the API shows them). Bound to the id and to the key it
//! replaces, a proof is good for this one rotation only. [`rotate`] is both
//! routes' handler; what a key is stored in, each kind says ([`KeyHolder`]).

use std::fmt::Display;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize};
use shared::domain::PublicKey;
use utoipa::{IntoResponses, ToSchema};

use crate::http::auth::{AuthFailure, Own, Signed};
use crate::http::error::{ApiError, Problem};
use crate::http::principal::PrincipalId;
use crate::http::state::AppState;

/// A principal whose signing key can be replaced: an agent or a client.
pub trait KeyHolder: PrincipalId {
    /// The answer to a rotation: the principal with its new key.
    type Rotated: Serialize;

    /// Replaces `current` with `new`, where `current` is still the active
    /// key; `None` when it no longer is.
    fn replace_key(
        state: &AppState,
        id: Self,
        current: &VerifyingKey,
        new: &PublicKey,
    ) -> impl Future<Output = Result<Option<Self::Rotated>, ApiError>> + Send;
}

/// Replaces the signing key of the principal `{id}` names, signed by its
/// current key. The current key stops working at once on this instance. A
/// key that is no longer current (another instance may still trust it for a
/// moment) replaces nothing: 401, as an unknown key.
pub async fn rotate<K: KeyHolder>(
    State(state): State<AppState>,
    Own(id, Signed { signer, body }): Own<K, Signed<RotateKey>>,
) -> Result<Json<K::Rotated>, ApiError> {
    let new_key = body.checked(&id, signer.key())?;
    let rotated = K::replace_key(&state, id, signer.key(), new_key).await?.ok_or(AuthFailure::BadSignature)?;
    state.known_keys.forget(&signer.principal).await;
    tracing::info!(%id, "{} key rotated", K::NAME);
    Ok(Json(rotated))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Base64 of the new 32-byte Ed25519 public key.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub public_key: PublicKey,
    /// Base64 of the new key's 64-byte Ed25519 signature over the UTF-8 bytes of
    /// `agent-registry key rotation:<id>:<current public key>:<new public key>`.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9+/]{85}[AQgw]==$")]
    pub proof: Proof,
}

/// An Ed25519 signature, base64 in JSON.
#[derive(Debug)]
pub struct Proof(Signature);

impl<'de> Deserialize<'de> for Proof {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("must be the base64 of a 64-byte Ed25519 signature"))
    }
}

/// What the new key signs to prove it is held by whoever rotates to it.
pub fn proof_message(id: &impl Display, current: &VerifyingKey, new: &PublicKey) -> String {
    format!("agent-registry key rotation:{id}:{}:{new}", STANDARD.encode(current.as_bytes()))
}

impl RotateKey {
    /// The new key of principal `id`, whose key is `current`: once its proof
    /// verifies, and if it is a new key. 422 naming the field otherwise.
    pub fn checked(&self, id: &impl Display, current: &VerifyingKey) -> Result<&PublicKey, ApiError> {
        if self.public_key.as_bytes() == current.as_bytes() {
            return Err(ApiError::invalid("public_key", "is the current key already"));
        }
        let message = proof_message(id, current, &self.public_key);
        self.public_key
            .verifying_key()
            .verify_strict(message.as_bytes(), &self.proof.0)
            .map_err(|_| ApiError::invalid("proof", format!("is not the new key's signature over \"{message}\"")))?;
        Ok(&self.public_key)
    }
}

/// What a key rotation may be refused with, besides a signed request's and
/// a body's refusals.
#[derive(IntoResponses)]
pub enum RotationRefusals {
    /// The new key is registered already.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use shared::domain::AgentId;

    use super::*;

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey::from_bytes(key.verifying_key().as_bytes()).unwrap()
    }

    fn rotation(new: &SigningKey, message: &str) -> RotateKey {
        let body = serde_json::json!({
            "public_key": public(new).to_string(),
            "proof": STANDARD.encode(new.sign(message.as_bytes()).to_bytes()),
        });
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn the_proof_is_the_new_key_signing_the_documented_message() {
        let (current, new) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
        let id = AgentId::generate();
        let message = format!(
            "agent-registry key rotation:{id}:{}:{}",
            STANDARD.encode(current.verifying_key().as_bytes()),
            public(&new)
        );
        assert_eq!(proof_message(&id, &current.verifying_key(), &public(&new)), message);
        assert!(rotation(&new, &message).checked(&id, &current.verifying_key()).is_ok());

        let honest = rotation(&new, &message);
        let for_another_id = honest.checked(&AgentId::generate(), &current.verifying_key());
        assert!(matches!(for_another_id, Err(ApiError::InvalidField { field, .. }) if field == "proof"));
        let signed_by_the_old_key = RotateKey { proof: rotation(&current, &message).proof, ..rotation(&new, &message) };
        assert!(signed_by_the_old_key.checked(&id, &current.verifying_key()).is_err());
        let to_itself = rotation(&current, &message);
        let to_itself = to_itself.checked(&id, &current.verifying_key());
        assert!(matches!(to_itself, Err(ApiError::InvalidField { field, .. }) if field == "public_key"));
    }
}
