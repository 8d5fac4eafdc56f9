//! An agent's own A2A Agent Card (`agent_card_url`), from the agent's side:
//! fetching it for a registration or an update, refreshing it, and what it
//! declared for the registry's card of the agent (served by `agent_cards`).

use axum::Json;
use axum::extract::State;
use ed25519_dalek::VerifyingKey;
use shared::domain::{AgentId, EndpointUrl};
use shared::events::{self, Aggregate};

use super::card_import::{self, Fetched, ImportedCard};
use super::card_proof::{self, Declared, Proven};
use super::model::UpdateAgent;
use super::{inactive_or_missing, store};
use crate::http::auth::{Authenticated, Own};
use crate::http::error::{ApiError, Problem, SignedRequestRefusals};
use crate::http::extract::require_allowed_scheme;
use crate::http::path_id::PathId;
use crate::http::state::AppState;
use crate::resources::agent::{self, Agent, deactivated};

/// The card at `url`, fetched without an ETag (so never "unchanged"), and
/// how its claims are proven for the agent whose signing key is `agent_key`.
pub(super) async fn fetch(
    state: &AppState,
    url: &EndpointUrl,
    agent_key: &VerifyingKey,
) -> Result<(ImportedCard, Proven), ApiError> {
    require_allowed_scheme(state, "agent_card_url", url)?;
    match card_import::fetch(&state.egress, url, None).await? {
        Fetched::Card(card) => Ok(proven(state, url, *card, agent_key).await),
        Fetched::Unchanged => Err(anyhow::anyhow!("a card fetched without an ETag came back unchanged").into()),
    }
}

async fn proven(
    state: &AppState,
    url: &EndpointUrl,
    card: ImportedCard,
    agent_key: &VerifyingKey,
) -> (ImportedCard, Proven) {
    let allow_http = state.settings.allow_http_endpoints;
    let proven = card_proof::prove(&state.egress, allow_http, url.as_url(), &card, agent_key).await;
    (card, proven)
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
    Own(id, Authenticated(signer)): Own<AgentId, Authenticated>,
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
            let mut tx = signer.begin_write(&state.db).await?;
            store::card_unchanged(&mut tx, id).await?;
            tx.commit().await?;
            let row = agent::find(&state.db, id).await?.ok_or_else(|| agent::not_found(id))?;
            return if row.active { Ok(Json(row.into())) } else { Err(deactivated(id)) };
        }
        Fetched::Card(card) => proven(&state, &url, *card, signer.key()).await,
    };
    let (card, proven) = card;
    let changes = UpdateAgent {
        name: Some(card.name.clone()),
        description: Some(card.description.clone()),
        capabilities: Some(card.capabilities.clone()),
        endpoint_url: None,
        price: None,
        agent_card_url: None,
    };
    let mut tx = signer.begin_write(&state.db).await?;
    let Some(row) = store::update(&mut tx, id, &changes).await? else {
        drop(tx);
        return Err(inactive_or_missing(&state, id).await);
    };
    let agent = Agent::from(row);
    store::save_card_import(&mut tx, id, url.as_str(), &card, &proven).await?;
    events::record(&mut tx, Aggregate::Agent(id), events::AGENT_UPDATED, &agent).await?;
    tx.commit().await?;
    agent::changed(&state, id);
    tracing::info!(agent_id = %id, "agent card refreshed");
    Ok(Json(agent))
}

/// The interfaces and provider the agent's imported card declared, if any,
/// and how they were proven.
pub(crate) async fn imported_card(db: &sqlx::PgPool, id: AgentId) -> anyhow::Result<Option<Declared>> {
    let Some(import) = store::card_import(db, id).await? else { return Ok(None) };
    let provider = import.provider.map(serde_json::from_value).transpose()?;
    let proven = Proven { proof: import.proof, site: import.proven_site };
    Ok(Some(Declared { interfaces: serde_json::from_value(import.interfaces)?, provider, proven }))
}
