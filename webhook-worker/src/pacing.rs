//! Pacing per target URL (agent endpoints and client callbacks alike), kept
//! in `endpoint_health`: after a failure that says the receiver is down or
//! overloaded (no answer, 5xx, 408, 429), nothing more is sent to the URL
//! before `retry_at` — the failed delivery's next attempt, or what the
//! receiver asked for with `Retry-After`, but at most [`LONGEST_PACE`] for
//! a plain failure, so a recovered endpoint is found soon. Then one delivery
//! probes it (a half-open circuit breaker: `probe_until`) while the others
//! wait for its outcome. A success deletes the row, so a healthy URL costs
//! one primary-key lookup. Other URLs are never slowed.

use std::time::Duration;

use rand::Rng;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::send::Sent;

/// Why a delivery that waited on its URL for as long as its own schedule
/// lasts dies unsent.
pub const FAILING_ALL_SCHEDULE: &str = "the endpoint kept failing for the whole retry schedule; not sent";

/// The longest a plain failure (no `Retry-After`) holds a URL back: a
/// delivery deep in its schedule must not keep a recovered endpoint's
/// other deliveries waiting for hours.
const LONGEST_PACE: Duration = Duration::from_secs(300);

/// What to do with a delivery whose URL may be paced.
pub enum Pace {
    Send,
    /// Not before this (the URL's pacing ends then, spread a little so
    /// waiting deliveries do not arrive at once).
    WaitUntil(OffsetDateTime),
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
        return Ok(Pace::WaitUntil(spread(paced_until)));
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
        Some(row) if row.retry_at > OffsetDateTime::now_utc() => Pace::WaitUntil(spread(row.retry_at)),
        Some(_) => Pace::ProbeInFlight,
    })
}

/// Whether a failed send says the receiver is down or overloaded (as
/// opposed to refusing this one webhook, say a 400 or 413, which must not
/// hold back its other deliveries).
pub fn paces(sent: &Sent) -> bool {
    match sent.status {
        None => !sent.refused,
        Some(status) => status >= 500 || status == 408 || status == 429 || sent.retry_after.is_some(),
    }
}

/// After a failed attempt to `url` (a success's record deletes the row):
/// a failure that paces holds the URL back until `next_attempt` (capped at
/// [`LONGEST_PACE`] unless the receiver asked for longer), never earlier
/// than it already was.
pub async fn record_failure(
    tx: &mut PgConnection,
    url: &str,
    sent: &Sent,
    next_attempt: Option<OffsetDateTime>,
) -> sqlx::Result<()> {
    if !paces(sent) {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let cap = now + sent.retry_after.unwrap_or_default().max(LONGEST_PACE);
    let retry_at = next_attempt.unwrap_or(now).min(cap);
    sqlx::query!(
        "INSERT INTO endpoint_health (url, retry_at) VALUES ($1, $2)
         ON CONFLICT (url) DO UPDATE SET retry_at = GREATEST(endpoint_health.retry_at, EXCLUDED.retry_at),
                                         probe_until = NULL",
        url,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(status: Option<u16>, retry_after: Option<u64>, refused: bool) -> Sent {
        let retry_after = retry_after.map(Duration::from_secs);
        Sent { status, body: None, error: None, retry_after, refused }
    }

    #[test]
    fn only_a_receiver_that_is_down_or_overloaded_paces_its_url() {
        for pacing in [sent(None, None, false), sent(Some(503), None, false), sent(Some(429), None, false)] {
            assert!(paces(&pacing));
        }
        assert!(paces(&sent(Some(408), None, false)));
        assert!(paces(&sent(Some(400), Some(60), false)), "it asked us to wait");
        assert!(!paces(&sent(Some(400), None, false)), "one bad webhook holds no other back");
        assert!(!paces(&sent(Some(413), None, false)));
        assert!(!paces(&sent(None, None, true)), "a refused address is not the receiver's state");
    }
}
