//! Retention: delivery attempts are kept for
//! `DELIVERY_ATTEMPTS_RETENTION_DAYS`, and the pacing row of a URL nobody
//! has been held back from for a day is dropped. Run by the maintenance
//! task; each call does a bounded amount of work (short statements,
//! each holding few row locks), and the next call goes on.

use shared::settings::Settings;
use sqlx::PgPool;

/// Attempts deleted per statement,
pub const ATTEMPTS_PER_STATEMENT: i64 = 5_000;
/// and statements per call at most: 150,000 a minute, more than the
/// pipeline's 2,000 deliveries a second make.
pub const STATEMENTS_PER_CALL: usize = 30;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub attempts: u64,
    pub endpoint_health: u64,
}

/// Deletes attempts older than the retention period, oldest first, up to
/// `STATEMENTS_PER_CALL` batches, and `endpoint_health` rows whose
/// `retry_at` passed more than a day ago.
pub async fn prune(db: &PgPool, settings: &Settings) -> sqlx::Result<Pruned> {
    let days = i32::try_from(settings.delivery_attempts_retention.as_secs() / 86_400).unwrap_or(i32::MAX);
    let mut pruned = Pruned::default();
    for _ in 0..STATEMENTS_PER_CALL {
        // Through `delivery_attempts_by_start`, oldest first; `= ANY(ARRAY(…))`
        // deletes by primary key (`IN (…)` may hash-join a scan of the table).
        let deleted = sqlx::query!(
            "DELETE FROM delivery_attempts WHERE id = ANY(ARRAY(
                 SELECT id FROM delivery_attempts WHERE started_at < now() - make_interval(days => $1)
                 ORDER BY started_at LIMIT $2))",
            days,
            ATTEMPTS_PER_STATEMENT
        )
        .execute(db)
        .await?
        .rows_affected();
        pruned.attempts += deleted;
        if deleted < ATTEMPTS_PER_STATEMENT.unsigned_abs() {
            break;
        }
    }
    // Few rows: only URLs failing or throttled now are in the table.
    pruned.endpoint_health = sqlx::query!("DELETE FROM endpoint_health WHERE retry_at < now() - interval '1 day'")
        .execute(db)
        .await?
        .rows_affected();
    if pruned != Pruned::default() {
        tracing::info!(attempts = pruned.attempts, endpoint_health = pruned.endpoint_health, "pruned");
    }
    Ok(pruned)
}
