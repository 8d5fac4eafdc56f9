//! One Cloud Tasks push: authenticate it, deliver the webhook, record the
//! attempt, and answer so Cloud Tasks retries exactly what should be retried:
//!
//! | outcome                                   | recorded   | answer |
//! |-------------------------------------------|------------|--------|
//! | 2xx                                       | delivered  | 200    |
//! | 410 Gone                                  | gone (endpoint disabled) | 200 |
//! | refused by the SSRF policy                | refused (dead) | 200 |
//! | other failure, attempts left              | retry      | 500, or 503 + Retry-After on 429 / Retry-After |
//! | other failure, last attempt               | dead       | 200    |
//! | failure that ends the endpoint's health   | dead (endpoint disabled) | 200 |
//! | endpoint already disabled (not sent)      | —, delivery dead | 200 |
//!
//! Endpoint health: each attempt to an agent's endpoint updates when its
//! current run of failures began; a success ends the run. A run longer than
//! `ENDPOINT_DISABLE_AFTER_SECONDS`, or a 410, disables the endpoint and
//! records an `endpoint.disabled` event; its deliveries then die unsent (and
//! reach the dead-letter topic) until the agent enables it again.
//!
//! Cloud Tasks delivers at least once, so the worker is idempotent per
//! delivery: a final delivery is answered 200 without sending, and a lease
//! keeps two pushes of one task from sending at once.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, DeliveryId, EventId};
use shared::events::{self, Aggregate};
use sqlx::PgConnection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;
use url::Url;
use uuid::Uuid;

use crate::egress::EgressError;
use crate::startup::WorkerState;

/// How much of a receiver's answer is kept for its owner.
const KEPT_RESPONSE_BYTES: usize = 4096;

/// The task body: which delivery, and which round of sending (a resend
/// starts a new generation; pushes of older tasks are dropped).
#[derive(Debug, Deserialize)]
pub struct Push {
    delivery_id: DeliveryId,
    generation: i32,
}

pub async fn handle(State(state): State<WorkerState>, headers: HeaderMap, Json(push): Json<Push>) -> Response {
    if let Err(refusal) = authenticate(&state, &headers) {
        return refusal;
    }
    // Cloud Tasks counts earlier attempts; ours are numbered from 1.
    let attempt = headers
        .get("x-cloudtasks-taskretrycount")
        .and_then(|count| count.to_str().ok()?.parse::<i32>().ok())
        .map_or(1, |retries| retries.saturating_add(1));
    match deliver(&state, &push, attempt).await {
        Ok(answer) => answer.into_response(),
        Err(error) => {
            // Postgres trouble: free the delivery (best effort) and let Cloud Tasks try again later.
            tracing::error!(delivery_id = %push.delivery_id, error = format!("{error:#}"), "delivery failed");
            let release = sqlx::query!(
                "UPDATE webhook_deliveries SET lease_until = NULL WHERE id = $1 AND generation = $2",
                push.delivery_id.as_uuid(),
                push.generation
            );
            let _ = release.execute(&state.db).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// In the cloud Cloud Run IAM admits only the tasks service account; the
/// queue header then tells a push from anything else. Locally the stand-in
/// presents the shared secret instead of an OIDC token.
#[allow(clippy::result_large_err)]
fn authenticate(state: &WorkerState, headers: &HeaderMap) -> Result<(), Response> {
    if let Some(secret) = &state.settings.worker_shared_secret {
        let expected = format!("Bearer {}", secrecy::ExposeSecret::expose_secret(secret));
        let presented = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
        if !constant_time_eq(presented, expected.as_bytes()) {
            return Err((StatusCode::UNAUTHORIZED, "missing or wrong worker credentials").into_response());
        }
    }
    let queue = headers.get("x-cloudtasks-queuename").and_then(|queue| queue.to_str().ok());
    if queue != Some(state.settings.cloud_tasks.queue_name()) {
        return Err((StatusCode::FORBIDDEN, "not a push from the delivery queue").into_response());
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

/// What Cloud Tasks is told.
enum Answer {
    Done,
    Retry {
        retry_after: Option<HeaderValue>,
        throttled: bool,
    },
    /// Another push of this task is sending right now.
    Busy,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Done => StatusCode::OK.into_response(),
            // Not 503: that would slow the whole queue for one delivery's overlap.
            Self::Busy => (StatusCode::CONFLICT, "another push of this delivery is sending").into_response(),
            Self::Retry { retry_after, throttled } => {
                // 503 with Retry-After makes Cloud Tasks back off; 500 uses the queue's backoff.
                let status =
                    if throttled { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                let mut response = status.into_response();
                if let Some(retry_after) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, retry_after);
                }
                response
            }
        }
    }
}

/// What one attempt came to, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry,
    Dead,
    Gone,
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Dead => "dead",
            Self::Gone => "gone",
            Self::Refused => "refused",
        }
    }

    /// The delivery's status after it.
    fn delivery_status(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "dispatched",
            Self::Dead | Self::Gone | Self::Refused => "dead",
        }
    }
}

