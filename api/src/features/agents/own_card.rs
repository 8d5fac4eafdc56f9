//! An agent's own A2A Agent Card (`agent_card_url`), from the agent's side:
//! fetching it for a registration or an update, refreshing it, and what it
//! declared for the registry's card of the agent (served by `agent_cards`).

use axum::Json;
use axum::extract::State;
use shared::domain::{AgentId, EndpointUrl};
use shared::events::{self, Aggregate};

use super::card_import::{self, AgentInterface, AgentProvider, Fetched, ImportedCard};
use super::model::UpdateAgent;
use super::{inactive_or_missing, store};
use crate::http::auth::{Authenticated, Own};
use crate::http::error::{ApiError, Problem, SignedRequestRefusals};
use crate::http::extract::require_allowed_scheme;
use crate::http::path_id::PathId;
use crate::http::state::AppState;
use crate::resources::agent::{self, Agent, deactivated};

/// The card at `url`, fetched without an ETag (so never "unchanged").
pub(super) async fn fetch(state: &AppState, url: &EndpointUrl) -> Result<ImportedCard, ApiError> {
    require_allowed_scheme(state, "agent_card_url", url)?;
    match card_import::fetch(&state.egress, url, None).await? {
        Fetched::Card(card) => Ok(card),
        Fetched::Unchanged => Err(anyhow::anyhow!("a card fetched without an ETag came back unchanged").into()),
    }
}

/// Read the agent's A2A Agent Card again from its `agent_card_url` (signed by
/// the agent), asking with the `ETag` it was last fetched with: an unchanged
/// card changes nothing; a changed one gives the agent its name, description,
/// capabilities, interfaces and provider again.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/agent-card/refresh",
    tag = "agents",
    params(PathId<AgentId>),
    responses(
        (status = 200, body = Agent),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the agent is deactivated, or has no `agent_card_url`", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
    )
)]
pub(super) async fn refresh_agent_card(
    State(state): State<AppState>,
    Own(id, _): Own<AgentId, Authenticated>,
) -> Result<Json<Agent>, ApiError> {
    let Some(import) = store::card_import(&state.db, id).await? else {
        return Err(match agent::find(&state.db, id).await? {
            None => agent::not_found(id),
            Some(_) => ApiError::Conflict(format!("agent {id} has no agent_card_url; set one with PATCH first")),
        });
    };
    let url: EndpointUrl = import.url.parse().map_err(|error| anyhow::anyhow!("a stored card URL: {error}"))?;
    let card = match card_import::fetch(&state.egress, &url, import.etag.as_deref()).await? {
        Fetched::Unchanged => {
            store::card_unchanged(&state.db, id).await?;
            let row = agent::find(&state.db, id).await?.ok_or_else(|| agent::not_found(id))?;
            return if row.active { Ok(Json(row.into())) } else { Err(deactivated(id)) };
        }
        Fetched::Card(card) => card,
    };
    let changes = UpdateAgent {
        name: Some(card.name.clone()),
        description: Some(card.description.clone()),
        capabilities: Some(card.capabilities.clone()),
        endpoint_url: None,
        price: None,
        agent_card_url: None,
    };
    let mut tx = state.db.begin().await?;
    let Some(row) = store::update(&mut tx, id, &changes).await? else {
        drop(tx);
        return Err(inactive_or_missing(&state, id).await);
    };
    let agent = Agent::from(row);
    store::save_card_import(&mut tx, id, url.as_str(), &card).await?;
    events::record(&mut tx, Aggregate::Agent(id), events::AGENT_UPDATED, &agent).await?;
    tx.commit().await?;
    agent::changed(&state, id);
    tracing::info!(agent_id = %id, "agent card refreshed");
    Ok(Json(agent))
}

/// The interfaces and provider the agent's imported card declared, if any.
pub(crate) async fn imported_card(
    db: &sqlx::PgPool,
    id: AgentId,
) -> anyhow::Result<Option<(Vec<AgentInterface>, Option<AgentProvider>)>> {
    let Some(import) = store::card_import(db, id).await? else { return Ok(None) };
    let provider = import.provider.map(serde_json::from_value).transpose()?;
    Ok(Some((serde_json::from_value(import.interfaces)?, provider)))
}
