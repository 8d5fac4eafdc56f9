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

/// Rows sealed per statement.
const BATCH: i64 = 200;

/// Seals every plaintext webhook secret of agents and clients, at most
/// `max_batches` batches of each; returns how many rows it sealed.
pub async fn seal_legacy_secrets(db: &PgPool, sealer: &Sealer, max_batches: usize) -> anyhow::Result<u64> {
    let mut sealed = 0;
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
        for agent in agents {
            let owner = AgentId::from_uuid(agent.id).to_string();
            let current = seal(sealer, agent.webhook_secret.as_deref(), &owner).await?;
            let previous = seal(sealer, agent.previous_webhook_secret.as_deref(), &owner).await?;
            let updated = sqlx::query!(
                "UPDATE agents SET
                     webhook_secret_sealed = COALESCE($2, webhook_secret_sealed), webhook_secret = NULL,
                     previous_webhook_secret_sealed = COALESCE($3, previous_webhook_secret_sealed), previous_webhook_secret = NULL
                 WHERE id = $1 AND webhook_secret IS NOT DISTINCT FROM $4 AND previous_webhook_secret IS NOT DISTINCT FROM $5",
                agent.id,
                current,
                previous,
                agent.webhook_secret,
                agent.previous_webhook_secret,
            )
            .execute(db)
            .await?;
            sealed += updated.rows_affected();
        }
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
        for client in clients {
            let owner = ClientId::from_uuid(client.id).to_string();
            let secret = sealer.seal(&client.webhook_secret, &owner).await?;
            let updated = sqlx::query!(
                "UPDATE clients SET webhook_secret_sealed = $2, webhook_secret = NULL WHERE id = $1 AND webhook_secret = $3",
                client.id,
                secret,
                client.webhook_secret,
            )
            .execute(db)
            .await?;
            sealed += updated.rows_affected();
        }
        if done {
            break;
        }
    }
    Ok(sealed)
}

async fn seal(sealer: &Sealer, plaintext: Option<&str>, owner: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match plaintext {
        Some(secret) => Ok(Some(sealer.seal(secret, owner).await?)),
        None => Ok(None),
    }
}