fn delivery_status_is_dead(outcome: Outcome) -> bool {
    outcome.delivery_status() == "dead"
}

struct Sent {
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<HeaderValue>,
    refused: bool,
}

async fn deliver(state: &WorkerState, push: &Push, attempt: i32) -> anyhow::Result<Answer> {
    let (id, generation) = (push.delivery_id, push.generation);
    let lease_seconds = (state.settings.webhook_timeout_seconds + 5) as f64;
    // Take the lease: only one push of a delivery sends at a time, and a final one never again.
    let Some(delivery) = sqlx::query!(
        r#"UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $2)
           FROM events e
           WHERE d.id = $1 AND d.generation = $3 AND e.id = d.event_id AND d.status IN ('pending', 'dispatched')
             AND (d.lease_until IS NULL OR d.lease_until < now())
           RETURNING d.target_url, d.agent_id, e.id AS event_id, e.type AS event_type, e.data, e.occurred_at,
                     (SELECT COALESCE(a.webhook_secret, c.webhook_secret)
                      FROM (SELECT 1) one
                      LEFT JOIN agents a ON a.id = d.agent_id
                      LEFT JOIN clients c ON c.id = d.client_id) AS "secret!",
                     -- During a rotation's grace period the replaced secret signs too.
                     (SELECT a.previous_webhook_secret FROM agents a
                      WHERE a.id = d.agent_id AND a.previous_webhook_secret_expires_at > now()) AS previous_secret,
                     (SELECT a.endpoint_disabled_at IS NOT NULL FROM agents a WHERE a.id = d.agent_id) AS endpoint_disabled"#,
        id.as_uuid(),
        lease_seconds,
        generation,
    )
    .fetch_optional(&state.db)
    .await?
    else {
        return unclaimable(state, push).await;
    };
    if delivery.endpoint_disabled == Some(true) {
        sqlx::query!(
            "UPDATE webhook_deliveries SET status = 'dead', last_error = $3, lease_until = NULL, finished_at = now()
             WHERE id = $1 AND generation = $2",
            id.as_uuid(),
            generation,
            shared::webhooks::ENDPOINT_DISABLED,
        )
        .execute(&state.db)
        .await?;
        tracing::warn!(delivery_id = %id, error = shared::webhooks::ENDPOINT_DISABLED, "delivery dead");
        return Ok(Answer::Done);
    }

    let body = serde_json::to_vec(&serde_json::json!({
        "type": delivery.event_type,
        "timestamp": delivery.occurred_at.format(&Rfc3339)?,
        "data": delivery.data,
    }))?;
    // Host only: a URL's path and query may hold an agent's secrets.
    let target_host = Url::parse(&delivery.target_url).ok().and_then(|url| url.host_str().map(str::to_owned));
    let span = tracing::info_span!(
        "delivery attempt",
        delivery_id = %id,
        attempt,
        target_host,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let event = EventId::from_uuid(delivery.event_id);
    let secrets: Vec<&str> =
        std::iter::once(delivery.secret.as_str()).chain(delivery.previous_secret.as_deref()).collect();
    let sent = send(state, id, event, &delivery.target_url, &secrets, body).instrument(span.clone()).await;
    let latency_ms = i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX);

    let last_attempt = attempt >= i32::try_from(state.settings.webhook_max_retries).unwrap_or(i32::MAX);
    let outcome = match sent.status {
        Some(status) if (200..300).contains(&status) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ if sent.refused => Outcome::Refused,
        _ if last_attempt => Outcome::Dead,
        _ => Outcome::Retry,
    };
    let attempted =
        Attempted { attempt, started, latency_ms, sent: &sent, agent: delivery.agent_id, target: &delivery.target_url };
    let outcome = record(state, push, attempted, outcome).await?;
    span.record("status", sent.status);
    span.record("outcome", outcome.as_str());
    span.in_scope(|| {
        tracing::info!(latency_ms, "delivery attempt");
        // The dead-deliveries metric and alert count this line.
        if delivery_status_is_dead(outcome) {
            tracing::warn!(error = sent.error.as_deref(), "delivery dead");
        }
    });
    Ok(match outcome {
        Outcome::Retry => Answer::Retry {
            throttled: sent.status == Some(429) || sent.retry_after.is_some(),
            retry_after: sent.retry_after,
        },
        _ => Answer::Done,
    })
}

