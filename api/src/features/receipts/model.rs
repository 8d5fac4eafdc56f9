//! A job receipt: what it states (the signed claims) and how it is served.

use serde::Serialize;
use shared::domain::{AgentId, ClientId, JobId, JobStatus, Price};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A job that has just completed or failed, as its full receipt states it.
/// Amounts are decimal strings without a currency; times are RFC 3339.
#[derive(Debug, Serialize)]
pub struct FinishedJob<'a> {
    #[serde(rename = "job_id")]
    pub id: JobId,
    pub agent_id: AgentId,
    pub client_id: ClientId,
    /// `completed` or `failed`.
    pub status: JobStatus,
    pub price: Price,
    pub fee: Price,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Stated by its hash (`result_sha256`), not itself.
    #[serde(skip)]
    pub result: Option<&'a serde_json::Value>,
}

/// What a receipt states about its job when it is issued: the claims of
/// its full form before `forms::sign` adds the commitment, salt, `form` and
/// `iat` (rating the job adds `rating`).
#[derive(Debug, Serialize)]
pub struct ReceiptFacts<'a> {
    #[serde(flatten)]
    pub job: &'a FinishedJob<'a>,
    /// Hex SHA-256 of the job's result in RFC 8785 (JCS) canonical form;
    /// `null` for a failed job, which has no result.
    pub result_sha256: Option<String>,
}

/// A job's public receipt, as anyone may read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobReceipt {
    #[schema(value_type = String, example = "job_3f6c0e8a9b2d4c1e8f7a6b5c4d3e2f10")]
    pub job_id: JobId,
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b")]
    pub agent_id: AgentId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: OffsetDateTime,
    /// When the public receipt was signed: when the job finished (or, for a
    /// job finished before receipts were private, when it was made private).
    /// A rating never changes it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: OffsetDateTime,
    /// The public receipt: a compact JWS (`alg` EdDSA, `kid` a key of
    /// `/.well-known/jwks.json`) whose payload holds `form` (`public`),
    /// `job_id`, `agent_id`, `client_commitment`, `status`, `price`, `fee`,
    /// `created_at`, `finished_at`, `result_sha256` and `iat`; no client id
    /// and no rating. Trust the payload only after verifying the signature.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJqb2JfaWQiOiIuLi4ifQ.c2lnbmF0dXJl")]
    pub receipt: String,
}

/// A job's full receipt, as its client and its agent read it, with the
/// public receipt it matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct FullReceipt {
    #[schema(value_type = String, example = "job_3f6c0e8a9b2d4c1e8f7a6b5c4d3e2f10")]
    pub job_id: JobId,
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b")]
    pub agent_id: AgentId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: OffsetDateTime,
    /// When the full receipt was signed: when the job finished, or when it was rated.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: OffsetDateTime,
    /// The full receipt: a compact JWS like the public one whose payload
    /// holds `form` (`full`), `job_id`, `agent_id`, `client_id`,
    /// `client_salt` (64 hex digits), `client_commitment`, `status`,
    /// `price`, `fee`, `created_at`, `finished_at`, `result_sha256`,
    /// `rating` (once rated) and `iat`. Only the job's parties can read it.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJqb2JfaWQiOiIuLi4ifQ.c2lnbmF0dXJl")]
    pub receipt: String,
    /// The job's public receipt (as `GET /v1/agents/{id}/receipts` lists it).
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJqb2JfaWQiOiIuLi4ifQ.c2lnbmF0dXJl")]
    pub public_receipt: String,
}

/// One page of an agent's receipts, the most recently finished job first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptPage {
    pub receipts: Vec<JobReceipt>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub struct ReceiptRow {
    pub job_id: Uuid,
    pub agent_id: Uuid,
    pub finished_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub jws: String,
}

impl From<ReceiptRow> for JobReceipt {
    fn from(row: ReceiptRow) -> Self {
        Self {
            job_id: JobId::from_uuid(row.job_id),
            agent_id: AgentId::from_uuid(row.agent_id),
            finished_at: row.finished_at,
            issued_at: row.issued_at,
            receipt: row.jws,
        }
    }
}
