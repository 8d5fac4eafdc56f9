//! One Cloud Tasks push, orchestrated: authenticate it (`push_auth`), lease
//! the delivery (`lease`), take the recipient's and the host's send slots
//! (`slots`), pace it (`pacing`),
//! send the webhook (`send`), record the attempt (`record`) and enqueue what
//! follows (`next_attempt`), then answer. What each attempt comes to and when
//! the next runs is decided by `policy`, not here. The worker owns the
//! retry schedule, so Cloud Tasks hears of a receiver's failure only as a
//! 2xx; its own retries are left for the worker's faults:
//!
//! | what happened                              | recorded                      | answer |
//! |--------------------------------------------|-------------------------------|--------|
//! | 2xx                                        | delivered                     | 200 |
//! | 410 Gone                                   | gone (endpoint disabled)      | 200 |
//! | refused by the SSRF policy                 | refused (dead)                | 200 |
//! | other failure, attempts left               | retry; next attempt's task created, scheduled | 200 |
//! | other failure, last attempt                | dead                          | 200 |
//! | failure that ends the endpoint's health    | dead (endpoint disabled)      | 200 |
//! | endpoint disabled (not sent)               | delivery dead                 | 200 |
//! | URL paced, or its host's or recipient's slots busy (not sent) | a task for the same attempt, later | 200 |
//! | URL paced past the delivery's whole schedule | dead, not sent               | 200 |
//! | attempt already recorded (a duplicate push) | — (its next task made sure of) | 200 |
//! | another push holds the lease               | —                             | 409 |
//! | our fault (Postgres, Cloud Tasks)          | —                             | 500 |
//!
//! Never 429 or 503, and never a receiver's `Retry-After`: those slow the
//! whole queue, so one receiver could slow every tenant's webhooks.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use shared::delivery_tasks::Push;
use shared::domain::EventId;
use shared::error_chain::Causes;
use time::OffsetDateTime;
use tracing::Instrument;
use url::Url;

use crate::lease::{self, Leased};
use crate::next_attempt::Next;
use crate::pacing::{self, Pace};
use crate::policy::{NotSent, Unsent};
use crate::record::{self, Attempted};
use crate::send::{self, Webhook};
use crate::slots::Slot;
use crate::state::WorkerState;

