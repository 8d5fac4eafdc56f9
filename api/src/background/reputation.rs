//! The reputation's parameters follow the settings, and scores follow the
//! ratings. The parameters live in Postgres (`reputation_prior`: the prior
//! and `RATING_MIN_PRICE`, read by the SQL functions every rating uses), and
//! the maintenance task, one instance at a time, keeps scores current:
//!
//! - after the prior changed, every agent is rescored in batches, walking
//!   agent ids (`rescored_through`) so a restart goes on where it stopped;
//! - all the time, rated agents are refreshed a batch per round, walking
//!   their ids round and round (`refreshed_through`): a client's weight grows
//!   with its age and its paid counterparties, so a score computed at the
//!   last rating falls behind. A full turn over N rated agents takes
//!   N / `REFRESH_AGENTS` rounds (100,000 agents: about 1.4 hours).
//!
//! Each batch is one transaction that first locks its agents' rows, as a
//! rating does, and then computes their standing (the SQL function
//! `agent_standing`) on a snapshot taken after the locks: a rating racing
//! the batch either commits first and is counted, or waits and counts itself
//! after it. The cost of an agent's standing grows with its counted ratings
//! (one index-only pass) and its distinct raters (a few index probes each):
//! measured, 100,000 counted ratings from 10,000 clients take about 160 ms
//! (so a rating of such an agent holds its row that long), 1,000 about 2 ms.

use shared::domain::Price;
use shared::settings::ReputationPrior;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Agents rescored per transaction after the prior changed,
const AGENTS_PER_BATCH: i64 = 1_000;
/// and batches per maintenance round (every 10 s): 1M agents in under 4 minutes.
const BATCHES_PER_ROUND: usize = 50;
/// Rated agents refreshed per maintenance round.
const REFRESH_AGENTS: i64 = 200;

/// Makes `prior` and `min_price` the ones ratings use (starting a rescoring
/// of every agent when the prior changed), rescores up to
/// `BATCHES_PER_ROUND` batches of a rescoring under way, and refreshes
/// the next `REFRESH_AGENTS` rated agents. Returns how many agents'
/// standings changed.
pub async fn follow_settings(db: &PgPool, prior: ReputationPrior, min_price: Price) -> sqlx::Result<u64> {
    let changed = sqlx::query_scalar!(
        r#"WITH old AS (SELECT weight, mean FROM reputation_prior FOR UPDATE)
           UPDATE reputation_prior p SET weight = $1, mean = $2, min_price = $3,
               rescored_through = CASE WHEN (old.weight, old.mean) IS DISTINCT FROM ($1, $2) THEN $4
                                       ELSE p.rescored_through END
           FROM old
           WHERE (p.weight, p.mean, p.min_price) IS DISTINCT FROM ($1, $2, $3)
           RETURNING (old.weight, old.mean) IS DISTINCT FROM ($1, $2) AS "prior_changed!""#,
        prior.weight,
        prior.mean,
        min_price.value(),
        Uuid::nil(),
    )
    .fetch_optional(db)
    .await?;
    match changed {
        Some(true) => {
            tracing::info!(weight = %prior.weight, mean = %prior.mean, "reputation prior changed; rescoring agents");
        }
        Some(false) => tracing::info!(%min_price, "rating minimum price changed; applies to new ratings"),
        None => {}
    }
    let mut rescored = 0;
    for _ in 0..BATCHES_PER_ROUND {
        match rescore_batch(db).await? {
            Batch::Idle => break,
            Batch::Done(changed) => {
                rescored += changed;
                tracing::info!(rescored, "agents rescored");
                break;
            }
            Batch::More(changed) => rescored += changed,
        }
    }
    Ok(rescored + refresh_batch(db).await?)
}

enum Batch {
    /// No rescoring under way.
    Idle,
    /// The last batch; its agents whose standing changed.
    Done(u64),
    /// A batch, and more to come.
    More(u64),
}

/// The next batch of a rescoring after a change of the prior.
async fn rescore_batch(db: &PgPool) -> sqlx::Result<Batch> {
    let mut tx = db.begin().await?;
    let cursor =
        sqlx::query_scalar!("SELECT rescored_through FROM reputation_prior FOR UPDATE").fetch_one(&mut *tx).await?;
    let Some(cursor) = cursor else { return Ok(Batch::Idle) };
    let batch = sqlx::query_scalar!(
        "SELECT id FROM agents WHERE id > $1 ORDER BY id LIMIT $2 FOR NO KEY UPDATE",
        cursor,
        AGENTS_PER_BATCH,
    )
    .fetch_all(&mut *tx)
    .await?;
    let changed = restand(&mut tx, &batch).await?;
    let done = batch.len() < AGENTS_PER_BATCH as usize;
    let next = if done { None } else { batch.last().copied() };
    sqlx::query!("UPDATE reputation_prior SET rescored_through = $1", next).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(if done { Batch::Done(changed) } else { Batch::More(changed) })
}

/// The next rated agents of the periodic refresh; after the last, it starts
/// over from the first.
async fn refresh_batch(db: &PgPool) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let cursor =
        sqlx::query_scalar!("SELECT refreshed_through FROM reputation_prior FOR UPDATE").fetch_one(&mut *tx).await?;
    // Agents with counted ratings (the only ones with weights to grow),
    // from the partial index, one entry per rating of theirs.
    let batch = sqlx::query_scalar!(
        "SELECT id FROM agents WHERE id IN (
             SELECT DISTINCT agent_id FROM job_ratings WHERE uncounted_reason IS NULL AND agent_id > $1
             ORDER BY agent_id LIMIT $2
         )
         ORDER BY id FOR NO KEY UPDATE",
        cursor,
        REFRESH_AGENTS,
    )
    .fetch_all(&mut *tx)
    .await?;
    let changed = restand(&mut tx, &batch).await?;
    let next = if batch.len() < REFRESH_AGENTS as usize { Uuid::nil() } else { *batch.last().unwrap_or(&cursor) };
    sqlx::query!("UPDATE reputation_prior SET refreshed_through = $1", next).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Computes the agents' standing again (their rows locked by the caller);
/// returns how many changed.
async fn restand(tx: &mut PgConnection, agents: &[Uuid]) -> sqlx::Result<u64> {
    let updated = sqlx::query!(
        "UPDATE agents a SET (rating_sum, rating_count, uncounted_rating_count, rating, score) =
             (s.rating_sum, s.rating_count, s.uncounted_rating_count, s.rating, s.score)
         FROM unnest($1::uuid[]) AS batch (id), agent_standing(batch.id) s
         WHERE a.id = batch.id
           AND (a.rating_sum, a.rating_count, a.uncounted_rating_count, a.rating, a.score)
               IS DISTINCT FROM (s.rating_sum, s.rating_count, s.uncounted_rating_count, s.rating, s.score)",
        agents,
    )
    .execute(tx)
    .await?;
    Ok(updated.rows_affected())
}
