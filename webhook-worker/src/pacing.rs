//! Pacing per target URL (agent endpoints and client callbacks alike), kept
//! in `endpoint_health`: after a failed attempt, or a receiver's 429/503 and
//! `Retry-After`, nothing more is sent to the URL before the failed
//! delivery's next attempt (`retry_at`). Then one delivery probes it (a
//! half-open circuit breaker: the probe holds `retry_at` while it sends);
//! the others wait for the probe's outcome. A success deletes the row, so a
//! healthy URL costs nothing here. Other URLs are never slowed.

use std::time::Duration;

use rand::Rng;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

/// What to do with a delivery whose URL may be paced.
pub enum Pace {
    Send,
    /// Not before this (the time the URL's pacing ends, spread a little so
    /// waiting deliveries do not arrive at once).
    WaitUntil(OffsetDateTime),
}

/// Whether a delivery to `url` may be sent now. `paced_until` is the URL's
/// `retry_at` as the lease read it (`None`: not paced). When the pacing has
/// ended, this delivery becomes the probe if no other one is: it holds the
/// URL for `probe_hold` (its send timeout and some).
pub async fn pace(
    db: &PgPool,
    url: &str,
    paced_until: Option<OffsetDateTime>,
    probe_hold: Duration,
) -> sqlx::Result<Pace> {
    let Some(paced_until) = paced_until else { return Ok(Pace::Send) };
    if paced_until > OffsetDateTime::now_utc() {
        return Ok(Pace::WaitUntil(spread(paced_until)));
    }
    let probe = sqlx::query_scalar!(
        "UPDATE endpoint_health SET retry_at = now() + make_interval(secs => $2), updated_at = now()
         WHERE url = $1 AND retry_at <= now() RETURNING retry_at",
        url,
        probe_hold.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    if probe.is_some() {
        return Ok(Pace::Send);
    }
    // Another delivery probes (or the URL recovered meanwhile).
    let retry_at =
        sqlx::query_scalar!("SELECT retry_at FROM endpoint_health WHERE url = $1", url).fetch_optional(db).await?;
    Ok(retry_at.map_or(Pace::Send, |at| Pace::WaitUntil(spread(at))))
}

/// After an attempt to `url`: a success ends its pacing (when it had any);
/// a failure starts or continues its run and paces it until `retry_at`.
pub async fn record(
    tx: &mut PgConnection,
    url: &str,
    succeeded: bool,
    was_paced: bool,
    started: OffsetDateTime,
    retry_at: OffsetDateTime,
) -> sqlx::Result<()> {
    if succeeded {
        if was_paced {
            sqlx::query!("DELETE FROM endpoint_health WHERE url = $1", url).execute(tx).await?;
        }
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO endpoint_health (url, failing_since, retry_at) VALUES ($1, $2, $3)
         ON CONFLICT (url) DO UPDATE SET retry_at = EXCLUDED.retry_at, updated_at = now()",
        url,
        started,
        retry_at,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// `at` plus 0.5–5 s, so deliveries that waited for one URL do not all
/// come back in the same instant.
fn spread(at: OffsetDateTime) -> OffsetDateTime {
    at + Duration::from_millis(rand::rng().random_range(500..=5000))
}
