//! Who signed a request and the key that verified it, and the one check
//! that binds a write to that key.
//!
//! The key that verified a request may come from another instance's
//! [`KnownKeys`](crate::http::known_keys::KnownKeys) cache, which trusts a
//! key for a few seconds after it was rotated away or deactivated elsewhere.
//! So every owner write opens its transaction with [`Signer::begin_write`]:
//! it goes on only while the verifying key is still the principal's active
//! key, and holds the principal's row `FOR KEY SHARE` until the write
//! commits. A rotation changes `public_key`, a unique (key) column, so it
//! waits for that lock: no rotation commits between the check and the write.
//! Other updates of the row (deactivation included) do not conflict with it,
//! so two writes of one principal never wait for each other here. A key
//! rotation is bound by its own statement (`UPDATE … WHERE public_key = <the
//! verifying key>`), which needs the stronger lock and so cannot take this one.

use ed25519_dalek::VerifyingKey;
use sqlx::{PgPool, Postgres, Transaction};

use super::AuthFailure;
use crate::http::error::ApiError;
use crate::http::principal::Principal;

/// A request's verified signer: the principal and the key its signature
/// verified with.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principal: Principal,
    key: VerifyingKey,
}

impl Signer {
    pub(super) fn new(principal: Principal, key: VerifyingKey) -> Self {
        Self { principal, key }
    }

    /// The key the signature verified with: what a key rotation replaces.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Begins the transaction of a write by this signer, once its key is
    /// still its principal's active key (locked until the transaction ends);
    /// otherwise the 401 an unknown key gets. A registration's key (a
    /// [`Principal::NewKey`]) is its own keyid: nothing to check.
    pub async fn begin_write(&self, db: &PgPool) -> Result<Transaction<'static, Postgres>, ApiError> {
        let mut tx = db.begin().await?;
        let key = self.key.as_bytes().as_slice();
        let current = match &self.principal {
            Principal::Agent(id) => sqlx::query_scalar!(
                r#"SELECT true AS "current!" FROM agents WHERE id = $1 AND active AND public_key = $2 FOR KEY SHARE"#,
                id.as_uuid(),
                key,
            )
            .fetch_optional(&mut *tx)
            .await?,
            Principal::Client(id) => sqlx::query_scalar!(
                r#"SELECT true AS "current!" FROM clients WHERE id = $1 AND active AND public_key = $2 FOR KEY SHARE"#,
                id.as_uuid(),
                key,
            )
            .fetch_optional(&mut *tx)
            .await?,
            Principal::NewKey(_) => Some(true),
        };
        match current {
            Some(_) => Ok(tx),
            None => Err(AuthFailure::BadSignature.into()),
        }
    }
}
