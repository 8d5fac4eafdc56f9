//! A rating as clients send it, as anyone may read it, and as its event
//! tells the agent.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, ClientId, JobId, RatingComment, RatingScore};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Rate a finished job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateJob {
    /// 1 to 5 stars.
    #[schema(value_type = i16, minimum = 1, maximum = 5, example = 5)]
    pub score: RatingScore,
    /// 1–1000 characters, trimmed; leave it out for none.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$", example = "Fast and exact.")]
    pub comment: Option<RatingComment>,
}

// Why a rating does not count toward its agent's reputation, as
// `job_ratings.uncounted_reason` stores it (decided when it is given). No
// `///` on the type: utoipa would make it the description of every field
// that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum UncountedReason {
    /// The job cost less than `RATING_MIN_PRICE`.
    BelowMinPrice,
    /// The client and the agent have used the same signing key.
    SameSigningKey,
    /// The client and the agent registered from the same address within 24 hours.
    SameRegistrationAddress,
}

/// A rating of one job. Who rated it is not shown publicly.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRating {
    #[schema(value_type = String, example = "job_3f6c0e8a9b2d4c1e8f7a6b5c4d3e2f10")]
    pub job_id: JobId,
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b")]
    pub agent_id: AgentId,
    #[schema(minimum = 1, maximum = 5, example = 5)]
    pub score: i16,
    pub comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Whether it counts toward the agent's `rating`, `rating_count` and `score`.
    pub counted: bool,
    /// Why it does not count; `null` when it counts.
    pub uncounted_reason: Option<UncountedReason>,
    /// Its weight in the score now, to one decimal (finer would tell one
    /// client's ratings apart across agents): its client's weight, 0 to 1
    /// (the client's age and distinct paid counterparties), split evenly
    /// over that client's counted ratings of this agent; `"0"` when it does
    /// not count. Clients' weights grow, so this can rise later.
    #[schema(value_type = String, example = "0.5")]
    #[serde(with = "rust_decimal::serde::str")]
    pub weight: Decimal,
}

/// One page of an agent's ratings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingPage {
    pub ratings: Vec<JobRating>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The agent's standing after a rating: the weighted mean of its counted
/// ratings (two decimals), how many count and how many do not, and its
/// reputation score.
#[derive(Debug, Serialize)]
pub struct Reputation {
    #[serde(with = "rust_decimal::serde::str")]
    pub rating: Decimal,
    pub rating_count: i32,
    pub uncounted_rating_count: i32,
    #[serde(with = "rust_decimal::serde::str")]
    pub score: Decimal,
}

/// The data of a `job.rated` event: the rating, who gave it, and the
/// agent's standing after it.
#[derive(Debug, Serialize)]
pub struct JobRated<'a> {
    #[serde(flatten)]
    pub rating: &'a JobRating,
    pub client_id: ClientId,
    pub agent: Reputation,
}

pub struct RatingRow {
    pub job_id: Uuid,
    pub agent_id: Uuid,
    pub score: i16,
    pub comment: Option<String>,
    pub created_at: OffsetDateTime,
    pub uncounted_reason: Option<UncountedReason>,
    pub weight: Decimal,
}

impl From<RatingRow> for JobRating {
    fn from(row: RatingRow) -> Self {
        Self {
            job_id: JobId::from_uuid(row.job_id),
            agent_id: AgentId::from_uuid(row.agent_id),
            score: row.score,
            comment: row.comment,
            created_at: row.created_at,
            counted: row.uncounted_reason.is_none(),
            uncounted_reason: row.uncounted_reason,
            weight: row.weight,
        }
    }
}
