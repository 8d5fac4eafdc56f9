//! The reputation score's prior follows the settings: the prior lives in
//! Postgres (`reputation_prior`, read by the SQL function
//! `reputation_score` that every rating uses), and when the settings change
//! it, every agent is rescored in batches by the maintenance task, walking
//! agent ids so a restart goes on where it stopped.

use shared::settings::ReputationPrior;
use sqlx::PgPool;
use uuid::Uuid;

/// Agents rescored per statement (each a short transaction),
const AGENTS_PER_BATCH: i64 = 1_000;
/// and batches per maintenance round (every 10 s): 1M agents in under 4 minutes.
const BATCHES_PER_ROUND: usize = 50;

/// Makes `prior` the one scores use (starting a rescoring when it changed),
/// then rescores up to `BATCHES_PER_ROUND` batches of agents. Returns how
/// many agents' scores changed.
pub async fn follow_prior(db: &PgPool, prior: ReputationPrior) -> sqlx::Result<u64> {
    let changed = sqlx::query!(
        "UPDATE reputation_prior SET weight = $1, mean = $2, rescored_through = $3
         WHERE (weight, mean) IS DISTINCT FROM ($1, $2)",
        prior.weight,
        prior.mean,
        Uuid::nil(),
    )
    .execute(db)
    .await?;
    if changed.rows_affected() == 1 {
        tracing::info!(weight = %prior.weight, mean = %prior.mean, "reputation prior changed; rescoring agents");
    }
    let mut rescored = 0;
    for _ in 0..BATCHES_PER_ROUND {
        // Moves `rescored_through` past the batch (to NULL after the last);
        // a rating meanwhile already uses the new prior.
        let batch = sqlx::query!(
            r#"WITH batch AS (
                   SELECT id FROM agents WHERE id > (SELECT rescored_through FROM reputation_prior) ORDER BY id LIMIT $1
               ), rescored AS (
                   UPDATE agents a SET score = reputation_score(a.rating_sum, a.rating_count)
                   FROM batch WHERE a.id = batch.id AND a.score <> reputation_score(a.rating_sum, a.rating_count)
                   RETURNING 1
               )
               UPDATE reputation_prior
               SET rescored_through = (SELECT id FROM batch ORDER BY id DESC LIMIT 1)
               WHERE rescored_through IS NOT NULL
               RETURNING rescored_through IS NULL AS "done!", (SELECT count(*) FROM rescored) AS "rescored!""#,
            AGENTS_PER_BATCH,
        )
        .fetch_optional(db)
        .await?;
        let Some(batch) = batch else { break }; // No rescoring under way.
        rescored += batch.rescored.unsigned_abs();
        if batch.done {
            tracing::info!(rescored, "agents rescored");
            break;
        }
    }
    Ok(rescored)
}
