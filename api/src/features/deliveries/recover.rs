//! Recover: a recipient queues again, each as a new round, its deliveries
//! that died since a time, e.g. after fixing an outage of its own. The same
//! statements as the operator's `cargo xtask redrive` (`shared::redrive`),
//! bounded: a window of at most 14 days, at most 1,000 deliveries per call
//! (the answer says whether more remain), one call a minute per recipient.
//! Each delivery recovered starts a new round, which counts toward its cap
//! (`shared::redrive::MAX_ROUNDS`, with resends); those at the cap, and those
//! the egress policy refused whose URL is unchanged, stay dead and are
//! counted in the answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fred::prelude::KeysInterface;
use fred::types::{Expiration, SetOptions};
use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, ClientId};
use shared::redrive::{self, Recipient, Redrive, RedriveError, Redriven};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{RecipientId, require_recipient};
use crate::http::auth::{Signed, Signer};
use crate::http::error::{ApiError, BodyRefusals, Problem, SignedRequestRefusals};
use crate::http::path_id::PathId;
use crate::http::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recover_agent_deliveries)).routes(routes!(recover_client_deliveries))
}

/// How far back a recover reaches.
const MAX_WINDOW: Duration = Duration::days(14);
/// Deliveries queued per call, oldest death first.
const PER_CALL: u32 = 1_000;
/// One recover per recipient in this many seconds.
const INTERVAL_SECONDS: i64 = 60;

/// Which dead deliveries to queue again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// Those that died at or after this RFC 3339 time, at most 14 days ago.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T08:00:00Z")]
    since: OffsetDateTime,
    /// And before this one (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// Dead deliveries queued again by this call, oldest death first.
    queued: u64,
    /// More dead deliveries remain in the window (at most 1,000 are queued
    /// per call): call again, after a minute.
    more: bool,
    /// Dead deliveries in the window left dead because they were started
    /// over 20 times already (resends and recoveries; counted up to 1,000).
    at_cap: u64,
    /// Dead deliveries in the window left dead because the egress policy
    /// refused their URL (not a public address) and it is still the same:
    /// an agent changes its `endpoint_url` first; a job's callback cannot
    /// change (counted up to 1,000).
    refused: u64,
}

