//! Who signed a request and the key that verified it, and the one check
//! that binds a write to that key.
//!
//! The key that verified a request may come from another instance's
//! [`KnownKeys`](crate::http::known_keys::KnownKeys) cache, which trusts a
//! key for a few seconds after it was rotated away or deactivated elsewhere.
//! So every owner write opens its transaction with [`Signer::begin_write`]:
//! it goes on only while the verifying key is still the principal's active
//! key, and holds the principal's row `FOR KEY SHARE` until the write
//! commits. (Creating a job, the hot path, makes the same check and takes
//! the same lock in its one statement instead, and hands the outcome to
//! [`Signer::checked_in_write`].) A rotation changes `public_key`, a unique
//! (key) column, so it waits for that lock: no rotation commits between the
//! check and the write.
//! Other updates of the row do not conflict with it, so two writes of one
//! principal never wait for each other here; a deactivation locks the row
//! `FOR UPDATE` instead, so it waits for the writes in flight. A key
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
        self.begin(db, Lock::KeyShare).await
    }

    /// The outcome of a write that made [`Self::begin_write`]'s check in its
    /// own statement: the same 401 when the key was no longer current.
    pub fn checked_in_write(&self, key_was_current: bool) -> Result<(), ApiError> {
        if key_was_current { Ok(()) } else { Err(AuthFailure::BadSignature.into()) }
    }

    /// As [`Self::begin_write`], for the write that ends the principal
    /// (deactivation): it locks the row `FOR UPDATE`, so it waits for the
    /// writes already checked against the key, and none commits after it.
    pub async fn begin_deactivation(&self, db: &PgPool) -> Result<Transaction<'static, Postgres>, ApiError> {
        self.begin(db, Lock::Update).await
    }

    async fn begin(&self, db: &PgPool, lock: Lock) -> Result<Transaction<'static, Postgres>, ApiError> {
        let mut tx = db.begin().await?;
        let key = self.key.as_bytes().as_slice();
        let current = match (&self.principal, lock) {
            (Principal::Agent(id), Lock::KeyShare) => sqlx::query_scalar!(
                r#"SELECT true AS "current!" FROM agents WHERE id = $1 AND active AND public_key = $2 FOR KEY SHARE"#,
                id.as_uuid(),
                key,
            )
            .fetch_optional(&mut *tx)
            .await?,
            (Principal::Agent(id), Lock::Update) => {
                sqlx::query_scalar!(
                    r#"SELECT true AS "current!" FROM agents WHERE id = $1 AND active AND public_key = $2 FOR UPDATE"#,
                    id.as_uuid(),
                    key,
                )
                .fetch_optional(&mut *tx)
                .await?
            }
            (Principal::Client(id), Lock::KeyShare) => sqlx::query_scalar!(
                r#"SELECT true AS "current!" FROM clients WHERE id = $1 AND active AND public_key = $2 FOR KEY SHARE"#,
                id.as_uuid(),
                key,
            )
            .fetch_optional(&mut *tx)
            .await?,
            (Principal::Client(id), Lock::Update) => {
                sqlx::query_scalar!(
                    r#"SELECT true AS "current!" FROM clients WHERE id = $1 AND active AND public_key = $2 FOR UPDATE"#,
                    id.as_uuid(),
                    key,
                )
                .fetch_optional(&mut *tx)
                .await?
            }
            (Principal::NewKey(_), _) => Some(true),
        };
        self.checked_in_write(current.is_some())?;
        Ok(tx)
    }
}

/// How the principal's row is held until the write commits.
#[derive(Clone, Copy)]
enum Lock {
    /// Blocks a key change only.
    KeyShare,
    /// Blocks every other write's check too.
    Update,
}
