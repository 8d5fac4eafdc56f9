//! A receipt's two forms. The full one (the job's parties read it) states
//! everything: `client_id`, the rating once rated, and `client_salt`. The
//! public one (anyone reads it) states the job without naming its client or
//! its rating: `client_commitment` stands for the client, so a client can
//! prove it was the buyer by revealing the salt and its id, and nobody can
//! test a guessed client id against it without the salt.

use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::domain::ClientId;
use time::OffsetDateTime;

use crate::http::platform_keys::PlatformKeys;

/// The claims the public receipt copies from the full one; nothing else
/// of the full receipt (`client_id`, `rating`, `client_salt`) goes public.
const PUBLIC_CLAIMS: [&str; 8] =
    ["job_id", "agent_id", "status", "price", "fee", "created_at", "finished_at", "result_sha256"];

/// 32 random bytes, one job's: the commitment's salt.
pub struct Salt([u8; 32]);

impl Salt {
    pub fn random() -> Self {
        let mut bytes = [0; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Lower-case hex SHA-256 of the salt's 32 bytes followed by the client id
/// as shown (`cli_` and 32 hex digits, ASCII): what `client_commitment` is.
pub fn client_commitment(salt: &Salt, client: ClientId) -> String {
    let mut hash = Sha256::new();
    hash.update(salt.0);
    hash.update(client.to_string().as_bytes());
    format!("{:x}", hash.finalize())
}

/// Both forms of one receipt, signed.
pub struct Signed {
    pub full: String,
    pub public: String,
    pub salt: Salt,
}

/// Signs both forms of a receipt from the claims of its full form (as
/// `issue` states them, or as an older revision signed them), which must
/// name the client. Both carry `form` (`full` or `public`), the commitment
/// and `iat`, now.
pub fn sign(keys: &PlatformKeys, mut claims: Map<String, Value>, salt: Salt) -> anyhow::Result<Signed> {
    let client: ClientId = claims
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("a receipt's claims name no client_id"))?
        .parse()
        .map_err(|error| anyhow::anyhow!("a receipt's client_id: {error}"))?;
    let commitment = Value::from(client_commitment(&salt, client));
    let iat = Value::from(OffsetDateTime::now_utc().unix_timestamp());
    let mut public: Map<String, Value> =
        PUBLIC_CLAIMS.iter().filter_map(|&name| Some((name.to_owned(), claims.get(name)?.clone()))).collect();
    public.insert("form".into(), "public".into());
    public.insert("client_commitment".into(), commitment.clone());
    public.insert("iat".into(), iat.clone());
    claims.insert("form".into(), "full".into());
    claims.insert("client_commitment".into(), commitment);
    claims.insert("client_salt".into(), salt.hex().into());
    claims.insert("iat".into(), iat);
    Ok(Signed { full: keys.sign_claims(&claims)?, public: keys.sign_claims(&public)?, salt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commitment_is_sha_256_of_the_salt_then_the_client_id() {
        let salt = Salt([7; 32]);
        let client: ClientId = "cli_0123456789abcdef0123456789abcdef".parse().unwrap();
        let mut input = vec![7; 32];
        input.extend_from_slice(b"cli_0123456789abcdef0123456789abcdef");
        assert_eq!(client_commitment(&salt, client), format!("{:x}", Sha256::digest(&input)));
        assert_eq!(salt.hex(), "07".repeat(32));
    }
}
