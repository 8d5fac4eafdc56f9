//! Pacing per target URL (agent endpoints and client callbacks alike), kept
//! in `endpoint_health`: after a failure that says the receiver is down or
//! overloaded, nothing more is sent to the URL before `retry_at` (which
//! failures pace, and until when, is `policy`'s decision). Then one delivery
//! probes it (a half-open circuit breaker: `probe_until`) while the others
//! wait for its outcome. A success deletes the row (in the statement that
//! records it: `record`), so a healthy URL costs one primary-key lookup.
//! Other URLs are never slowed.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

/// What to do with a delivery whose URL may be paced.
pub enum Pace {
    Send,
    /// Not before this: the URL's pacing ends then.
    PacedUntil(OffsetDateTime),
    /// Another delivery is probing the URL; ask again shortly.
    ProbeInFlight,
}

/// Whether a delivery to `url` may be sent now. `paced_until` is the URL's
/// `retry_at` as the lease read it (`None`: not paced). When the pacing has
/// ended, this delivery becomes the probe if no other one is: it holds the
/// URL for `probe_hold` (its send timeout and some) or until it records.
pub async fn pace(
    db: &PgPool,
    url: &str,
    paced_until: Option<OffsetDateTime>,
    probe_hold: Duration,
) -> sqlx::Result<Pace> {
    let Some(paced_until) = paced_until else { return Ok(Pace::Send) };
    if paced_until > OffsetDateTime::now_utc() {
        return Ok(Pace::PacedUntil(paced_until));
    }
    let probe = sqlx::query_scalar!(
        r#"UPDATE endpoint_health SET probe_until = now() + make_interval(secs => $2)
           WHERE url = $1 AND retry_at <= now() AND (probe_until IS NULL OR probe_until < now())
           RETURNING 1 AS "probing!""#,
        url,
        probe_hold.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    if probe.is_some() {
        return Ok(Pace::Send);
    }
    let now_paced = sqlx::query!("SELECT retry_at, probe_until FROM endpoint_health WHERE url = $1", url)
        .fetch_optional(db)
        .await?;
    Ok(match now_paced {
        // The URL recovered meanwhile.
        None => Pace::Send,
        Some(row) if row.retry_at > OffsetDateTime::now_utc() => Pace::PacedUntil(row.retry_at),
        Some(_) => Pace::ProbeInFlight,
    })
}

/// Holds `url` back until `until` after a failed attempt, never earlier
/// than it already was, and ends any probe of it (the probe failed).
pub async fn hold_back(tx: &mut PgConnection, url: &str, until: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO endpoint_health (url, retry_at) VALUES ($1, $2)
         ON CONFLICT (url) DO UPDATE SET retry_at = GREATEST(endpoint_health.retry_at, EXCLUDED.retry_at),
                                         probe_until = NULL",
        url,
        until,
    )
    .execute(tx)
    .await?;
    Ok(())
}
