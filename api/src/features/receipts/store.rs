//! SQL for job receipts.

use shared::domain::{AgentId, JobId};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::forms::Signed;
use super::model::ReceiptRow;

/// Stores a finished job's receipts, in the transaction that finished it.
#[tracing::instrument(name = "sql insert receipt", skip_all)]
pub async fn insert(
    tx: &mut PgConnection,
    job: JobId,
    agent: AgentId,
    finished_at: OffsetDateTime,
    signed: &Signed,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO job_receipts (job_id, agent_id, finished_at, jws, client_salt, public_jws, public_issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())",
        job.as_uuid(),
        agent.as_uuid(),
        finished_at,
        signed.full,
        signed.salt.as_bytes(),
        signed.public,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The full receipt's JWS, its row locked for [`replace`] in the same transaction.
#[tracing::instrument(name = "sql lock receipt", skip_all)]
pub async fn lock(tx: &mut PgConnection, job: JobId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT jws FROM job_receipts WHERE job_id = $1 FOR UPDATE", job.as_uuid())
        .fetch_optional(tx)
        .await
}

/// Replaces the full receipt; the public one never changes.
#[tracing::instrument(name = "sql replace receipt", skip_all)]
pub async fn replace(tx: &mut PgConnection, job: JobId, jws: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE job_receipts SET jws = $2, issued_at = now() WHERE job_id = $1", job.as_uuid(), jws)
        .execute(tx)
        .await?;
    Ok(())
}

/// A job's receipts as stored: the full one, and the public one once it
/// has it (a receipt an older revision issued has none until made private).
pub struct StoredReceipt {
    pub full: ReceiptRow,
    pub public_jws: Option<String>,
}

/// A job's parties and status, and its receipts when it has them.
pub struct JobAndReceipt {
    pub agent_id: Uuid,
    pub client_id: Uuid,
    pub status: String,
    pub receipt: Option<StoredReceipt>,
}

#[tracing::instrument(name = "sql find receipt", skip_all)]
pub async fn find(db: &PgPool, job: JobId) -> sqlx::Result<Option<JobAndReceipt>> {
    let row = sqlx::query!(
        r#"SELECT j.agent_id, j.client_id, j.status,
                  r.finished_at AS "finished_at?", r.issued_at AS "issued_at?", r.jws AS "jws?", r.public_jws
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
            (Some(finished_at), Some(issued_at), Some(jws)) => Some(StoredReceipt {
                full: ReceiptRow { job_id: job.as_uuid(), agent_id: row.agent_id, finished_at, issued_at, jws },
                public_jws: row.public_jws,
            }),
            _ => None,
        },
    }))
}

/// An agent's public receipts, the most recently finished first, strictly
/// before the cursor position. A receipt not yet made private is left out.
#[tracing::instrument(name = "sql list receipts", skip_all)]
pub async fn list(
    db: &PgPool,
    agent: AgentId,
    before: (OffsetDateTime, Uuid),
    limit: i64,
) -> sqlx::Result<Vec<ReceiptRow>> {
    sqlx::query_as!(
        ReceiptRow,
        r#"SELECT job_id, agent_id, finished_at, public_issued_at AS "issued_at!", public_jws AS "jws!"
           FROM job_receipts
           WHERE agent_id = $1 AND (finished_at, job_id) < ($2, $3) AND public_jws IS NOT NULL
           ORDER BY finished_at DESC, job_id DESC LIMIT $4"#,
        agent.as_uuid(),
        before.0,
        before.1,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Up to `limit` receipts without a public form, after `after` in job id
/// order: each job's id and full receipt.
#[tracing::instrument(name = "sql receipts without a public form", skip_all)]
pub async fn without_public_form(db: &PgPool, after: Uuid, limit: i64) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        "SELECT job_id, jws FROM job_receipts WHERE public_jws IS NULL AND job_id > $1 ORDER BY job_id LIMIT $2",
        after,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|row| (row.job_id, row.jws)).collect())
}

/// Stores the receipts of `forms` (job id, the full receipt they were
/// signed from, the two forms), each only if its row still has that full
/// receipt and no public form: a rating signed meanwhile (by an older
/// revision) is never overwritten, and the row waits for the next pass.
#[tracing::instrument(name = "sql make receipts private", skip_all)]
pub async fn add_public_forms(db: &PgPool, forms: &[(Uuid, String, Signed)]) -> sqlx::Result<u64> {
    let jobs: Vec<Uuid> = forms.iter().map(|(job, ..)| *job).collect();
    let was: Vec<&str> = forms.iter().map(|(_, was, _)| was.as_str()).collect();
    let full: Vec<&str> = forms.iter().map(|(.., signed)| signed.full.as_str()).collect();
    let public: Vec<&str> = forms.iter().map(|(.., signed)| signed.public.as_str()).collect();
    let salts: Vec<&[u8]> = forms.iter().map(|(.., signed)| signed.salt.as_bytes()).collect();
    let updated = sqlx::query!(
        "UPDATE job_receipts r
         SET jws = s.full_jws, issued_at = now(), client_salt = s.salt, public_jws = s.public_jws,
             public_issued_at = now()
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[])
              AS s (job_id, was, full_jws, public_jws, salt)
         WHERE r.job_id = s.job_id AND r.jws = s.was AND r.public_jws IS NULL",
        &jobs,
        &was as _,
        &full as _,
        &public as _,
        &salts as _,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected())
}
