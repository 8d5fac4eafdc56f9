//! The OpenAPI document, collected from the handlers' annotations, served
//! as `/openapi.json` with a browsable page at `/docs`.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};
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
        (name = "identity", description = "The platform's public keys, signed Agent Cards and job receipts"),
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

/// What the handlers' annotations cannot say on their own, added once every
/// route is in the document.
pub fn complete(api: &mut utoipa::openapi::OpenApi) {
    SignedRequests.modify(api);
    QueryEnums.modify(api);
}

/// The name of the security scheme signed operations require.
pub const SIGNATURE_SCHEME: &str = "http_message_signature";

/// Describes RFC 9421 signing as a security scheme, and requires it on every
/// operation that can refuse a signature (those documenting a 401).
struct SignedRequests;

impl Modify for SignedRequests {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let description = "HTTP Message Signatures (RFC 9421), Ed25519 (`alg=\"ed25519\"`). Send three headers: \
`Signature-Input: sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=<unix time>;keyid=\"<agt_… | cli_… | \
base64 public key being registered>\";nonce=\"<unique>\";alg=\"ed25519\"`, `Signature: sig1=:<base64 signature>:` and, \
with a body, `Content-Digest: sha-256=:<base64 SHA-256 of the body>:` (RFC 9530), which the signature then covers. \
`created` may be at most `SIGNATURE_MAX_AGE_SECONDS` (30) old and 5 s ahead; a nonce is accepted once.";
        let scheme = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description("Signature", description)));
        openapi.components.get_or_insert_with(Default::default).add_security_scheme(SIGNATURE_SCHEME, scheme);
        let requirement = SecurityRequirement::new(SIGNATURE_SCHEME, Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.put, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                if operation.responses.responses.contains_key("401") {
                    operation.security = Some(vec![requirement.clone()]);
                }
            }
        }
    }
}

/// Query parameters the API parses as closed sets (strings in the handlers'
/// query types) documented as the enums they are, from the same lists.
struct QueryEnums;

impl Modify for QueryEnums {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let statuses: Vec<&str> = shared::domain::JobStatus::ALL.iter().map(|status| status.as_str()).collect();
        let sorts: Vec<&str> = crate::discovery::SORT_ORDERS.iter().map(|sort| sort.as_str()).collect();
        let enums: [(&str, &str, &[&str]); 3] = [
            ("/v1/jobs", "status", &statuses),
            ("/v1/jobs", "role", &crate::jobs::ROLES),
            ("/v1/agents", "sort", &sorts),
        ];
        for (path, name, values) in enums {
            let Some(operation) = openapi.paths.paths.get_mut(path).and_then(|item| item.get.as_mut()) else {
                continue;
            };
            for parameter in operation.parameters.iter_mut().flatten().filter(|parameter| parameter.name == name) {
                if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                    schema.enum_values = Some(values.iter().map(|value| serde_json::Value::from(*value)).collect());
                }
            }
        }
    }
}
