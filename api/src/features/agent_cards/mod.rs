//! A2A Agent Cards: every active agent as an A2A v1.0 `AgentCard`, signed by
//! the platform (A2A §8.4), with an `ETag` so callers revalidate cheaply
//! (A2A §8.6).

mod card;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headers::{ETag, HeaderMapExt, IfNoneMatch};
use sha2::{Digest, Sha256};
use shared::domain::AgentId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::features::agents::imported_card;
use crate::http::error::{ApiError, Problem, PublicReadRefusals};
use crate::http::path_id::PathId;
use crate::http::state::AppState;
use crate::resources::agent::{self, Agent};
pub use card::{AgentCard, LISTING_EXTENSION_URI};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agent_card))
}

/// How long a card may be reused without asking: its `last_seen_at` moves
/// at most once a minute.
const CARD_CACHE_CONTROL: &str = "public, max-age=60";

/// An active agent's A2A v1.0 Agent Card (public), signed by the platform
/// per A2A §8.4: `signatures[0]` is a detached JWS (EdDSA) over the RFC 8785
/// canonical card without `signatures`; verify it against
/// `/.well-known/jwks.json`. The registry's price, ratings and last heartbeat
/// are in the `urn:agent-registry:a2a:listing:v1` extension. An imported
/// card's `provider` and `supportedInterfaces` are in it only when proven:
/// the card names the agent's current signing key (extension
/// `urn:agent-registry:a2a:agent-key:v1`), it was fetched from the site
/// (registrable domain) they name or its own A2A signature verified with a
/// key published there, and the agent's endpoint is on that site; the
/// listing's `card_proof` says which, or `unverified`.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/agent-card.json",
    tag = "identity",
    params(
        PathId<AgentId>,
        ("If-None-Match" = Option<String>, Header, description = "the `ETag` of a card you hold: 304 while it is unchanged"),
    ),
    responses(
        (status = 200, body = AgentCard, headers(
            ("ETag" = String, description = "changes whenever the card does"),
            ("Cache-Control" = String, description = "`public, max-age=60`"),
        )),
        (status = 304, description = "the card is unchanged since the `ETag` given in `If-None-Match`", headers(
            ("ETag" = String, description = "the card's ETag"),
            ("Cache-Control" = String, description = "`public, max-age=60`"),
        )),
        (status = 404, description = "no such agent, or it is deactivated", body = Problem, content_type = "application/problem+json"),
        PublicReadRefusals,
    )
)]
async fn agent_card(
    State(state): State<AppState>,
    PathId(id): PathId<AgentId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (agent, claims) = state
        .public_read(|pools| async move {
            let row = agent::find(&pools.db, id).await?.ok_or_else(|| agent::not_found(id))?;
            let agent = Agent::from(row);
            if !agent.profile.active {
                return Err(ApiError::NotFound(format!("agent {id} is deactivated and has no card")));
            }
            let claims = imported_card(&pools.db, id).await?.map(|declared| declared.claims_for(&agent.endpoint_url));
            Ok((agent, claims))
        })
        .await?;
    let card = AgentCard::of(&agent.profile, claims)?.sign(&state.platform_keys)?;
    let body = serde_json::to_vec(&card).map_err(anyhow::Error::from)?;
    // Ed25519 signatures are deterministic: the same card is the same bytes.
    let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&Sha256::digest(&body)[..18]));
    let parsed: ETag = etag.parse().map_err(|_| anyhow::anyhow!("an ETag of base64url is well formed"))?;
    let cache = [(header::ETAG, etag), (header::CACHE_CONTROL, CARD_CACHE_CONTROL.to_owned())];
    if headers.typed_get::<IfNoneMatch>().is_some_and(|given| !given.precondition_passes(&parsed)) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((cache, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}
