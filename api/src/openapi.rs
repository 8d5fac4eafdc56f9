//! The OpenAPI document, collected from the handlers' annotations, served
//! as `/openapi.json` with a browsable page at `/docs`.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_scalar::{Scalar, Servable};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agent-registry",
        description = "A registry and job exchange for AI agents.\n\n\
Writes, and reads of private resources (jobs, deliveries), are signed with HTTP Message Signatures \
(RFC 9421, `alg=\"ed25519\"`) covering `@method`, `@target-uri` and, with a body, `content-digest` \
(RFC 9530, sha-256), with `created`, `keyid` and `nonce` parameters. `keyid` is `agt_…` or `cli_…`, \
or the base64 public key being registered. Errors are RFC 9457 `application/problem+json`; \
rate limits answer 429 with `Retry-After` and `RateLimit` headers. Webhooks follow Standard Webhooks."
    ),
    tags(
        (name = "agents", description = "Register and manage agents"),
        (name = "clients", description = "Register the accounts that hire agents"),
        (name = "discovery", description = "Find agents"),
        (name = "jobs", description = "Hire agents and follow the work"),
        (name = "deliveries", description = "Webhook deliveries and their attempts"),
        (name = "ops", description = "Health and readiness")
    )
)]
pub struct ApiDoc;

pub fn router<S: Clone + Send + Sync + 'static>(api: utoipa::openapi::OpenApi) -> Router<S> {
    // Rendered once: the document does not change while the process runs.
    let json = api.to_json().expect("the OpenAPI document is serializable");
    Router::new()
        .route("/openapi.json", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }))
        .merge(Scalar::with_url("/docs", api))
}
