//! SQL for the agent resource. Every query is checked at compile time
//! against the migrations (`.sqlx/` holds the offline data).

use ed25519_dalek::VerifyingKey;
use shared::domain::{AgentDescription, AgentId, AgentName, Capabilities, EndpointUrl, Price, PublicKey};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::card_import::ImportedCard;
use super::card_proof::{Proof, Proven};
use super::model::UpdateAgent;
use crate::resources::agent::AgentRow;

/// An agent to insert: the request's fields, or its card's where the request left them out.
pub struct NewAgent<'a> {
    pub name: &'a AgentName,
    pub description: &'a AgentDescription,
    pub capabilities: &'a Capabilities,
    pub endpoint_url: &'a EndpointUrl,
    pub public_key: &'a PublicKey,
    pub price: Price,
    /// The caller's address, for the reputation's independence check.
    pub registered_from: Option<&'a str>,
}

#[tracing::instrument(name = "sql insert", skip_all)]
pub async fn insert(
    tx: &mut PgConnection,
    id: AgentId,
    agent: &NewAgent<'_>,
    sealed_secret: &[u8],
) -> sqlx::Result<AgentRow> {
    sqlx::query_as!(
        AgentRow,
        "INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, webhook_secret_sealed, registered_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::inet)
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at",
        id.as_uuid(),
        agent.name.as_str(),
        agent.description.as_str(),
        &agent.capabilities.to_strings(),
        agent.endpoint_url.as_str(),
        agent.public_key.as_bytes().as_slice(),
        agent.price.value(),
        sealed_secret,
        agent.registered_from,
    )
    .fetch_one(tx)
    .await
}

/// Whether the agent's endpoint is disabled (false for no such agent); locks
/// the row for the update that follows.
#[tracing::instrument(name = "sql endpoint disabled", skip_all)]
pub async fn endpoint_disabled(tx: &mut PgConnection, id: AgentId) -> sqlx::Result<bool> {
    let disabled = sqlx::query_scalar!(
        r#"SELECT endpoint_disabled_at IS NOT NULL AS "disabled!" FROM agents WHERE id = $1 FOR NO KEY UPDATE"#,
        id.as_uuid()
    )
    .fetch_optional(tx)
    .await?;
    Ok(disabled.unwrap_or(false))
}

/// Applies the given fields to an active agent; `None` when there is no
/// active agent with this id.
#[tracing::instrument(name = "sql update", skip_all)]
pub async fn update(tx: &mut PgConnection, id: AgentId, changes: &UpdateAgent) -> sqlx::Result<Option<AgentRow>> {
    let capabilities = changes.capabilities.as_ref().map(|capabilities| capabilities.to_strings());
    sqlx::query_as!(
        AgentRow,
        "UPDATE agents SET
             name = COALESCE($2, name),
             description = COALESCE($3, description),
             capabilities = COALESCE($4, capabilities),
             endpoint_url = COALESCE($5, endpoint_url),
             -- A new endpoint starts afresh: enabled, with no failures counted.
             endpoint_disabled_at = CASE WHEN $5::text IS NULL THEN endpoint_disabled_at END,
             endpoint_failing_since = CASE WHEN $5::text IS NULL THEN endpoint_failing_since END,
             price = COALESCE($6, price),
             updated_at = now()
         WHERE id = $1 AND active
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at",
        id.as_uuid(),
        changes.name.as_ref().map(|name| name.as_str()),
        changes.description.as_ref().map(|description| description.as_str()),
        capabilities.as_deref(),
        changes.endpoint_url.as_ref().map(|url| url.as_str()),
        changes.price.map(Price::value),
    )
    .fetch_optional(tx)
    .await
}

/// Deactivates an active agent; `None` when there is no active agent with
/// this id.
#[tracing::instrument(name = "sql deactivate", skip_all)]
pub async fn deactivate(tx: &mut PgConnection, id: AgentId) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as!(
        AgentRow,
        "UPDATE agents SET active = false, deactivated_at = now(), updated_at = now()
         WHERE id = $1 AND active
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at",
        id.as_uuid(),
    )
    .fetch_optional(tx)
    .await
}

/// Replaces the signing key of an active agent whose key is still
/// `current` (the one that verified the request); `None` otherwise: it was
/// deactivated, or another rotation won the race.
#[tracing::instrument(name = "sql rotate key", skip_all)]
pub async fn rotate_key(
    tx: &mut PgConnection,
    id: AgentId,
    current: &VerifyingKey,
    new: &PublicKey,
) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as!(
        AgentRow,
        "UPDATE agents SET public_key = $3, updated_at = now()
         WHERE id = $1 AND active AND public_key = $2
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at",
        id.as_uuid(),
        current.as_bytes().as_slice(),
        new.as_bytes().as_slice(),
    )
    .fetch_optional(tx)
    .await
}

