//! Agents: register, read, update, deactivate; rotate the signing key and
//! the webhook secret; re-enable a disabled endpoint; heartbeats (`liveness`).
//!
//! Registration is signed by the key being registered (keyid = that base64
//! public key); afterwards the agent signs with keyid = its id, and only its
//! own active key may change it. Every change records its event in the same
//! transaction.

pub mod card_import;
pub mod card_proof;
mod liveness;
pub mod model;
mod own_card;
mod store;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use shared::domain::{AgentDescription, AgentId, PublicKey, WebhookSecret};
use shared::events::{self, Aggregate};
use time::OffsetDateTime;
use utoipa::IntoResponses;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::features::key_rotation::{self, KeyHolder, RotateKey, RotationRefusals};
use crate::http::auth::{Authenticated, Own, Signed};
use crate::http::error::{ApiError, BodyRefusals, Problem, PublicReadRefusals, SignedRequestRefusals};
use crate::http::extract::{RegistrationAddress, require_deliverable};
use crate::http::path_id::PathId;
use crate::http::principal::PrincipalId;
use crate::http::state::AppState;
use crate::resources::agent::{self, Agent, AgentEndpoint, PublicAgent, deactivated};
use model::{
    EndpointEnabled, RegisterAgent, RegisteredAgent, RotateWebhookSecret, RotatedWebhookSecret, SecretRotated,
    UpdateAgent,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_agent))
        .routes(routes!(get_agent, update_agent, deactivate_agent))
        .routes(routes!(rotate_key))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(enable_endpoint))
        .routes(routes!(get_endpoint))
        .routes(routes!(liveness::heartbeat))
        .routes(routes!(own_card::refresh_agent_card))
}

