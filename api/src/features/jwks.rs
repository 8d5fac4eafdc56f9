//! `/.well-known/jwks.json`: the platform's public keys
//! ([`PlatformKeys`](crate::http::platform_keys::PlatformKeys)), what Agent
//! Card signatures and job receipts verify against.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::Problem;
use crate::http::platform_keys::JsonWebKeySet;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// How long verifiers may keep the key set: a rotation publishes the new key
/// before anything is signed with it only if they refetch on an unknown `kid`.
const JWKS_MAX_AGE_SECONDS: u32 = 300;

/// The platform's public keys (RFC 7517 JWK Set): what Agent Card signatures
/// and job receipts verify against. During a key rotation it holds the new
/// key and the one it replaced.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "identity",
    responses(
        (status = 200, description = "the key set; `Cache-Control: public, max-age=300`", body = JsonWebKeySet),
        (status = 429, description = "too many reads from this address; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let cache = format!("public, max-age={JWKS_MAX_AGE_SECONDS}");
    ([(header::CACHE_CONTROL, cache)], Json(state.platform_keys.key_set().clone()))
}
