//! An agent as stored and as it is shown (to anyone, and to itself), found
//! by id: what the agent features, discovery and the agent cards share.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rust_decimal::Decimal;
use serde::Serialize;
use shared::domain::{AgentId, Price};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// What anyone may see of an agent. The webhook secret is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentProfile {
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b")]
    pub id: AgentId,
    pub name: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub public_key: String,
    #[schema(value_type = String, example = "12.5")]
    pub price: Price,
    /// Weighted mean of the agent's counted ratings (each client's mean,
    /// weighted as in `score`), always two decimals; `"0.00"` before the
    /// first rating that weighs anything.
    #[schema(value_type = String, example = "4.75")]
    #[serde(with = "rust_decimal::serde::str")]
    pub rating: Decimal,
    /// How many of its ratings count toward `rating` and `score`.
    pub rating_count: i32,
    /// How many ratings are kept and listed but do not count: a job below
    /// `RATING_MIN_PRICE`, or client and agent not independent (see the
    /// ratings listing for each one's reason).
    pub uncounted_rating_count: i32,
    /// What discovery's `sort=rating` orders by: the Bayesian mean of the
    /// per-client means `m_i` of the counted ratings, each client weighted by
    /// `w_i` (its age and distinct paid counterparties):
    /// `(RATING_PRIOR_WEIGHT × RATING_PRIOR_MEAN + Σ w_i·m_i) / (RATING_PRIOR_WEIGHT + Σ w_i)`,
    /// six decimals. Few, new or idle clients move it little from the prior's mean.
    #[schema(value_type = String, example = "3.181818")]
    #[serde(with = "rust_decimal::serde::str")]
    pub score: Decimal,
    /// The agent's last heartbeat, recorded at most once a minute (so up
    /// to a minute behind); `null` before the first.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<OffsetDateTime>,
    /// `false` once deactivated; inactive agents are not discoverable.
    pub active: bool,
    /// Set while the endpoint gets no deliveries: it answered 410 Gone, or
    /// failed for longer than the health limit. The agent re-enables it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub endpoint_disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// An agent as anyone sees it (its read, discovery): its endpoint's host
/// only, since a URL's path and query may hold the agent's own secrets.
///
/// The API never writes it: Postgres keeps each agent's as JSON in
/// `agents.public_json` (migration `20261207000001_agents_public_json`), and
/// public reads send that. This type is its shape, for the OpenAPI document
/// and for the test that holds Postgres's bytes to serde's
/// (`tests/tests/api/public_json.rs`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAgent {
    #[serde(flatten)]
    pub profile: AgentProfile,
    /// The host webhooks go to; the agent itself reads the whole URL
    /// (`GET /v1/agents/{id}/endpoint`).
    #[schema(example = "polyglot.example.com")]
    pub endpoint_host: String,
}

/// An agent as its own key sees it: the answers to its writes, with its
/// endpoint's whole URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    #[serde(flatten)]
    pub profile: AgentProfile,
    pub endpoint_url: String,
}

/// The agent's endpoint, as only the agent reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentEndpoint {
    #[schema(example = "https://polyglot.example.com/webhooks")]
    pub endpoint_url: String,
    #[schema(example = "polyglot.example.com")]
    pub endpoint_host: String,
    /// Set while the endpoint gets no deliveries (see the agent's `endpoint_disabled_at`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub endpoint_disabled_at: Option<OffsetDateTime>,
}

/// A row of the `agents` table, minus the secret and the search vector.
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub endpoint_url: String,
    pub public_key: Vec<u8>,
    pub price: Decimal,
    pub rating: Decimal,
    pub rating_count: i32,
    pub uncounted_rating_count: i32,
    pub score: Decimal,
    pub last_seen_at: Option<OffsetDateTime>,
    pub active: bool,
    pub endpoint_disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl From<AgentRow> for Agent {
    fn from(mut row: AgentRow) -> Self {
        let endpoint_url = std::mem::take(&mut row.endpoint_url);
        Self { profile: AgentProfile::from(row), endpoint_url }
    }
}

impl From<AgentRow> for AgentProfile {
    fn from(row: AgentRow) -> Self {
        Self {
            id: AgentId::from_uuid(row.id),
            name: row.name,
            description: row.description,
            capabilities: row.capabilities,
            public_key: STANDARD.encode(row.public_key),
            price: Price::from_stored(row.price),
            rating: at_scale(row.rating, 2),
            rating_count: row.rating_count,
            uncounted_rating_count: row.uncounted_rating_count,
            score: at_scale(row.score, 6),
            last_seen_at: row.last_seen_at,
            active: row.active,
            endpoint_disabled_at: row.endpoint_disabled_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// At its column's scale: sqlx reads a zero without one (`0`, not `0.00`).
fn at_scale(mut value: Decimal, scale: u32) -> Decimal {
    value.rescale(scale);
    value
}

/// The agent, active or not.
#[tracing::instrument(name = "sql find", skip_all)]
pub async fn find(db: &PgPool, id: AgentId) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as!(
        AgentRow,
        "SELECT id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at
         FROM agents WHERE id = $1",
        id.as_uuid(),
    )
    .fetch_optional(db)
    .await
}

/// The agent's public JSON (a [`PublicAgent`]), active or not, as Postgres
/// keeps it.
#[tracing::instrument(name = "sql find public json", skip_all)]
pub async fn find_public_json(db: &PgPool, id: AgentId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT public_json FROM agents WHERE id = $1", id.as_uuid()).fetch_optional(db).await
}

/// The agent's endpoint, active or not; its host as public reads show it
/// (`url_host`, the function `agents.public_json` uses).
#[tracing::instrument(name = "sql find endpoint", skip_all)]
pub async fn find_endpoint(db: &PgPool, id: AgentId) -> sqlx::Result<Option<AgentEndpoint>> {
    sqlx::query_as!(
        AgentEndpoint,
        r#"SELECT endpoint_url, url_host(endpoint_url) AS "endpoint_host!", endpoint_disabled_at FROM agents WHERE id = $1"#,
        id.as_uuid(),
    )
    .fetch_optional(db)
    .await
}

/// Whether the agent was ever registered (active or not).
#[tracing::instrument(name = "sql agent exists", skip_all)]
pub async fn exists(db: &PgPool, agent: AgentId) -> sqlx::Result<bool> {
    let exists =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT FROM agents WHERE id = $1) AS "exists!""#, agent.as_uuid());
    exists.fetch_one(db).await
}

pub fn not_found(id: AgentId) -> ApiError {
    ApiError::NotFound(format!("no agent with id {id}"))
}

pub fn deactivated(id: AgentId) -> ApiError {
    ApiError::Conflict(format!("agent {id} is deactivated and can no longer change"))
}

/// The key of the agent's public read in [`AppState::public_reads`].
pub fn cache_key(id: AgentId) -> String {
    format!("agent|{id}")
}

/// After a committed change: wake the outbox's readers, and stop serving
/// the agent from this instance's cache.
pub fn changed(state: &AppState, id: AgentId) {
    state.outbox.committed();
    state.public_reads.forget(&cache_key(id));
}
