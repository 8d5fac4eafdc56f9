//! SQL for ratings. The insert is conditional on the job (the client's own,
//! finished) and on the primary key (once per job), so two racing ratings
//! of one job cannot both land. Whether a rating counts, and how much, is
//! decided in SQL (`why_uncounted`, `rating_weight`, `agent_standing`: the
//! migration `20261206000001_independent_reputation.sql`).

use shared::domain::{AgentId, ClientId, JobId};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{RateJob, RatingRow, Reputation, UncountedReason};

/// Writes the rating when `client` owns the job, it is completed or failed,
/// and it has no rating yet, marked uncounted when it does not count; the
/// agent's id, `None` otherwise.
#[tracing::instrument(name = "sql insert rating", skip_all)]
pub async fn insert(
    tx: &mut PgConnection,
    job: JobId,
    client: ClientId,
    rating: &RateJob,
) -> sqlx::Result<Option<AgentId>> {
    let agent = sqlx::query_scalar!(
        "INSERT INTO job_ratings (job_id, agent_id, client_id, score, comment, uncounted_reason)
         SELECT id, agent_id, client_id, $3, $4, why_uncounted(client_id, agent_id, price) FROM jobs
         WHERE id = $1 AND client_id = $2 AND status IN ('completed', 'failed')
         ON CONFLICT (job_id) DO NOTHING
         RETURNING agent_id",
        job.as_uuid(),
        client.as_uuid(),
        rating.score.value(),
        rating.comment.as_ref().map(|comment| comment.as_str()),
    )
    .fetch_optional(tx)
    .await?;
    Ok(agent.map(AgentId::from_uuid))
}

/// The agent's standing computed again from all its ratings (one pass over
/// its counted ratings by client, on the `job_ratings_counted` index). The
/// agent's row is locked first, so the computation reads a snapshot taken
/// after every earlier rating of the agent committed: concurrent ratings of
/// one agent serialise on its row, and the last one sees them all.
#[tracing::instrument(name = "sql rescore agent", skip_all)]
pub async fn rescore_agent(tx: &mut PgConnection, agent: AgentId) -> sqlx::Result<Reputation> {
    sqlx::query!("SELECT FROM agents WHERE id = $1 FOR NO KEY UPDATE", agent.as_uuid()).execute(&mut *tx).await?;
    sqlx::query_as!(
        Reputation,
        r#"UPDATE agents a SET (rating_sum, rating_count, uncounted_rating_count, rating, score) =
               (SELECT s.rating_sum, s.rating_count, s.uncounted_rating_count, s.rating, s.score
                FROM agent_standing(a.id) s)
           WHERE a.id = $1
           RETURNING rating, rating_count, uncounted_rating_count, score"#,
        agent.as_uuid(),
    )
    .fetch_one(tx)
    .await
}

/// One rating as shown, with its weight now.
#[tracing::instrument(name = "sql find rating", skip_all)]
pub async fn find(tx: &mut PgConnection, job: JobId) -> sqlx::Result<RatingRow> {
    sqlx::query_as!(
        RatingRow,
        r#"SELECT job_id, agent_id, score, comment, created_at,
               uncounted_reason AS "uncounted_reason: UncountedReason",
               CASE WHEN uncounted_reason IS NULL THEN round(rating_weight(agent_id, client_id), 1) ELSE 0 END
                   AS "weight!"
           FROM job_ratings WHERE job_id = $1"#,
        job.as_uuid(),
    )
    .fetch_one(tx)
    .await
}

/// An agent's ratings, newest first, strictly before the cursor position,
/// each with its weight (computed once per client on the page).
#[tracing::instrument(name = "sql list ratings", skip_all)]
pub async fn list(
    db: &PgPool,
    agent: AgentId,
    before: (OffsetDateTime, Uuid),
    limit: i64,
) -> sqlx::Result<Vec<RatingRow>> {
    sqlx::query_as!(
        RatingRow,
        r#"WITH page AS (
               SELECT job_id, agent_id, client_id, score, comment, created_at, uncounted_reason FROM job_ratings
               WHERE agent_id = $1 AND (created_at, job_id) < ($2, $3)
               ORDER BY created_at DESC, job_id DESC LIMIT $4
           ), weights AS (
               SELECT client_id, round(rating_weight($1, client_id), 1) AS weight
               FROM (SELECT DISTINCT client_id FROM page WHERE uncounted_reason IS NULL) AS raters
           )
           SELECT p.job_id, p.agent_id, p.score, p.comment, p.created_at,
               p.uncounted_reason AS "uncounted_reason: UncountedReason",
               COALESCE(w.weight, 0) AS "weight!"
           FROM page p LEFT JOIN weights w ON p.uncounted_reason IS NULL AND w.client_id = p.client_id
           ORDER BY p.created_at DESC, p.job_id DESC"#,
        agent.as_uuid(),
        before.0,
        before.1,
        limit,
    )
    .fetch_all(db)
    .await
}
