//! Webhook secrets stored before they were sealed: a migration cannot
//! encrypt (the key is not in the database), so this seals them from code.
//! `api migrate` runs it after the migrations, and the API's maintenance
//! task every minute (rows an older revision wrote during a roll-out).
//! Idempotent: it touches only rows that still hold plaintext, and each
//! update is conditional on the plaintext it sealed, so a concurrent
//! rotation is never overwritten.

use sqlx::PgPool;
use uuid::Uuid;

use super::Sealer;
use crate::domain::{AgentId, ClientId};
use crate::progress::{Progress, Report};

/// Rows sealed per statement (one `UPDATE … FROM UNNEST`).
const BATCH: i64 = 200;

/// Seals every plaintext webhook secret of agents and clients, at most
/// `max_batches` batches of each; returns how many rows it sealed. Progress
/// goes to `report` when it takes more than a few seconds.
pub async fn seal_legacy_secrets(
    db: &PgPool,
    sealer: &Sealer,
    max_batches: usize,
    report: Report,
) -> anyhow::Result<u64> {
    let mut progress = Progress::new("sealing plaintext webhook secrets", "rows", None, report);
    // In id order from where the last batch ended: each batch starts on the
    // next unsealed row (`agents_unsealed_secrets`), not at the table's start.
    let mut after = Uuid::nil();
    for _ in 0..max_batches {
        let agents = sqlx::query!(
            "SELECT id, webhook_secret, previous_webhook_secret FROM agents
             WHERE (webhook_secret IS NOT NULL OR previous_webhook_secret IS NOT NULL) AND id > $2
             ORDER BY id LIMIT $1",
            BATCH,
            after,
        )
        .fetch_all(db)
        .await?;
        let done = agents.len() < BATCH as usize;
        after = agents.last().map_or(after, |agent| agent.id);
        let mut batch = AgentBatch::default();
        for agent in agents {
            let owner = AgentId::from_uuid(agent.id).to_string();
            batch.current.push(seal(sealer, agent.webhook_secret.as_deref(), &owner).await?);
            batch.previous.push(seal(sealer, agent.previous_webhook_secret.as_deref(), &owner).await?);
            batch.ids.push(agent.id);
            batch.was_current.push(agent.webhook_secret);
            batch.was_previous.push(agent.previous_webhook_secret);
        }
        // One statement for the batch; each row only if it still holds the plaintext sealed.
        let updated = sqlx::query!(
            "UPDATE agents a SET
                 webhook_secret_sealed = COALESCE(s.current, a.webhook_secret_sealed), webhook_secret = NULL,
                 previous_webhook_secret_sealed = COALESCE(s.previous, a.previous_webhook_secret_sealed),
                 previous_webhook_secret = NULL
             FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[], $4::text[], $5::text[])
                  AS s (id, current, previous, was_current, was_previous)
             WHERE a.id = s.id AND a.webhook_secret IS NOT DISTINCT FROM s.was_current
               AND a.previous_webhook_secret IS NOT DISTINCT FROM s.was_previous",
            &batch.ids,
            &batch.current as _,
            &batch.previous as _,
            &batch.was_current as _,
            &batch.was_previous as _,
        )
        .execute(db)
        .await?;
        progress.add(updated.rows_affected());
        if done {
            break;
        }
    }
    let mut after = Uuid::nil();
    for _ in 0..max_batches {
        let clients = sqlx::query!(
            r#"SELECT id, webhook_secret AS "webhook_secret!" FROM clients
               WHERE webhook_secret IS NOT NULL AND id > $2 ORDER BY id LIMIT $1"#,
            BATCH,
            after,
        )
        .fetch_all(db)
        .await?;
        let done = clients.len() < BATCH as usize;
        after = clients.last().map_or(after, |client| client.id);
        let (mut ids, mut secrets, mut was) = (Vec::new(), Vec::new(), Vec::new());
        for client in clients {
            let owner = ClientId::from_uuid(client.id).to_string();
            secrets.push(sealer.seal(&client.webhook_secret, &owner).await?);
            ids.push(client.id);
            was.push(client.webhook_secret);
        }
        let updated = sqlx::query!(
            "UPDATE clients c SET webhook_secret_sealed = s.sealed, webhook_secret = NULL
             FROM UNNEST($1::uuid[], $2::bytea[], $3::text[]) AS s (id, sealed, was)
             WHERE c.id = s.id AND c.webhook_secret = s.was",
            &ids,
            &secrets,
            &was,
        )
        .execute(db)
        .await?;
        progress.add(updated.rows_affected());
        if done {
            break;
        }
    }
    let sealed = progress.done();
    progress.finish();
    Ok(sealed)
}

/// One batch of agents' secrets: their ids, what was sealed (`None`: no
/// such secret) and the plaintext it was sealed from.
#[derive(Default)]
struct AgentBatch {
    ids: Vec<Uuid>,
    current: Vec<Option<Vec<u8>>>,
    previous: Vec<Option<Vec<u8>>>,
    was_current: Vec<Option<String>>,
    was_previous: Vec<Option<String>>,
}

async fn seal(sealer: &Sealer, plaintext: Option<&str>, owner: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match plaintext {
        Some(secret) => Ok(Some(sealer.seal(secret, owner).await?)),
        None => Ok(None),
    }
}
