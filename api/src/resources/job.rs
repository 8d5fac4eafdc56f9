//! A job as stored and as its parties see it, found by id: what the jobs,
//! ratings, receipts and deliveries features and the expiry task share.

use rust_decimal::Decimal;
use serde::Serialize;
use shared::domain::{AgentId, ClientId, JobId, JobStatus, JobWindow, Price};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::http::state::AppState;

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

/// The job, whoever asks.
#[tracing::instrument(name = "sql find", skip_all)]
pub async fn find(db: &PgPool, id: JobId) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT id, client_id, agent_id, status, input, result, failure_reason, price, fee, callback_url,
                accept_by, deadline, expired_because, created_at, updated_at
         FROM jobs WHERE id = $1",
        id.as_uuid(),
    )
    .fetch_optional(db)
    .await
}

/// The job, if `principal` is its client or agent; otherwise it is not found
/// (its existence is nobody else's business).
pub async fn find_for_party(state: &AppState, id: JobId, principal: &Principal) -> Result<Job, ApiError> {
    let row = find(&state.db, id).await?.filter(|row| principal.is_party(row.agent_id, row.client_id));
    let job = Job::try_from(row.ok_or_else(|| not_found(id))?)?;
    Ok(if matches!(principal, Principal::Agent(_)) { job.for_agent() } else { job })
}

/// A job that does not exist, or is not the caller's: the same answer.
pub fn not_found(id: JobId) -> ApiError {
    ApiError::NotFound(format!("no job {id} of yours"))
}
