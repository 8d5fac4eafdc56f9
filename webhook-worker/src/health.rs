//! An agent endpoint's health, as stored: each failed attempt to it extends
//! its current run of failures (a success ends the run, in the statement
//! that records it: `record`), and an attempt may disable it, recording an
//! `endpoint.disabled` event; its deliveries then die unsent (and reach the
//! dead-letter topic) until the agent enables it again. Whether an attempt
//! disables it (a 410, or a run longer than `ENDPOINT_DISABLE_AFTER_SECONDS`)
//! is `policy`'s decision. (Pacing, which every URL gets, is `pacing`.)

use serde::Serialize;
use shared::domain::AgentId;
use shared::events::{self, Aggregate};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Why an endpoint was disabled, as its event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledBecause {
    /// It answered 410 Gone.
    Gone,
    /// Its deliveries kept failing for longer than the limit.
    Failing,
}

impl DisabledBecause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }
}

/// The data of an `endpoint.disabled` event.
#[derive(Debug, Serialize)]
struct EndpointDisabled<'a> {
    agent_id: AgentId,
    endpoint_url: &'a str,
    reason: DisabledBecause,
    /// When the run of failures that ended here began.
    #[serde(with = "time::serde::rfc3339")]
    failing_since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    disabled_at: OffsetDateTime,
}

/// The agent endpoint's run of failures, as a failed attempt to it left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailingRun {
    /// When the run began (this attempt's start, if it began the run).
    pub since: OffsetDateTime,
    /// Disabled already (by another attempt).
    pub disabled: bool,
}

/// Extends the endpoint's run of failures after a failed attempt to
/// `target` (`started` is when it began), when `target` is still the
/// agent's endpoint (`None` otherwise: an attempt to a former URL is no news
/// of the endpoint). The agent's row stays locked until the transaction
/// ends, so a [`disable`] in it is ordered after every earlier event of the
/// agent, and two failing attempts cannot both disable the endpoint.
pub async fn failed(
    tx: &mut PgConnection,
    agent: AgentId,
    target: &str,
    started: OffsetDateTime,
) -> sqlx::Result<Option<FailingRun>> {
    let endpoint = sqlx::query!(
        "SELECT endpoint_url, endpoint_failing_since, endpoint_disabled_at FROM agents WHERE id = $1 FOR NO KEY UPDATE",
        agent.as_uuid()
    )
    .fetch_one(&mut *tx)
    .await?;
    if endpoint.endpoint_url != target {
        return Ok(None);
    }
    let since = endpoint.endpoint_failing_since.unwrap_or(started);
    if endpoint.endpoint_failing_since.is_none() {
        sqlx::query!("UPDATE agents SET endpoint_failing_since = $2 WHERE id = $1", agent.as_uuid(), since)
            .execute(&mut *tx)
            .await?;
    }
    Ok(Some(FailingRun { since, disabled: endpoint.endpoint_disabled_at.is_some() }))
}

/// Disables the agent's endpoint `endpoint_url` at `now`, `because`, ending
/// the run of failures `run` (in the transaction [`failed`] locked the row
/// in), and records its `endpoint.disabled` event.
pub async fn disable(
    tx: &mut PgConnection,
    agent: AgentId,
    endpoint_url: &str,
    run: FailingRun,
    because: DisabledBecause,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query!("UPDATE agents SET endpoint_disabled_at = $2, updated_at = $2 WHERE id = $1", agent.as_uuid(), now)
        .execute(&mut *tx)
        .await?;
    let event =
        EndpointDisabled { agent_id: agent, endpoint_url, reason: because, failing_since: run.since, disabled_at: now };
    events::record(tx, Aggregate::Agent(agent), events::ENDPOINT_DISABLED, &event).await?;
    tracing::warn!(agent_id = %agent, reason = because.as_str(), "endpoint disabled");
    Ok(())
}
