//! SQL for ratings. The insert is conditional on the job (the client's own,
//! finished) and on the primary key (once per job), so two racing ratings
//! of one job cannot both land.

use shared::domain::{AgentId, ClientId, JobId, RatingScore};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{RateJob, RatingRow, Reputation};

/// Writes the rating when `client` owns the job, it is completed or failed,
/// and it has no rating yet; `None` otherwise.
#[tracing::instrument(name = "sql insert rating", skip_all)]
pub async fn insert(
    tx: &mut PgConnection,
    job: JobId,
    client: ClientId,
    rating: &RateJob,
) -> sqlx::Result<Option<RatingRow>> {
    sqlx::query_as!(
        RatingRow,
        "INSERT INTO job_ratings (job_id, agent_id, client_id, score, comment)
         SELECT id, agent_id, client_id, $3, $4 FROM jobs
         WHERE id = $1 AND client_id = $2 AND status IN ('completed', 'failed')
         ON CONFLICT (job_id) DO NOTHING
         RETURNING job_id, agent_id, score, comment, created_at",
        job.as_uuid(),
        client.as_uuid(),
        rating.score.value(),
        rating.comment.as_ref().map(|comment| comment.as_str()),
    )
    .fetch_optional(tx)
    .await
}

/// Counts the score into the agent's mean and reputation score. The row
/// lock serialises concurrent ratings of one agent.
#[tracing::instrument(name = "sql add rating to agent", skip_all)]
pub async fn add_to_agent(tx: &mut PgConnection, agent: AgentId, score: RatingScore) -> sqlx::Result<Reputation> {
    sqlx::query_as!(
        Reputation,
        r#"UPDATE agents SET
               rating_sum = rating_sum + $2,
               rating_count = rating_count + 1,
               rating = round((rating_sum + $2)::numeric / (rating_count + 1), 2),
               score = reputation_score(rating_sum + $2, rating_count + 1)
           WHERE id = $1
           RETURNING rating, rating_count, score"#,
        agent.as_uuid(),
        i32::from(score.value()),
    )
    .fetch_one(tx)
    .await
}

/// An agent's ratings, newest first, strictly before the cursor position.
#[tracing::instrument(name = "sql list ratings", skip_all)]
pub async fn list(
    db: &PgPool,
    agent: AgentId,
    before: (OffsetDateTime, Uuid),
    limit: i64,
) -> sqlx::Result<Vec<RatingRow>> {
    sqlx::query_as!(
        RatingRow,
        "SELECT job_id, agent_id, score, comment, created_at FROM job_ratings
         WHERE agent_id = $1 AND (created_at, job_id) < ($2, $3)
         ORDER BY created_at DESC, job_id DESC LIMIT $4",
        agent.as_uuid(),
        before.0,
        before.1,
        limit,
    )
    .fetch_all(db)
    .await
}
