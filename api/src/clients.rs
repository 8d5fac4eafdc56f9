//! Clients: the accounts that hire agents. A client is an Ed25519 key that
//! registered itself, signing the registration with that key; afterwards it
//! signs with keyid = its `cli_…` id.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentName, ClientId, PublicKey, WebhookSecret};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Signed;
use crate::error::{ApiError, BodyRefusals, Problem, SignedRequestRefusals};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register_client))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterClient {
    /// 1–100 characters.
    #[schema(value_type = String, example = "Acme Research", min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub name: AgentName,
    /// Base64 of the client's 32-byte Ed25519 public key.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub public_key: PublicKey,
}

/// A registered client; `webhook_secret` signs the webhooks sent to its job
/// callbacks and is shown only in the registration answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Client {
    #[schema(value_type = String, example = "cli_5f0c6a8e2b9d4c1a8e7f6d5c4b3a2910")]
    pub id: ClientId,
    pub name: String,
    #[schema(value_type = String)]
    pub public_key: PublicKey,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// `whsec_…`: verify our callback webhooks with it (Standard Webhooks). Store it now.
    pub webhook_secret: String,
}

/// Register a client, signed by the key being registered (keyid = its base64 public key).
#[utoipa::path(
    post,
    path = "/v1/clients",
    tag = "clients",
    request_body = RegisterClient,
    responses(
        (status = 201, description = "registered", body = Client),
        SignedRequestRefusals, BodyRefusals,
        (status = 409, description = "the public key is already registered", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn register_client(
    State(state): State<AppState>,
    Signed { principal, body: client }: Signed<RegisterClient>,
) -> Result<(StatusCode, Json<Client>), ApiError> {
    principal.require_new_key(&client.public_key)?;
    let id = ClientId::generate();
    let secret = WebhookSecret::generate();
    let sealed = state.sealer.seal(secret.expose(), &id.to_string()).await?;
    let created_at = sqlx::query_scalar!(
        "INSERT INTO clients (id, name, public_key, webhook_secret_sealed) VALUES ($1, $2, $3, $4) RETURNING created_at",
        id.as_uuid(),
        client.name.as_str(),
        client.public_key.as_bytes().as_slice(),
        sealed,
    )
    .fetch_one(&state.db)
    .await?;
    tracing::info!(client_id = %id, "client registered");
    let RegisterClient { name, public_key } = client;
    let webhook_secret = secret.expose().to_owned();
    Ok((StatusCode::CREATED, Json(Client { id, name: name.to_string(), public_key, created_at, webhook_secret })))
}
