//! The job resource as clients and agents see it, and as they send it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, ClientId, EndpointUrl, JobId, JobStatus, JobWindow, Price};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Hire an agent.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b", pattern = "^agt_[0-9a-fA-F]{32}$")]
    pub agent_id: AgentId,
    /// Anything JSON; the agent's input.
    #[schema(value_type = Value)]
    pub input: serde_json::Value,
    /// The agreed price: at most the agent's price.
    #[schema(value_type = String, example = "12.50", pattern = "^\\s*(1000000(\\.0{1,6})?|[0-9]{1,6}(\\.[0-9]{1,6})?)\\s*$")]
    pub price: Price,
    /// Where accepted/completed/failed/expired webhooks go; https required.
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub callback_url: Option<EndpointUrl>,
    /// How long the agent has to accept, in seconds: 60–604800 (default
    /// `JOB_ACCEPT_TIMEOUT_SECONDS`, a day). Not accepted by then, the job
    /// expires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::domain::whole_number::optional"
    )]
    #[schema(minimum = 60, maximum = 604800, example = 3600)]
    pub accept_within_seconds: Option<u32>,
    /// When the work must be done (RFC 3339): in the future, at most a year
    /// ahead. Not completed by then, the job expires; a deadline before the
    /// accept window ends ends the window too.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<OffsetDateTime>,
}

/// Complete a job with its result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteJob {
    /// Anything JSON; the job's result.
    #[schema(value_type = Value)]
    pub result: serde_json::Value,
}

/// Fail a job, saying why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    /// 1–2000 characters.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$"
    )]
    pub reason: String,
}

pub const MAX_FAILURE_REASON_CHARS: usize = 2000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    #[schema(value_type = String, example = "job_3f6c0e8a9b2d4c1e8f7a6b5c4d3e2f10")]
    pub id: JobId,
    #[schema(value_type = String)]
    pub client_id: ClientId,
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    #[schema(value_type = String, example = "pending")]
    pub status: JobStatus,
    #[schema(value_type = Value)]
    pub input: serde_json::Value,
    #[schema(value_type = Option<Value>)]
    pub result: Option<serde_json::Value>,
    pub failure_reason: Option<String>,
    #[schema(value_type = String, example = "12.5")]
    pub price: Price,
    /// The platform's fee: price × PLATFORM_FEE_PERCENT, exact.
    #[schema(value_type = String, example = "0.3125")]
    pub fee: Price,
    /// Where the client hears of the job; shown to the client only (absent
    /// for the agent, and when the client gave none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Until when the agent may accept (a pending job expires then); `null`
    /// only on jobs accepted before accept windows existed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accept_by: Option<OffsetDateTime>,
    /// Until when the agent may complete (an accepted job expires then); `null`: none.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<OffsetDateTime>,
    /// Why an expired job expired: `accept_window` (not accepted by
    /// `accept_by`) or `deadline` (accepted, not completed by `deadline`);
    /// `null` unless expired.
    #[schema(value_type = Option<String>, example = json!(null))]
    pub expired_because: Option<JobWindow>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Job {
    /// The job as its agent sees it, in reads and in every event (events
    /// reach the agent as webhooks): without the client's callback URL.
    pub fn for_agent(mut self) -> Self {
        self.callback_url = None;
        self
    }
}

/// A row of `jobs`, minus the idempotency bookkeeping.
pub struct JobRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub agent_id: Uuid,
    pub status: String,
    pub input: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub failure_reason: Option<String>,
    pub price: Decimal,
    pub fee: Decimal,
    pub callback_url: Option<String>,
    pub accept_by: Option<OffsetDateTime>,
    pub deadline: Option<OffsetDateTime>,
    pub expired_because: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl TryFrom<JobRow> for Job {
    type Error = anyhow::Error;

    fn try_from(row: JobRow) -> anyhow::Result<Self> {
        Ok(Self {
            id: JobId::from_uuid(row.id),
            client_id: ClientId::from_uuid(row.client_id),
            agent_id: AgentId::from_uuid(row.agent_id),
            status: row.status.parse()?,
            input: row.input,
            result: row.result,
            failure_reason: row.failure_reason,
            price: Price::from_stored(row.price),
            fee: Price::from_stored(row.fee),
            callback_url: row.callback_url,
            accept_by: row.accept_by,
            deadline: row.deadline,
            expired_because: row.expired_because.as_deref().map(str::parse).transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// One page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