/// Queue again the deliveries to the agent's endpoint that died since a
/// time (signed by the agent).
#[utoipa::path(post, path = "/v1/agents/{id}/deliveries/recover", tag = "deliveries", request_body = Recover,
    params(PathId<AgentId>),
    responses((status = 404, description = "no such agent, or not yours", body = Problem, content_type = "application/problem+json"), 
        (status = 202, description = "queued again", body = Recovered),
        (status = 409, description = "the endpoint is disabled: enable it first", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals, BodyRefusals,
        (status = 429, description = "`too-soon`: this agent recovered less than a minute ago (see `Retry-After`); `rate-limited`: too many writes from this key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn recover_agent_deliveries(
    state: State<AppState>,
    id: PathId<AgentId>,
    signed: Signed<Recover>,
) -> Result<(StatusCode, Json<Recovered>), ApiError> {
    recover(state, id, signed).await
}

/// Queue again the callbacks of the client's jobs that died since a time
/// (signed by the client).
#[utoipa::path(post, path = "/v1/clients/{id}/deliveries/recover", tag = "deliveries", request_body = Recover,
    params(PathId<ClientId>),
    responses((status = 404, description = "no such client, or not yours", body = Problem, content_type = "application/problem+json"), 
        (status = 202, description = "queued again", body = Recovered),
        SignedRequestRefusals, BodyRefusals,
        (status = 429, description = "`too-soon`: this client recovered less than a minute ago (see `Retry-After`); `rate-limited`: too many writes from this key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn recover_client_deliveries(
    state: State<AppState>,
    id: PathId<ClientId>,
    signed: Signed<Recover>,
) -> Result<(StatusCode, Json<Recovered>), ApiError> {
    recover(state, id, signed).await
}

/// Both recipients' recover: only the recipient's own key may.
async fn recover<R: RecipientId>(
    State(state): State<AppState>,
    PathId(id): PathId<R>,
    Signed { signer, body: Recover { since, until } }: Signed<Recover>,
) -> Result<(StatusCode, Json<Recovered>), ApiError> {
    let recipient = id.recipient();
    require_recipient(&signer.principal, recipient)?;
    let now = OffsetDateTime::now_utc();
    if since < now - MAX_WINDOW {
        return Err(ApiError::invalid("since", "must be at most 14 days ago"));
    }
    if since > now {
        return Err(ApiError::invalid("since", "must not be in the future"));
    }
    if until.is_some_and(|until| until <= since) {
        return Err(ApiError::invalid("until", "must be later than since"));
    }
    let marker = Marker::take(&state, recipient).await?;
    let traceparent = shared::telemetry::current_traceparent();
    let window = Redrive { recipient, since, until, limit: PER_CALL };
    let redriven = match redrive_bound(&state, &signer, window, traceparent.as_deref()).await {
        Ok(redriven) => redriven,
        Err(error) => {
            // A refused or failed recover does not count against the minute.
            marker.release(&state).await;
            return Err(error);
        }
    };
    if redriven.queued > 0 {
        state.outbox.committed();
    }
    let Redriven { queued, more, at_cap, refused } = redriven;
    tracing::info!(%recipient, queued, more, at_cap, refused, "deliveries recovered");
    Ok((StatusCode::ACCEPTED, Json(Recovered { queued, more, at_cap, refused })))
}

/// The redrive, in a transaction bound to the key that signed the recover.
async fn redrive_bound(
    state: &AppState,
    signer: &Signer,
    window: Redrive,
    traceparent: Option<&str>,
) -> Result<redrive::Redriven, ApiError> {
    let recipient = window.recipient;
    let mut tx = signer.begin_write(&state.db).await?;
    let redriven = redrive::redrive(&mut tx, window, traceparent, false).await.map_err(|error| match error {
        RedriveError::NoSuchRecipient(_) => ApiError::NotFound(format!("no recipient {recipient}")),
        RedriveError::EndpointDisabled(agent) => ApiError::Conflict(format!(
            "agent {agent}'s endpoint is disabled: enable it (POST /v1/agents/{agent}/endpoint/enable), then recover"
        )),
        RedriveError::Database(error) => error.into(),
    })?;
    tx.commit().await?;
    Ok(redriven)
}

/// A recipient's one recover a minute: a Redis key (`SET NX EX`, so two
/// racing calls cannot both take it). Without Redis it cannot be checked,
/// so recover fails closed, like every signed write.
struct Marker(String);

impl Marker {
    async fn take(state: &AppState, recipient: Recipient) -> Result<Self, ApiError> {
        let key = format!("{}recover:{recipient}", state.settings.redis_key_prefix);
        let unavailable = |error: fred::error::Error| {
            tracing::warn!(%error, during = "recover marker", "redis unavailable");
            ApiError::Unavailable("cannot check the recover rate right now; retry shortly".into())
        };
        let taken: Option<String> = state
            .redis
            .set(&key, 1, Some(Expiration::EX(INTERVAL_SECONDS)), Some(SetOptions::NX), false)
            .await
            .map_err(unavailable)?;
        if taken.is_some() {
            return Ok(Self(key));
        }
        // -2 (gone meanwhile) or -1 (no expiry) cannot happen for long; 1 s covers both.
        let ttl: i64 = state.redis.ttl(&key).await.map_err(unavailable)?;
        let wait = u64::try_from(ttl).unwrap_or(1).max(1);
        Err(ApiError::TooSoon {
            message: format!("{recipient} recovered less than a minute ago; recover again in {wait} s"),
            retry_after_seconds: wait,
        })
    }

    /// Best effort: the key expires in a minute anyway.
    async fn release(self, state: &AppState) {
        if let Err(error) = state.redis.del::<i64, _>(&self.0).await {
            tracing::warn!(%error, during = "recover marker release", "redis unavailable");
        }
    }
}
