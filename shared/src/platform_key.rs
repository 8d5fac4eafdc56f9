//! The platform's Ed25519 signing key (`PLATFORM_SIGNING_KEY`), as a setting:
//! the base64 of a 32-byte seed, the form `openssl rand -base64 32` makes and
//! Secret Manager holds. The API signs Agent Cards and job receipts with it.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ed25519_dalek::SigningKey;

/// An Ed25519 private key. Never printed: `Debug` shows only that it is set.
#[derive(Clone)]
pub struct PlatformSigningKey(SigningKey);

impl PlatformSigningKey {
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
}

impl PartialEq for PlatformSigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.verifying_key() == other.0.verifying_key()
    }
}

/// The reasons name the expected form and never contain the value.
impl FromStr for PlatformSigningKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected the base64 of a 32-byte Ed25519 seed, e.g. from `openssl rand -base64 32`";
        let bytes =
            STANDARD.decode(s).or_else(|_| STANDARD_NO_PAD.decode(s)).map_err(|_| format!("not base64; {FORM}"))?;
        let seed: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| format!("decodes to {} bytes, not 32; {FORM}", bytes.len()))?;
        Ok(Self::from_seed(seed))
    }
}

impl fmt::Debug for PlatformSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlatformSigningKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_base64_and_refuses_anything_else_without_echoing_it() {
        let text = STANDARD.encode([7u8; 32]);
        let key: PlatformSigningKey = text.parse().unwrap();
        assert_eq!(key.signing_key().to_bytes(), [7u8; 32]);
        assert!(!format!("{key:?}").contains(&text));

        let err = "dev-signing-key-not-for-production".parse::<PlatformSigningKey>().unwrap_err();
        assert!(err.contains("not base64") && !err.contains("dev-signing"), "{err}");
        let err = STANDARD.encode([7u8; 16]).parse::<PlatformSigningKey>().unwrap_err();
        assert!(err.contains("16 bytes"), "{err}");
    }
}
