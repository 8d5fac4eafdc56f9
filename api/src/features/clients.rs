//! Clients: the accounts that hire agents. A client is an Ed25519 key that
//! registered itself, signing the registration with that key; afterwards it
//! signs with keyid = its `cli_…` id, until it replaces its key or
//! deactivates itself.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentName, ClientId, PublicKey, WebhookSecret};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::features::key_rotation::{self, KeyHolder, RotateKey, RotationRefusals};
use crate::http::auth::{Authenticated, Own, Signed};
use crate::http::error::{ApiError, BodyRefusals, Problem, SignedRequestRefusals};
use crate::http::extract::RegistrationAddress;
use crate::http::path_id::PathId;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_client))
        .routes(routes!(deactivate_client))
        .routes(routes!(rotate_client_key))
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
    RegistrationAddress(address): RegistrationAddress,
    Signed { signer, body: client }: Signed<RegisterClient>,
) -> Result<(StatusCode, Json<Client>), ApiError> {
    signer.principal.require_new_key(&client.public_key)?;
    let id = ClientId::generate();
    let secret = WebhookSecret::generate();
    let sealed = state.sealer.seal(secret.expose(), &id.to_string()).await?;
    let created_at = sqlx::query_scalar!(
        "INSERT INTO clients (id, name, public_key, webhook_secret_sealed, registered_from)
         VALUES ($1, $2, $3, $4, $5::text::inet) RETURNING created_at",
        id.as_uuid(),
        client.name.as_str(),
        client.public_key.as_bytes().as_slice(),
        sealed,
        address,
    )
    .fetch_one(&state.db)
    .await?;
    tracing::info!(client_id = %id, "client registered");
    let RegisterClient { name, public_key } = client;
    let webhook_secret = secret.expose().to_owned();
    Ok((StatusCode::CREATED, Json(Client { id, name: name.to_string(), public_key, created_at, webhook_secret })))
}

/// A client's key after a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKey {
    #[schema(value_type = String, example = "cli_5f0c6a8e2b9d4c1a8e7f6d5c4b3a2910")]
    pub id: ClientId,
    #[schema(value_type = String)]
    pub public_key: PublicKey,
}

/// Replace the client's signing key, signed by the current one. `proof` is
/// the new key's signature over `agent-registry key rotation:<id>:<current
/// public key>:<new public key>` (base64 keys). The current key stops
/// working at once on the instance that answers, and within 5 s on every other.
#[utoipa::path(
    post,
    path = "/v1/clients/{id}/keys",
    tag = "clients",
    params(PathId<ClientId>),
    request_body = RotateKey,
    responses(
        (status = 200, description = "rotated", body = ClientKey),
        SignedRequestRefusals, BodyRefusals,
        RotationRefusals,
    )
)]
async fn rotate_client_key(
    state: State<AppState>,
    request: Own<ClientId, Signed<RotateKey>>,
) -> Result<Json<ClientKey>, ApiError> {
    key_rotation::rotate(state, request).await
}

impl KeyHolder for ClientId {
    type Rotated = ClientKey;

    async fn replace_key(
        state: &AppState,
        id: Self,
        current: &VerifyingKey,
        new: &PublicKey,
    ) -> Result<Option<ClientKey>, ApiError> {
        let rotated = sqlx::query!(
            "UPDATE clients SET public_key = $3 WHERE id = $1 AND active AND public_key = $2",
            id.as_uuid(),
            current.as_bytes().as_slice(),
            new.as_bytes().as_slice(),
        )
        .execute(&state.db)
        .await?;
        Ok((rotated.rows_affected() > 0).then(|| ClientKey { id, public_key: new.clone() }))
    }
}

/// Deactivate a client: its key signs nothing any more (repeating this is a
/// 401: the key is no longer active). Its jobs run their course and their
/// callbacks are still delivered.
#[utoipa::path(
    delete,
    path = "/v1/clients/{id}",
    tag = "clients",
    params(PathId<ClientId>),
    responses(
        (status = 204, description = "deactivated"),
        SignedRequestRefusals,
    )
)]
async fn deactivate_client(
    State(state): State<AppState>,
    Own(id, Authenticated(signer)): Own<ClientId>,
) -> Result<StatusCode, ApiError> {
    let mut tx = signer.begin_deactivation(&state.db).await?;
    sqlx::query!("UPDATE clients SET active = false, deactivated_at = now() WHERE id = $1 AND active", id.as_uuid())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.known_keys.forget(&signer.principal).await;
    tracing::info!(client_id = %id, "client deactivated");
    Ok(StatusCode::NO_CONTENT)
}