/// No lease: the delivery is unknown, final, or resent since this task was
/// made (done, 200), or another push holds it (try later).
async fn unclaimable(state: &WorkerState, push: &Push) -> anyhow::Result<Answer> {
    let id = push.delivery_id;
    let current = sqlx::query!("SELECT status, generation FROM webhook_deliveries WHERE id = $1", id.as_uuid())
        .fetch_optional(&state.db)
        .await?;
    Ok(match current {
        None => {
            tracing::warn!(delivery_id = %id, "push for an unknown delivery; dropped");
            Answer::Done
        }
        Some(current) if current.generation != push.generation => Answer::Done,
        Some(current) if matches!(current.status.as_str(), "delivered" | "dead") => Answer::Done,
        Some(_) => Answer::Busy,
    })
}

/// The Standard Webhooks request: `webhook-id` is the delivery id, so a
/// receiver can drop duplicates.
async fn send(
    state: &WorkerState,
    id: DeliveryId,
    event: EventId,
    target: &str,
    secrets: &[&str],
    body: Vec<u8>,
) -> Sent {
    let failed = |error: String, refused: bool| Sent {
        status: None,
        body: None,
        error: Some(error),
        retry_after: None,
        refused,
    };
    let Ok(url) = Url::parse(target) else {
        return failed("the target URL is not a URL".into(), true);
    };
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let message_id = id.to_string();
    let Ok(signature) = shared::webhooks::sign_with_each(secrets, &message_id, timestamp, &body) else {
        return failed("the webhook secret is malformed".into(), true);
    };
    let mut request = reqwest::Request::new(Method::POST, url);
    let headers = request.headers_mut();
    for (name, value) in [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", message_id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
        ("x-agent-registry-event-id", event.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    // The receiver may join the trace as a child of this attempt.
    shared::telemetry::inject_traceparent(headers);
    *request.body_mut() = Some(body.into());
    *request.timeout_mut() = Some(Duration::from_secs(state.settings.webhook_timeout_seconds));

    match state.egress.send(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
            let body = read_prefix(response).await;
            let error = (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}"));
            Sent { status: Some(status), body: Some(body), error, retry_after, refused: false }
        }
        Err(EgressError::Refused(reason)) => failed(storable(&reason), true),
        Err(error) => failed(storable(&error.to_string()), false),
    }
}

/// The first 4 KB of the answer, without reading the rest.
async fn read_prefix(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < KEPT_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(KEPT_RESPONSE_BYTES - kept.len())]),
            _ => break,
        }
    }
    storable(&String::from_utf8_lossy(&kept))
}

/// Postgres text cannot hold NUL; a receiver's answer must not stop the
/// attempt from being recorded.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// One attempt, as sent.
struct Attempted<'a> {
    attempt: i32,
    started: OffsetDateTime,
    latency_ms: i32,
    sent: &'a Sent,
    /// The agent whose endpoint it went to (none for a job callback).
    agent: Option<Uuid>,
    /// Where it went.
    target: &'a str,
}

