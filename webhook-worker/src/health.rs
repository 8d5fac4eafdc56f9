//! An agent endpoint's health: each attempt to it updates when its current
//! run of failures began; a success ends the run. A run longer than
//! `ENDPOINT_DISABLE_AFTER_SECONDS`, or a 410, disables the endpoint and
//! records an `endpoint.disabled` event; its deliveries then die unsent (and
//! reach the dead-letter topic) until the agent enables it again. (Pacing,
//! which every URL gets, is `pacing`.)

use std::time::Duration;

use serde::Serialize;
use shared::domain::AgentId;
use shared::events::{self, Aggregate};
use sqlx::PgConnection;
use time::OffsetDateTime;

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

/// Extends the endpoint's run of failures after a failed attempt to
/// `target` (`started` is when it began), when `target` is still the
/// agent's endpoint; disables the endpoint when the run has lasted
/// `disable_after` or the endpoint is gone. Returns whether this attempt
/// disabled it. The agent's row stays locked until the transaction ends, so
/// its `endpoint.disabled` event is ordered after every earlier event of
/// the agent. (A success ends the run in the statement that records it:
/// `record`.)
pub async fn agent_endpoint_failed(
    tx: &mut PgConnection,
    agent: AgentId,
    target: &str,
    gone: bool,
    started: OffsetDateTime,
    disable_after: Duration,
) -> anyhow::Result<bool> {
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
    let reason = if gone {
        DisabledBecause::Gone
    } else if now - failing_since >= disable_after {
        DisabledBecause::Failing
    } else {
        return Ok(false);
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
