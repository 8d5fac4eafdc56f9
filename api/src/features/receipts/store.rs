//! SQL for job receipts.

use shared::domain::{AgentId, JobId};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::ReceiptRow;

/// Stores a finished job's receipt, in the transaction that finished it.
#[tracing::instrument(name = "sql insert receipt", skip_all)]
pub async fn insert(
    tx: &mut PgConnection,
    job: JobId,
    agent: AgentId,
    finished_at: OffsetDateTime,
    jws: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO job_receipts (job_id, agent_id, finished_at, jws) VALUES ($1, $2, $3, $4)",
        job.as_uuid(),
        agent.as_uuid(),
        finished_at,
        jws,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The receipt's JWS, its row locked for [`replace`] in the same transaction.
#[tracing::instrument(name = "sql lock receipt", skip_all)]
pub async fn lock(tx: &mut PgConnection, job: JobId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT jws FROM job_receipts WHERE job_id = $1 FOR UPDATE", job.as_uuid())
        .fetch_optional(tx)
        .await
}

#[tracing::instrument(name = "sql replace receipt", skip_all)]
pub async fn replace(tx: &mut PgConnection, job: JobId, jws: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE job_receipts SET jws = $2, issued_at = now() WHERE job_id = $1", job.as_uuid(), jws)
        .execute(tx)
        .await?;
    Ok(())
}

/// A job's parties and status, and its receipt when it has one.
pub struct JobAndReceipt {
    pub agent_id: Uuid,
    pub client_id: Uuid,
    pub status: String,
    pub receipt: Option<ReceiptRow>,
}

#[tracing::instrument(name = "sql find receipt", skip_all)]
pub async fn find(db: &PgPool, job: JobId) -> sqlx::Result<Option<JobAndReceipt>> {
    let row = sqlx::query!(
        r#"SELECT j.agent_id, j.client_id, j.status,
                  r.finished_at AS "finished_at?", r.issued_at AS "issued_at?", r.jws AS "jws?"
           FROM jobs j LEFT JOIN job_receipts r ON r.job_id = j.id WHERE j.id = $1"#,
        job.as_uuid(),
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| JobAndReceipt {
        agent_id: row.agent_id,
        client_id: row.client_id,
        status: row.status,
        receipt: match (row.finished_at, row.issued_at, row.jws) {
            (Some(finished_at), Some(issued_at), Some(jws)) => {
                Some(ReceiptRow { job_id: job.as_uuid(), agent_id: row.agent_id, finished_at, issued_at, jws })
            }
            _ => None,
        },
    }))
}

/// An agent's receipts, the most recently finished first, strictly before
/// the cursor position.
#[tracing::instrument(name = "sql list receipts", skip_all)]
pub async fn list(
    db: &PgPool,
    agent: AgentId,
    before: (OffsetDateTime, Uuid),
    limit: i64,
) -> sqlx::Result<Vec<ReceiptRow>> {
    sqlx::query_as!(
        ReceiptRow,
        "SELECT job_id, agent_id, finished_at, issued_at, jws FROM job_receipts
         WHERE agent_id = $1 AND (finished_at, job_id) < ($2, $3)
         ORDER BY finished_at DESC, job_id DESC LIMIT $4",
        agent.as_uuid(),
        before.0,
        before.1,
        limit,
    )
    .fetch_all(db)
    .await
}