/// Makes `sealed_secret` the agent's webhook secret; the one it replaces keeps
/// signing until `previous_expires_at` (`None`: dropped at once). Returns
/// whether the agent exists and is active.
#[tracing::instrument(name = "sql rotate secret", skip_all)]
pub async fn rotate_secret(
    tx: &mut PgConnection,
    id: AgentId,
    sealed_secret: &[u8],
    previous_expires_at: Option<OffsetDateTime>,
) -> sqlx::Result<bool> {
    let rotated = sqlx::query!(
        "UPDATE agents SET
             previous_webhook_secret_sealed = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE webhook_secret_sealed END,
             previous_webhook_secret_expires_at = $3,
             webhook_secret_sealed = $2,
             updated_at = now()
         WHERE id = $1 AND active",
        id.as_uuid(),
        sealed_secret,
        previous_expires_at,
    )
    .execute(tx)
    .await?;
    Ok(rotated.rows_affected() == 1)
}

/// Enables a disabled endpoint, with no failures counted; `None` when the
/// agent is not active or its endpoint is not disabled.
#[tracing::instrument(name = "sql enable endpoint", skip_all)]
pub async fn enable_endpoint(tx: &mut PgConnection, id: AgentId) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as!(
        AgentRow,
        "UPDATE agents SET endpoint_disabled_at = NULL, endpoint_failing_since = NULL, updated_at = now()
         WHERE id = $1 AND active AND endpoint_disabled_at IS NOT NULL
         RETURNING id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at",
        id.as_uuid(),
    )
    .fetch_optional(tx)
    .await
}

/// Where an agent's card is, the ETag it was last fetched with, and what of
/// it the registry serves back, with how that was proven.
pub struct CardImportRow {
    pub url: String,
    pub etag: Option<String>,
    pub interfaces: serde_json::Value,
    pub provider: Option<serde_json::Value>,
    pub proof: Proof,
    pub proven_site: Option<String>,
}

/// Records (or replaces) the card the agent was just given from `url`, and
/// how its claims were proven.
#[tracing::instrument(name = "sql save card import", skip_all)]
pub async fn save_card_import(
    tx: &mut PgConnection,
    agent: AgentId,
    url: &str,
    card: &ImportedCard,
    proven: &Proven,
) -> sqlx::Result<()> {
    let interfaces = serde_json::to_value(&card.interfaces).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let provider = card
        .provider
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    sqlx::query!(
        "INSERT INTO agent_card_imports (agent_id, url, etag, interfaces, provider, proof, proven_site)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (agent_id) DO UPDATE
         SET url = $2, etag = $3, interfaces = $4, provider = $5, proof = $6, proven_site = $7, fetched_at = now()",
        agent.as_uuid(),
        url,
        card.etag.as_deref(),
        interfaces,
        provider,
        proven.proof as Proof,
        proven.site.as_deref(),
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The agent's signing key changed: its imported card's proof named the old
/// one, so its claims are unverified until the card is fetched again, and the
/// ETag is dropped so that the next refresh reads (and proves) it afresh.
#[tracing::instrument(name = "sql forget card proof", skip_all)]
pub async fn forget_card_proof(tx: &mut PgConnection, agent: AgentId) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE agent_card_imports SET proof = $2, proven_site = NULL, etag = NULL WHERE agent_id = $1",
        agent.as_uuid(),
        Proof::Unverified as Proof,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// A refresh found the card unchanged.
#[tracing::instrument(name = "sql card unchanged", skip_all)]
pub async fn card_unchanged(tx: &mut PgConnection, agent: AgentId) -> sqlx::Result<()> {
    sqlx::query!("UPDATE agent_card_imports SET fetched_at = now() WHERE agent_id = $1", agent.as_uuid())
        .execute(tx)
        .await?;
    Ok(())
}

#[tracing::instrument(name = "sql find card import", skip_all)]
pub async fn card_import(db: &PgPool, agent: AgentId) -> sqlx::Result<Option<CardImportRow>> {
    sqlx::query_as!(
        CardImportRow,
        r#"SELECT url, etag, interfaces, provider, proof AS "proof: Proof", proven_site
           FROM agent_card_imports WHERE agent_id = $1"#,
        agent.as_uuid(),
    )
    .fetch_optional(db)
    .await
}
