//! An agent's Ed25519 public key: what its signed requests are checked with.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ed25519_dalek::VerifyingKey;

use super::{ParseError, serde_via_str};

/// A valid, non-weak Ed25519 public key, written as base64 of its 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| ParseError::new(format!("must be 32 bytes, got {}", bytes.len())))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| ParseError::new("is not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(ParseError::new("is a weak (small-order) Ed25519 key"));
        }
        Ok(Self(key))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bytes = STANDARD
            .decode(s)
            .or_else(|_| STANDARD_NO_PAD.decode(s))
            .map_err(|_| ParseError::new("must be the base64 encoding of a 32-byte Ed25519 public key"))?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}
serde_via_str!(PublicKey, "a base64 Ed25519 public key");

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn round_trips_a_real_key() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let text = STANDARD.encode(key.as_bytes());
        let parsed: PublicKey = text.parse().unwrap();
        assert_eq!(parsed.verifying_key(), &key);
        assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn refuses_bad_keys() {
        assert!("not base64!".parse::<PublicKey>().is_err());
        assert!(STANDARD.encode([1u8; 31]).parse::<PublicKey>().is_err());
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(STANDARD.encode(identity).parse::<PublicKey>().is_err());
    }
}
