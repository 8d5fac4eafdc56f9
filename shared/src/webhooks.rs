//! Standard Webhooks (<https://www.standardwebhooks.com>), the signing side:
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
//! by the base64-decoded part of the `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::WebhookSecret;

#[derive(Debug, thiserror::Error)]
#[error("the webhook secret is not whsec_ followed by base64")]
pub struct MalformedSecret;

/// What a delivery records when it is not sent because its agent's endpoint
/// is disabled.
pub const ENDPOINT_DISABLED: &str = "the agent's endpoint is disabled";

/// The `webhook-signature` value for one message signed by each secret,
/// space-separated (during a secret rotation: the new and the old), so a
/// receiver holding either verifies it.
pub fn sign_with_each(
    secrets: &[&str],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let signatures: Result<Vec<String>, _> =
        secrets.iter().map(|secret| sign(secret, message_id, timestamp, body)).collect();
    Ok(signatures?.join(" "))
}

/// The `webhook-signature` value for one message.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Result<String, MalformedSecret> {
    let key = secret.strip_prefix(WebhookSecret::PREFIX).unwrap_or(secret);
    let key = STANDARD.decode(key).map_err(|_| MalformedSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| MalformedSecret)?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference tests.
    #[test]
    fn matches_the_specification_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn signs_with_each_secret_in_turn() {
        let (old, new) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_dGhlIG5ldyBzZWNyZXQgb2YgdGhlIGFnZW50");
        let both = sign_with_each(&[new, old], "msg_1", 1614265330, b"{}").unwrap();
        let expected = format!(
            "{} {}",
            sign(new, "msg_1", 1614265330, b"{}").unwrap(),
            sign(old, "msg_1", 1614265330, b"{}").unwrap()
        );
        assert_eq!(both, expected);
    }

    #[test]
    fn refuses_a_malformed_secret() {
        assert!(sign("whsec_not base64!", "id", 1, b"{}").is_err());
    }
}
