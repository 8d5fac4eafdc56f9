//! Domain events: what happened to an agent or a job. Each is recorded in the
//! outbox (the `events` table) in the transaction of the change it describes,
//! then published to Pub/Sub by the API's publisher and sent as webhooks by
//! the worker. Both binaries record events, so this lives here.
//!
//! The published form is [`Envelope`], documented in `docs/EVENTS.md` and
//! `docs/events.schema.json`. Adding an optional field keeps
//! [`SCHEMA_VERSION`]; any other change bumps it.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{AgentId, EventId, JobId};

/// The version of the envelope and of every event's `data`.
pub const SCHEMA_VERSION: u32 = 1;

pub const AGENT_REGISTERED: &str = "agent.registered";
pub const AGENT_UPDATED: &str = "agent.updated";
pub const AGENT_DEACTIVATED: &str = "agent.deactivated";
pub const AGENT_WEBHOOK_SECRET_ROTATED: &str = "agent.webhook_secret_rotated";
/// The agent replaced its signing key (`data`: the agent, with the new `public_key`).
pub const AGENT_KEY_ROTATED: &str = "agent.key_rotated";
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
pub const ENDPOINT_ENABLED: &str = "endpoint.enabled";
pub const JOB_CREATED: &str = "job.created";
pub const JOB_RATED: &str = "job.rated";
/// A job's accept window or deadline passed (`data.expired_because`).
pub const JOB_EXPIRED: &str = "job.expired";

/// How many ordering keys the aggregates of one kind share. Changing it (or
/// the keys' form) while events are unacknowledged could reorder an
/// aggregate's events: EVENTS.md tells consumers how to cross such a deploy.
pub const ORDERING_KEYS: u128 = 16;

/// What an event is about. Its events share an ordering key
/// ([`Aggregate::ordering_key`]), so one consumer sees one agent's (or job's)
/// events in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Agent(AgentId),
    Job(JobId),
}

impl Aggregate {
    fn kind(self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::Job(_) => "job",
        }
    }

    fn uuid(self) -> Uuid {
        match self {
            Self::Agent(id) => id.as_uuid(),
            Self::Job(id) => id.as_uuid(),
        }
    }

    /// The aggregate as stored: `events.aggregate_type` and `aggregate_id`.
    pub fn from_stored(kind: &str, id: Uuid) -> Option<Self> {
        match kind {
            "agent" => Some(Self::Agent(AgentId::from_uuid(id))),
            "job" => Some(Self::Job(JobId::from_uuid(id))),
            _ => None,
        }
    }

    /// The Pub/Sub ordering key of the aggregate's events: one of
    /// [`ORDERING_KEYS`] per kind, always the same one for one aggregate, so
    /// its events keep their order. A Publish call carries one key's
    /// messages only, so a key per aggregate cost a call per job; shared
    /// keys let a round's events go in a few calls.
    pub fn ordering_key(self) -> String {
        format!("{}-{:02}", self.kind(), self.uuid().as_u128() % ORDERING_KEYS)
    }

    /// The prefixed id (`agt_…`, `job_…`).
    pub fn id(self) -> String {
        match self {
            Self::Agent(id) => id.to_string(),
            Self::Job(id) => id.to_string(),
        }
    }
}

/// Records an event in the outbox, inside the caller's transaction.
#[tracing::instrument(name = "sql insert event", skip_all, fields(event_type))]
pub async fn record(
    tx: &mut PgConnection,
    aggregate: Aggregate,
    event_type: &str,
    data: &impl Serialize,
) -> Result<EventId, sqlx::Error> {
    let id = EventId::generate();
    let data = serde_json::to_value(data).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!(
        "INSERT INTO events (id, aggregate_type, aggregate_id, type, data) VALUES ($1, $2, $3, $4, $5)",
        id.as_uuid(),
        aggregate.kind(),
        aggregate.uuid(),
        event_type,
        data
    )
    .execute(tx)
    .await?;
    Ok(id)
}

/// An event as published to the `registry-events` topic.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub schema_version: u32,
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The outbox position: one total order over all events, in commit order
    /// within an aggregate.
    pub sequence: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: &'a Value,
}

impl<'a> Envelope<'a> {
    pub fn new(
        id: EventId,
        event_type: &'a str,
        aggregate: Aggregate,
        sequence: i64,
        occurred_at: OffsetDateTime,
        data: &'a Value,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            id,
            event_type,
            aggregate_type: aggregate.kind(),
            aggregate_id: aggregate.id(),
            sequence,
            occurred_at,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregate_survives_storage() {
        let agent = Aggregate::Agent(AgentId::generate());
        assert_eq!(Aggregate::from_stored(agent.kind(), agent.uuid()), Some(agent));
        let job = Aggregate::Job(JobId::generate());
        assert_eq!(Aggregate::from_stored(job.kind(), job.uuid()), Some(job));
        assert_eq!(Aggregate::from_stored("client", Uuid::nil()), None);
        assert!(job.id().starts_with("job_"));
    }

    #[test]
    fn an_aggregate_keeps_one_of_sixteen_ordering_keys_per_type() {
        let job = |bits: u128| Aggregate::Job(JobId::from_uuid(Uuid::from_u128(bits)));
        assert_eq!(job(0x1f).ordering_key(), "job-15");
        assert_eq!(job(0x20).ordering_key(), "job-00");
        assert_eq!(Aggregate::Agent(AgentId::from_uuid(Uuid::from_u128(0x1f))).ordering_key(), "agent-15");
    }
}
