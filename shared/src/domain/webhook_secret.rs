//! The secret an agent verifies our webhook signatures with (Standard Webhooks).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// `whsec_` followed by base64 of 32 random bytes; the HMAC key is the
/// decoded bytes. Shown to its agent once, at registration.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(SecretString::from(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes))))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_standard_webhooks_shape() {
        let secret = WebhookSecret::generate();
        let key = STANDARD.decode(secret.expose().strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(secret.expose(), WebhookSecret::generate().expose());
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