/// Register an agent. The answer holds its webhook secret, shown only this once.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    request_body = RegisterAgent,
    responses(
        (status = 201, description = "registered", body = RegisteredAgent),
        SignedRequestRefusals, BodyRefusals,
        (status = 409, description = "the public key is already registered", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn register_agent(
    State(state): State<AppState>,
    RegistrationAddress(address): RegistrationAddress,
    Signed { signer, body: agent }: Signed<RegisterAgent>,
) -> Result<(StatusCode, Json<RegisteredAgent>), ApiError> {
    signer.principal.require_new_key(&agent.public_key)?;
    require_deliverable(&state, "endpoint_url", &agent.endpoint_url).await?;
    let id = AgentId::generate();
    let card = match &agent.agent_card_url {
        Some(url) => Some(own_card::fetch(&state, url, agent.public_key.verifying_key()).await?),
        None => None,
    };
    let name = agent.name.as_ref().or(card.as_ref().map(|(card, _)| &card.name));
    let name = name.ok_or_else(|| ApiError::invalid("name", "is required unless agent_card_url gives it"))?;
    let capabilities = agent.capabilities.as_ref().or(card.as_ref().map(|(card, _)| &card.capabilities));
    let capabilities = capabilities
        .ok_or_else(|| ApiError::invalid("capabilities", "are required unless agent_card_url gives them"))?;
    let no_description = AgentDescription::default();
    let description = agent.description.as_ref().or(card.as_ref().map(|(card, _)| &card.description));
    let new = store::NewAgent {
        name,
        description: description.unwrap_or(&no_description),
        capabilities,
        endpoint_url: &agent.endpoint_url,
        public_key: &agent.public_key,
        price: agent.price,
        registered_from: address.as_deref(),
    };
    let secret = WebhookSecret::generate();
    let sealed = state.sealer.seal(secret.expose(), &id.to_string()).await?;
    let mut tx = state.db.begin().await?;
    let registered = Agent::from(store::insert(&mut tx, id, &new, &sealed).await?);
    if let (Some(url), Some((card, proven))) = (&agent.agent_card_url, &card) {
        store::save_card_import(&mut tx, id, url.as_str(), card, proven).await?;
    }
    events::record(&mut tx, Aggregate::Agent(id), events::AGENT_REGISTERED, &registered).await?;
    tx.commit().await?;
    state.outbox.committed();
    tracing::info!(agent_id = %id, from_card = card.is_some(), "agent registered");
    Ok((StatusCode::CREATED, Json(RegisteredAgent { agent: registered, webhook_secret: secret.expose().to_owned() })))
}

/// Read an agent, active or not. Its endpoint shows as a host only.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(PathId<AgentId>),
    responses(
        PublicReadRefusals,
        (status = 200, body = PublicAgent),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_agent(State(state): State<AppState>, PathId(id): PathId<AgentId>) -> Result<Response, ApiError> {
    let agent = state.public_read(|pools| async move {
        let json = agent::find_public_json(&pools.db, id).await?.ok_or_else(|| agent::not_found(id))?;
        Ok(Bytes::from(json))
    });
    state.public_reads.json_response(agent::cache_key(id), agent).await
}

/// The agent's endpoint URL, which only the agent reads (signed by its key;
/// never cached: public reads show the host only).
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/endpoint",
    tag = "agents",
    params(PathId<AgentId>),
    responses(
        (status = 200, body = AgentEndpoint),
        SignedRequestRefusals,
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_endpoint(
    State(state): State<AppState>,
    PathId(id): PathId<AgentId>,
    Authenticated(signer): Authenticated,
) -> Result<Json<AgentEndpoint>, ApiError> {
    if !id.signs_as(&signer.principal) {
        return Err(ApiError::Forbidden(format!("only agent {id}'s own key may read its endpoint URL")));
    }
    let endpoint = agent::find_endpoint(&state.db, id).await?.ok_or_else(|| agent::not_found(id))?;
    Ok(Json(endpoint))
}

/// Change an active agent's name, description, capabilities, endpoint or price.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(PathId<AgentId>),
    request_body = UpdateAgent,
    responses(
        (status = 200, body = Agent),
        SignedRequestRefusals, BodyRefusals,
        AgentChangeRefusals,
    )
)]
async fn update_agent(
    State(state): State<AppState>,
    Own(id, Signed { signer, body: changes }): Own<AgentId, Signed<UpdateAgent>>,
) -> Result<Json<Agent>, ApiError> {
    if let Some(url) = &changes.endpoint_url {
        require_deliverable(&state, "endpoint_url", url).await?;
    }
    let UpdateAgent { name, description, capabilities, endpoint_url, price, agent_card_url } = &changes;
    if name.is_none()
        && description.is_none()
        && capabilities.is_none()
        && endpoint_url.is_none()
        && price.is_none()
        && agent_card_url.is_none()
    {
        return Err(ApiError::invalid("body", "name at least one field to change"));
    }
    let mut changes = changes;
    let card = match &changes.agent_card_url {
        Some(url) => Some(own_card::fetch(&state, url, signer.key()).await?),
        None => None,
    };
    if let Some((card, _)) = &card {
        changes.name.get_or_insert_with(|| card.name.clone());
        changes.description.get_or_insert_with(|| card.description.clone());
        changes.capabilities.get_or_insert_with(|| card.capabilities.clone());
    }
    let mut tx = signer.begin_write(&state.db).await?;
    // A new endpoint URL enables a disabled endpoint: that is news of its own.
    let was_disabled = changes.endpoint_url.is_some() && store::endpoint_disabled(&mut tx, id).await?;
    match store::update(&mut tx, id, &changes).await? {
        Some(row) => {
            let agent = Agent::from(row);
            if let (Some(url), Some((card, proven))) = (&changes.agent_card_url, &card) {
                store::save_card_import(&mut tx, id, url.as_str(), card, proven).await?;
            }
            events::record(&mut tx, Aggregate::Agent(id), events::AGENT_UPDATED, &agent).await?;
            if was_disabled {
                let enabled = EndpointEnabled { agent_id: id, endpoint_url: agent.endpoint_url.clone() };
                events::record(&mut tx, Aggregate::Agent(id), events::ENDPOINT_ENABLED, &enabled).await?;
            }
            tx.commit().await?;
            agent::changed(&state, id);
            Ok(Json(agent))
        }
        None => {
            drop(tx);
            Err(inactive_or_missing(&state, id).await)
        }
    }
}

/// Deactivate an agent: it leaves discovery, takes no new jobs (one being
/// created at that moment may still be written, and expires unaccepted), and
/// its key signs nothing any more (repeating this is a 401: the key is no
/// longer active).
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(PathId<AgentId>),
    responses(
        (status = 204, description = "deactivated"),
        SignedRequestRefusals,
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deactivate_agent(
    State(state): State<AppState>,
    Own(id, Authenticated(signer)): Own<AgentId>,
) -> Result<StatusCode, ApiError> {
    let mut tx = signer.begin_deactivation(&state.db).await?;
    match store::deactivate(&mut tx, id).await? {
        Some(row) => {
            events::record(&mut tx, Aggregate::Agent(id), events::AGENT_DEACTIVATED, &Agent::from(row)).await?;
            tx.commit().await?;
            agent::changed(&state, id);
            state.known_keys.forget(&signer.principal).await;
            tracing::info!(agent_id = %id, "agent deactivated");
        }
        None => {
            drop(tx); // Before reading on another connection.
            if agent::find(&state.db, id).await?.is_none() {
                return Err(agent::not_found(id));
            } // Otherwise deactivated before.
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the agent's signing key, signed by the current one. `proof` is
/// the new key's signature over `agent-registry key rotation:<id>:<current
/// public key>:<new public key>` (base64 keys). The current key stops
/// working at once on the instance that answers, and within 5 s on every other.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/keys",
    tag = "agents",
    params(PathId<AgentId>),
    request_body = RotateKey,
    responses(
        (status = 200, description = "rotated: the agent with its new public_key", body = Agent),
        SignedRequestRefusals, BodyRefusals,
        RotationRefusals,
    )
)]
async fn rotate_key(state: State<AppState>, request: Own<AgentId, Signed<RotateKey>>) -> Result<Json<Agent>, ApiError> {
    key_rotation::rotate(state, request).await
}

impl KeyHolder for AgentId {
    type Rotated = Agent;

    async fn replace_key(
        state: &AppState,
        id: Self,
        current: &VerifyingKey,
        new: &PublicKey,
    ) -> Result<Option<Agent>, ApiError> {
        let mut tx = state.db.begin().await?;
        let Some(row) = store::rotate_key(&mut tx, id, current, new).await? else {
            return Ok(None);
        };
        let agent = Agent::from(row);
        store::forget_card_proof(&mut tx, id).await?;
        events::record(&mut tx, Aggregate::Agent(id), events::AGENT_KEY_ROTATED, &agent).await?;
        tx.commit().await?;
        agent::changed(state, id);
        Ok(Some(agent))
    }
}

/// Replace the agent's webhook secret. Until the grace period ends (24 h
/// unless given), every webhook carries a signature by the old secret too, so
/// receivers can switch when they are ready. Rotating again within the grace
/// period drops the oldest secret at once. The answer holds the new secret,
/// shown only this once.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/webhook-secret",
    tag = "agents",
    params(PathId<AgentId>),
    request_body = RotateWebhookSecret,
    responses(
        (status = 200, body = RotatedWebhookSecret),
        SignedRequestRefusals, BodyRefusals,
        AgentChangeRefusals,
    )
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Own(id, Signed { signer, body: rotation }): Own<AgentId, Signed<RotateWebhookSecret>>,
) -> Result<Json<RotatedWebhookSecret>, ApiError> {
    let grace = rotation.grace_period()?;
    let previous_expires_at = (!grace.is_zero()).then(|| OffsetDateTime::now_utc() + grace);
    let secret = WebhookSecret::generate();
    let sealed = state.sealer.seal(secret.expose(), &id.to_string()).await?;
    let mut tx = signer.begin_write(&state.db).await?;
    if !store::rotate_secret(&mut tx, id, &sealed, previous_expires_at).await? {
        drop(tx);
        return Err(inactive_or_missing(&state, id).await);
    }
    let event = SecretRotated { agent_id: id, previous_secret_expires_at: previous_expires_at };
    events::record(&mut tx, Aggregate::Agent(id), events::AGENT_WEBHOOK_SECRET_ROTATED, &event).await?;
    tx.commit().await?;
    agent::changed(&state, id);
    tracing::info!(agent_id = %id, "webhook secret rotated");
    Ok(Json(RotatedWebhookSecret {
        webhook_secret: secret.expose().to_owned(),
        previous_secret_expires_at: previous_expires_at,
    }))
}

/// Enable the agent's endpoint again after it was disabled (410 Gone, or
/// failing for too long); failures are counted afresh. Dead deliveries are
/// not resent by this: resend them one by one, or ask an operator to redrive
/// them. Enabling an enabled endpoint changes nothing.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/endpoint/enable",
    tag = "agents",
    params(PathId<AgentId>),
    responses(
        (status = 200, body = Agent),
        SignedRequestRefusals,
        AgentChangeRefusals,
    )
)]
async fn enable_endpoint(
    State(state): State<AppState>,
    Own(id, Authenticated(signer)): Own<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    let mut tx = signer.begin_write(&state.db).await?;
    if let Some(row) = store::enable_endpoint(&mut tx, id).await? {
        let agent = Agent::from(row);
        let enabled = EndpointEnabled { agent_id: id, endpoint_url: agent.endpoint_url.clone() };
        events::record(&mut tx, Aggregate::Agent(id), events::ENDPOINT_ENABLED, &enabled).await?;
        tx.commit().await?;
        agent::changed(&state, id);
        tracing::info!(agent_id = %id, "endpoint enabled");
        return Ok(Json(agent));
    }
    drop(tx);
    match agent::find(&state.db, id).await? {
        Some(row) if row.active => Ok(Json(row.into())),
        Some(_) => Err(deactivated(id)),
        None => Err(agent::not_found(id)),
    }
}

/// Why a change to an agent matched no active agent.
async fn inactive_or_missing(state: &AppState, id: AgentId) -> ApiError {
    match agent::find(&state.db, id).await {
        Ok(Some(_)) => deactivated(id),
        Ok(None) => agent::not_found(id),
        Err(error) => error.into(),
    }
}

/// What a change to an agent may be refused with, besides a signed request's refusals.
#[derive(IntoResponses)]
pub enum AgentChangeRefusals {
    /// No such agent.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The agent is deactivated and can no longer change.
    #[response(status = 409, content_type = "application/problem+json")]
    Deactivated(Problem),
}

pub(crate) use own_card::imported_card;