pub async fn handle(State(state): State<WorkerState>, headers: HeaderMap, Json(push): Json<Push>) -> Response {
    if let Err(refused) = state.push_auth.check(&headers).await {
        tracing::warn!(reason = %refused, "push refused");
        return (StatusCode::UNAUTHORIZED, "missing or wrong worker credentials").into_response();
    }
    match deliver(&state, &push).await {
        Ok(answer) => answer.into_response(),
        Err(error) => {
            // Our fault (Postgres, Cloud Tasks): Cloud Tasks pushes again later.
            tracing::error!(delivery_id = %push.delivery_id, error = %Causes(&*error), "delivery failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What Cloud Tasks is told.
enum Answer {
    Done,
    /// Another push of this delivery is sending right now.
    Busy,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Done => StatusCode::OK.into_response(),
            // Not 503: that would slow the whole queue for one delivery's overlap.
            Self::Busy => (StatusCode::CONFLICT, "another push of this delivery is sending").into_response(),
        }
    }
}

async fn deliver(state: &WorkerState, push: &Push) -> anyhow::Result<Answer> {
    let Some(leased) = lease::take(&state.leases, push).await? else {
        return unclaimable(state, push).await;
    };
    let answer = attempt(state, push, &leased).await;
    if answer.is_err() {
        lease::release(&state.db, push, leased.token).await;
    }
    answer
}

async fn attempt(state: &WorkerState, push: &Push, leased: &Leased) -> anyhow::Result<Answer> {
    if leased.endpoint_disabled {
        return not_sent(state, push, leased, NotSent::EndpointDisabled).await;
    }
    // Host only: a URL's path and query may hold an agent's secrets.
    let target_host = Url::parse(&leased.target_url).ok().and_then(|url| url.host_str().map(str::to_owned));
    let Slot::Taken(slots) = state.slots.take(&leased.owner, target_host.as_deref()).await else {
        return not_sent(state, push, leased, NotSent::Busy).await;
    };
    let answer = paced_attempt(state, push, leased, target_host).await;
    state.slots.give_back(slots).await;
    answer
}

/// With the recipient's and the host's send slots: sends unless the URL is
/// paced.
async fn paced_attempt(
    state: &WorkerState,
    push: &Push,
    leased: &Leased,
    target_host: Option<String>,
) -> anyhow::Result<Answer> {
    match pacing::pace(&state.db, &leased.target_url, leased.paced_until, state.policy.hold()).await? {
        Pace::Send => {}
        Pace::PacedUntil(until) => return not_sent(state, push, leased, NotSent::Paced(until)).await,
        Pace::ProbeInFlight => return not_sent(state, push, leased, NotSent::Busy).await,
    }

    let span = tracing::info_span!(
        "delivery attempt",
        delivery_id = %push.delivery_id,
        attempt = leased.attempt,
        target_host,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let secrets = open_secrets(state, leased).await?;
    let secrets: Vec<&str> = secrets.iter().map(ExposeSecret::expose_secret).collect();
    let webhook = Webhook {
        id: push.delivery_id,
        event: EventId::from_uuid(leased.event_id),
        event_type: &leased.event_type,
        occurred_at: leased.occurred_at,
        data: &leased.data,
        target: &leased.target_url,
        secrets: &secrets,
    };
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let sent = send::send(&state.egress, webhook, state.policy.send_timeout()).instrument(span.clone()).await;
    let latency_ms = i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX);

    let attempted = Attempted { push, leased, started, latency_ms, sent: &sent };
    let Some(decision) = record::attempt(&state.db, &state.successes, attempted, &state.policy).await? else {
        tracing::warn!(delivery_id = %push.delivery_id, "lease lapsed during the send; the push that took over records");
        return Ok(Answer::Done);
    };
    span.record("status", sent.status);
    span.record("outcome", decision.outcome.as_str());
    span.in_scope(|| {
        tracing::info!(latency_ms, "delivery attempt");
        // The dead-deliveries metric and alert count this line.
        if decision.outcome.is_dead() {
            tracing::warn!(error = sent.error.as_deref(), "delivery dead");
        }
    });
    if let Some(next) = &decision.next {
        // The next attempt continues this one's trace.
        next.enqueue(&state.tasks, span.in_scope(shared::telemetry::current_traceparent)).await?;
    }
    Ok(Answer::Done)
}

/// The recipient's secret and, during a rotation's grace period, the one
/// it replaced: opened here, for signing, and nowhere else.
async fn open_secrets(state: &WorkerState, leased: &Leased) -> anyhow::Result<Vec<SecretString>> {
    let mut secrets = vec![state.sealer.open(&leased.sealed_secret, &leased.owner).await?];
    if let Some(previous) = &leased.previous_sealed_secret {
        secrets.push(state.sealer.open(previous, &leased.owner).await?);
    }
    Ok(secrets)
}

/// Not sent now, because of `why`: the delivery dies unsent (and reaches
/// the dead-letter topic), or the same attempt is put off as a task of its
/// own, as `policy` decides.
async fn not_sent(state: &WorkerState, push: &Push, leased: &Leased, why: NotSent) -> anyhow::Result<Answer> {
    let now = OffsetDateTime::now_utc();
    match state.policy.unsent(why, push, leased.attempt, leased.deferrals, leased.dispatched_at, now) {
        Unsent::Die(why) => {
            record::killed_unsent(&state.db, push, leased.token, why).await?;
            tracing::warn!(delivery_id = %push.delivery_id, error = why, "delivery dead");
        }
        Unsent::Defer(next) => {
            if record::deferred(&state.db, push, leased.token, &next).await? {
                next.enqueue(&state.tasks, shared::telemetry::current_traceparent()).await?;
            }
        }
    }
    Ok(Answer::Done)
}

/// No lease: the delivery is unknown, final, resent since this task was
/// made, or this push's attempt is recorded already (done, 200); or another
/// push holds it (try later).
async fn unclaimable(state: &WorkerState, push: &Push) -> anyhow::Result<Answer> {
    let Some(current) = lease::current(&state.db, push).await? else {
        tracing::warn!(delivery_id = %push.delivery_id, "push for an unknown delivery; dropped");
        return Ok(Answer::Done);
    };
    if current.generation != push.generation || current.status.is_final() {
        return Ok(Answer::Done);
    }
    match push.attempt {
        Some(attempt) if current.attempts >= attempt => {
            // Recorded already. If the worker died before scheduling what
            // follows, this push of the same task makes sure it exists.
            if let (true, Some(task_name)) = (current.attempts == attempt, current.task_name) {
                let next = Next::recorded(push, attempt + 1, task_name, current.next_attempt_at);
                next.enqueue(&state.tasks, current.traceparent).await?;
            }
            Ok(Answer::Done)
        }
        _ => Ok(Answer::Busy),
    }
}
