//! Receipts issued before receipts were private (or by an older revision
//! during the roll-out) name their client, and their rating once rated, and
//! have no public form. A migration cannot sign (the key is not in the
//! database, and `api migrate` runs without the platform key), so this
//! gives each one a salt and both forms, signed again from the claims it
//! has: the API's maintenance task a bounded amount every minute, and a
//! party's read of such a receipt for that one job. Until then the public
//! listing leaves it out. Idempotent: it touches only rows without a
//! public form.

use sqlx::PgPool;
use uuid::Uuid;

use super::forms::{self, Salt};
use super::{payload, store};
use crate::http::platform_keys::PlatformKeys;

/// Receipts signed per statement.
const BATCH: i64 = 200;

/// Makes up to `max_batches` batches of receipts private; returns how many.
pub async fn make_private(db: &PgPool, keys: &PlatformKeys, max_batches: usize) -> anyhow::Result<u64> {
    let mut made = 0;
    let mut after = Uuid::nil();
    for _ in 0..max_batches {
        let rows = store::without_public_form(db, after, BATCH).await?;
        let done = rows.len() < BATCH as usize;
        after = rows.last().map_or(after, |(job, _)| *job);
        made += sign_and_store(db, keys, rows).await?;
        if done {
            break;
        }
    }
    Ok(made)
}

/// Signs both forms of each `(job id, full receipt)` from the receipt's
/// claims and stores them where the receipt is still the one read.
pub async fn sign_and_store(db: &PgPool, keys: &PlatformKeys, rows: Vec<(Uuid, String)>) -> anyhow::Result<u64> {
    let mut forms = Vec::with_capacity(rows.len());
    for (job, full) in rows {
        let signed = forms::sign(keys, payload(&full)?, Salt::random())?;
        forms.push((job, full, signed));
    }
    Ok(store::add_public_forms(db, &forms).await?)
}
