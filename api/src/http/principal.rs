//! Who signed a request, as the auth extractors verified it, and what that
//! signer may do.

use std::fmt;

use shared::domain::{AgentId, ClientId, PublicKey};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::path_id::PathIdKind;

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

    /// `owner`'s own key, or 403.
    pub fn require_owner<Id: PrincipalId>(&self, owner: Id) -> Result<(), ApiError> {
        if owner.signs_as(self) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("only {} {owner}'s own key may change it", Id::NAME)))
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

/// The id of a principal that signs with its own key: an agent's or a client's.
pub trait PrincipalId: PathIdKind {
    /// Whether `principal` is this id's own key.
    fn signs_as(self, principal: &Principal) -> bool;
}

impl PrincipalId for AgentId {
    fn signs_as(self, principal: &Principal) -> bool {
        *principal == Principal::Agent(self)
    }
}

impl PrincipalId for ClientId {
    fn signs_as(self, principal: &Principal) -> bool {
        *principal == Principal::Client(self)
    }
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