/// Records the attempt, the endpoint's health and the delivery's new status
/// in one transaction; returns the outcome, which is `Dead` when this attempt
/// disabled the endpoint.
async fn record(
    state: &WorkerState,
    push: &Push,
    attempted: Attempted<'_>,
    outcome: Outcome,
) -> anyhow::Result<Outcome> {
    let Attempted { attempt, started, latency_ms, sent, agent, target } = attempted;
    let id = push.delivery_id;
    let mut tx = state.db.begin().await?;
    let mut outcome = outcome;
    let mut error = sent.error.clone();
    if let Some(agent) = agent {
        let disable_after = Duration::from_secs(state.settings.endpoint_disable_after_seconds);
        let disabled =
            endpoint_health(&mut tx, AgentId::from_uuid(agent), target, outcome, started, disable_after).await?;
        if disabled && outcome == Outcome::Retry {
            outcome = Outcome::Dead;
            error = Some(format!("{}; {}", error.unwrap_or_default(), shared::webhooks::ENDPOINT_DISABLED));
        }
    }
    sqlx::query!(
        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, response_status, response_body, error, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id.as_uuid(),
        attempt,
        started,
        latency_ms,
        sent.status.map(i32::from),
        sent.body,
        error,
        outcome.as_str(),
    )
    .execute(&mut *tx)
    .await?;
    let finished = outcome != Outcome::Retry;
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = $2, attempts = GREATEST(attempts, $3), last_error = $4, lease_until = NULL,
             finished_at = CASE WHEN $5 THEN now() ELSE finished_at END
         WHERE id = $1 AND generation = $6",
        id.as_uuid(),
        outcome.delivery_status(),
        attempt,
        error,
        finished,
        push.generation,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Why an endpoint was disabled, as its event says.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum DisabledBecause {
    /// It answered 410 Gone.
    Gone,
    /// Its deliveries kept failing for longer than the limit.
    Failing,
}

impl DisabledBecause {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }
}

/// The data of an `endpoint.disabled` event.
#[derive(Debug, Serialize)]
struct EndpointDisabled {
    agent_id: AgentId,
    endpoint_url: String,
    reason: DisabledBecause,
    /// When the run of failures that ended here began.
    #[serde(with = "time::serde::rfc3339")]
    failing_since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    disabled_at: OffsetDateTime,
}

/// Updates the endpoint's run of failures after an attempt to `target`
/// (`started` is when it began), when `target` is still the agent's
/// endpoint; disables the endpoint when the run has lasted `disable_after`
/// or the endpoint is gone. Returns whether this attempt disabled it. On a
/// failure the agent's row stays locked until the transaction ends, so its
/// `endpoint.disabled` event is ordered after every earlier event of the
/// agent.
async fn endpoint_health(
    tx: &mut PgConnection,
    agent: AgentId,
    target: &str,
    outcome: Outcome,
    started: OffsetDateTime,
    disable_after: Duration,
) -> anyhow::Result<bool> {
    if outcome == Outcome::Delivered {
        // The common case: no row lock unless a run of failures ends, so
        // deliveries to one agent do not queue behind each other.
        sqlx::query!(
            "UPDATE agents SET endpoint_failing_since = NULL
             WHERE id = $1 AND endpoint_url = $2 AND endpoint_failing_since IS NOT NULL",
            agent.as_uuid(),
            target
        )
        .execute(&mut *tx)
        .await?;
        return Ok(false);
    }
    let endpoint = sqlx::query!(
        "SELECT endpoint_url, endpoint_failing_since, endpoint_disabled_at FROM agents WHERE id = $1 FOR NO KEY UPDATE",
        agent.as_uuid()
    )
    .fetch_one(&mut *tx)
    .await?;
    if endpoint.endpoint_url != target {
        return Ok(false); // Sent to the agent's former URL: no news of its endpoint.
    }
    let failing_since = endpoint.endpoint_failing_since.unwrap_or(started);
    if endpoint.endpoint_failing_since.is_none() {
        sqlx::query!("UPDATE agents SET endpoint_failing_since = $2 WHERE id = $1", agent.as_uuid(), failing_since)
            .execute(&mut *tx)
            .await?;
    }
    let now = OffsetDateTime::now_utc();
    let reason = match outcome {
        Outcome::Gone => DisabledBecause::Gone,
        _ if now - failing_since >= disable_after => DisabledBecause::Failing,
        _ => return Ok(false),
    };
    if endpoint.endpoint_disabled_at.is_some() {
        return Ok(false); // Another attempt disabled it first.
    }
    sqlx::query!("UPDATE agents SET endpoint_disabled_at = $2, updated_at = $2 WHERE id = $1", agent.as_uuid(), now)
        .execute(&mut *tx)
        .await?;
    let event = EndpointDisabled {
        agent_id: agent,
        endpoint_url: endpoint.endpoint_url,
        reason,
        failing_since,
        disabled_at: now,
    };
    events::record(tx, Aggregate::Agent(agent), events::ENDPOINT_DISABLED, &event).await?;
    tracing::warn!(agent_id = %agent, reason = event.reason.as_str(), "endpoint disabled");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_cannot_stop_an_attempt_from_being_recorded() {
        assert_eq!(storable("ok\0done"), "ok\u{FFFD}done");
    }

    #[test]
    fn credentials_compare_in_full() {
        assert!(constant_time_eq(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer abc"));
    }
}
