//! SQL for the agent resource. Every query is checked at compile time
//! against the migrations (`.sqlx/` holds the offline data).

use shared::domain::{AgentId, Price, WebhookSecret};
use sqlx::PgPool;

use super::model::{AgentRow, RegisterAgent, UpdateAgent};

#[tracing::instrument(name = "sql insert", skip_all)]
pub async fn insert(db: &PgPool, id: AgentId, agent: &RegisterAgent, secret: &WebhookSecret) -> sqlx::Result<AgentRow> {
    sqlx::query_as!(
        AgentRow,
        "INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, webhook_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, created_at, updated_at",
        id.as_uuid(),
        agent.name.as_str(),
        agent.description.as_str(),
        &agent.capabilities.to_strings(),
        agent.endpoint_url.as_str(),
        agent.public_key.as_bytes().as_slice(),
        agent.price.value(),
        secret.expose(),
    )
    .fetch_one(db)
    .await
}

#[tracing::instrument(name = "sql find", skip_all)]
pub async fn find(db: &PgPool, id: AgentId) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as!(
        AgentRow,
        "SELECT id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, created_at, updated_at
         FROM agents WHERE id = $1",
        id.as_uuid(),
    )
    .fetch_optional(db)
    .await
}

/// Applies the given fields to an active agent; `None` when there is no
/// active agent with this id.
#[tracing::instrument(name = "sql update", skip_all)]
pub async fn update(db: &PgPool, id: AgentId, changes: &UpdateAgent) -> sqlx::Result<Option<AgentRow>> {
    let capabilities = changes.capabilities.as_ref().map(|capabilities| capabilities.to_strings());
    sqlx::query_as!(
        AgentRow,
        "UPDATE agents SET
             name = COALESCE($2, name),
             description = COALESCE($3, description),
             capabilities = COALESCE($4, capabilities),
             endpoint_url = COALESCE($5, endpoint_url),
             -- A new endpoint gets a fresh start after a 410 Gone disabled the old one.
             endpoint_disabled_at = CASE WHEN $5::text IS NULL THEN endpoint_disabled_at END,
             price = COALESCE($6, price),
             updated_at = now()
         WHERE id = $1 AND active
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, created_at, updated_at",
        id.as_uuid(),
        changes.name.as_ref().map(|name| name.as_str()),
        changes.description.as_ref().map(|description| description.as_str()),
        capabilities.as_deref(),
        changes.endpoint_url.as_ref().map(|url| url.as_str()),
        changes.price.map(Price::value),
    )
    .fetch_optional(db)
    .await
}

/// Deactivates an agent. Returns whether the agent exists (deactivating
/// twice is not an error).
#[tracing::instrument(name = "sql deactivate", skip_all)]
pub async fn deactivate(db: &PgPool, id: AgentId) -> sqlx::Result<bool> {
    let row = sqlx::query_scalar!(
        "WITH changed AS (
             UPDATE agents SET active = false, deactivated_at = now(), updated_at = now()
             WHERE id = $1 AND active RETURNING id
         )
         SELECT EXISTS (SELECT 1 FROM changed) OR EXISTS (SELECT 1 FROM agents WHERE id = $1) AS \"exists!\"",
        id.as_uuid(),
    )
    .fetch_one(db)
    .await?;
    Ok(row)
}
