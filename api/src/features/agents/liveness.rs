//! Heartbeats: an agent says it is alive; its `last_seen_at` shows it and
//! discovery's `seen_within_seconds` filters on it.
//!
//! An agent may heartbeat as often as its write rate limit allows, but
//! Postgres is written at most once a minute per agent: the first heartbeat
//! of a minute takes a Redis key (`SET NX GET`, one round trip) holding its
//! time, and the others answer that time without touching Postgres.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use fred::prelude::KeysInterface;
use fred::types::{Expiration, SetOptions};
use serde::Serialize;
use shared::domain::AgentId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::http::auth::{Authenticated, Own, Signer};
use crate::http::error::{ApiError, Problem, SignedRequestRefusals};
use crate::http::path_id::PathId;
use crate::http::state::AppState;
use crate::resources::agent;

/// The most often one agent's heartbeats write to Postgres.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, ToSchema)]
pub struct Heartbeat {
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b")]
    pub agent_id: AgentId,
    /// The agent's `last_seen_at`: this heartbeat, or the one within the
    /// last minute that was recorded.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: OffsetDateTime,
}

/// Say the agent is alive (signed by the agent; no body). Recorded at most
/// once a minute: `last_seen_at` may be up to a minute behind.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/heartbeat",
    tag = "agents",
    params(PathId<AgentId>),
    responses((status = 404, description = "no such agent, or not yours", body = Problem, content_type = "application/problem+json"), 
        (status = 200, body = Heartbeat),
        SignedRequestRefusals,
        (status = 409, description = "the agent is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    Own(id, Authenticated(signer)): Own<AgentId, Authenticated>,
) -> Result<Json<Heartbeat>, ApiError> {
    let now = shared::db::now_in_microseconds();
    let now_text = now.format(&Rfc3339).map_err(anyhow::Error::from)?;
    let key = format!("{}seen:{id}", state.settings.redis_key_prefix);
    let expiry = Expiration::EX(WRITE_INTERVAL.as_secs().try_into().unwrap_or(i64::MAX));
    let recorded: Option<String> =
        state.redis.set(&key, &now_text, Some(expiry), Some(SetOptions::NX), true).await.map_err(|error| {
            tracing::warn!(%error, during = "heartbeat", "redis unavailable");
            ApiError::Unavailable("cannot record the heartbeat right now; retry shortly".into())
        })?;
    if let Some(last_seen_at) = recorded.and_then(|text| OffsetDateTime::parse(&text, &Rfc3339).ok()) {
        return Ok(Json(Heartbeat { agent_id: id, last_seen_at }));
    }
    let written = record(&state, &signer, id, now).await;
    if !matches!(written, Ok(true)) {
        // Not recorded: the next heartbeat must try again.
        if let Err(error) = state.redis.del::<i64, _>(&key).await {
            tracing::warn!(%error, during = "heartbeat release", "redis unavailable");
        }
        written?;
        return Err(ApiError::Conflict(format!("agent {id} is deactivated")));
    }
    state.public_reads.forget(&agent::cache_key(id));
    Ok(Json(Heartbeat { agent_id: id, last_seen_at: now }))
}

/// Writes `last_seen_at`, bound to the key that signed the heartbeat;
/// whether the agent was active.
async fn record(state: &AppState, signer: &Signer, id: AgentId, now: OffsetDateTime) -> Result<bool, ApiError> {
    let mut tx = signer.begin_write(&state.db).await?;
    let written = sqlx::query!("UPDATE agents SET last_seen_at = $2 WHERE id = $1 AND active", id.as_uuid(), now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(written.rows_affected() == 1)
}
