//! The OpenAPI document, collected from the handlers' annotations, served
//! as `/openapi.json` with a browsable page at `/docs`.
//!
//! `/docs` runs Scalar from a CDN on the API's origin, which is also the web
//! console's: a script there could sign with the keys the console keeps in
//! this origin's IndexedDB. So the page loads one version of Scalar, checked
//! by its Subresource Integrity hash, under a CSP that allows scripts from
//! that version's directory only and requests to this origin only.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
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
(RFC 9421, `alg=\"ed25519\"`) covering `@method`, `@target-uri`, with a body `content-digest` \
(RFC 9530, sha-256), and `idempotency-key` when an `Idempotency-Key` is sent, with `created`, `keyid` and \
`nonce` parameters (`expires` optional, enforced). Keys are replaced with `POST /v1/agents/{id}/keys` or \
`POST /v1/clients/{id}/keys` (proof: the new key's signature over \
`agent-registry key rotation:<id>:<current public key>:<new public key>`). `keyid` is `agt_…` or `cli_…`, \
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
    let mut document = serde_json::to_value(api).expect("the OpenAPI document is serializable");
    add_links(&mut document);
    // Rendered once: the document does not change while the process runs.
    let json = document.to_string();
    Router::new()
        .route("/openapi.json", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }))
        .merge(
            Router::from(Scalar::with_url("/docs", document).custom_html(DOCS_PAGE))
                .layer(axum::middleware::from_fn(docs_policy)),
        )
}

/// Scalar's page (as `utoipa_scalar` writes it, `$spec` filled in by it)
/// with its script pinned. To upgrade: `npm pack @scalar/api-reference@<v>`,
/// then `openssl dgst -sha384 -binary package/dist/browser/standalone.js |
/// openssl base64 -A`, and change the version here and in [`DOCS_POLICY`].
const DOCS_PAGE: &str = r#"<!doctype html>
<html>
<head>
    <title>agent-registry API</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<script id="api-reference" type="application/json">
    $spec
</script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.4/dist/browser/standalone.js"
        integrity="sha384-hwB9WroDTpZaI38gr+u9CXA6ksz5gUYgD2GxXazKl/agT1L2GWUiRFWGJYNiFu4Q"
        crossorigin="anonymous"></script>
</body>
</html>
"#;

/// Scripts only from the pinned Scalar's directory (its chunks are there);
/// Scalar sets inline styles; requests only to this origin.
const DOCS_POLICY: &str = "default-src 'self'; \
     script-src https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.4/dist/browser/; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn docs_policy(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_POLICY));
    response
}

/// What the handlers' annotations cannot say on their own, added once every
/// route is in the document.
/// `closed_parameters`: the features' query parameters that are closed sets
/// of strings, as (path, name, values).
pub fn complete(api: &mut utoipa::openapi::OpenApi, closed_parameters: &[ClosedParameter]) {
    SignedRequests.modify(api);
    ClosedSets(closed_parameters).modify(api);
    NonEmptyChanges.modify(api);
}

/// A query parameter (path, name) whose values are a closed set.
pub type ClosedParameter<'a> = (&'a str, &'a str, &'a [&'a str]);

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
with a body, `Content-Digest: sha-256=:<base64 SHA-256 of the body>:` (RFC 9530), which the signature then covers; \
a sent `Idempotency-Key` must be covered too (`\"idempotency-key\"`, else 401 `signature-incomplete`). \
`created` may be at most `SIGNATURE_MAX_AGE_SECONDS` (30) old and 5 s ahead; `expires`, when sent, must not have \
passed; a nonce is accepted once. An unknown keyid and a bad signature get the same 401 `signature-invalid`.";
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

/// Query parameters and answer fields that are closed sets (strings in the
/// handlers' types) documented as the enums they are, from the same lists.
struct ClosedSets<'a>(&'a [ClosedParameter<'a>]);

impl Modify for ClosedSets<'_> {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let statuses: Vec<&str> = shared::domain::JobStatus::ALL.iter().map(|status| status.as_str()).collect();
        let windows: Vec<&str> = shared::domain::JobWindow::ALL.iter().map(|window| window.as_str()).collect();
        let job_status: ClosedParameter = ("/v1/jobs", "status", &statuses);
        for &(path, name, values) in std::iter::once(&job_status).chain(self.0) {
            let Some(operation) = openapi.paths.paths.get_mut(path).and_then(|item| item.get.as_mut()) else {
                continue;
            };
            for parameter in operation.parameters.iter_mut().flatten().filter(|parameter| parameter.name == name) {
                if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                    schema.enum_values = Some(enum_values(values, false));
                }
            }
        }
        let properties: [(&str, &str, &[&str], bool); 2] =
            [("Job", "status", &statuses, false), ("Job", "expired_because", &windows, true)];
        let schemas = &mut openapi.components.get_or_insert_with(Default::default).schemas;
        for (schema, property, values, nullable) in properties {
            if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema)
                && let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property)
            {
                field.enum_values = Some(enum_values(values, nullable));
            }
        }
    }
}

fn enum_values(values: &[&str], nullable: bool) -> Vec<serde_json::Value> {
    let values = values.iter().map(|value| serde_json::Value::from(*value));
    values.chain(nullable.then_some(serde_json::Value::Null)).collect()
}

/// Change bodies must name at least one field (the handlers answer 422 to
/// `{}`). Set here because utoipa 5.5's `min_properties` attribute emits
/// `maxProperties`.
struct NonEmptyChanges;

impl Modify for NonEmptyChanges {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schemas = &mut openapi.components.get_or_insert_with(Default::default).schemas;
        if let Some(RefOr::T(Schema::Object(schema))) = schemas.get_mut("UpdateAgent") {
            schema.min_properties = Some(1);
        }
    }
}

/// OpenAPI links from an answer to the operations that take the id it holds,
/// so generated clients and stateful testers (schemathesis) can follow a
/// job's life and resend one of its deliveries. Added to the JSON because
/// utoipa 5.5's `Link` serialises its fields in snake case
/// (`operation_id`), which no tool reads.
fn add_links(document: &mut serde_json::Value) {
    const NEW_JOB: &str = "$response.body#/id";
    const FIRST_DELIVERY: &str = "$response.body#/0/id";
    let links: [(&str, &str, &str, &str, &str); 8] = [
        ("/v1/jobs", "post", "201", "get_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "accept_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "complete_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "fail_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "cancel_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "rate_job", NEW_JOB),
        ("/v1/jobs", "post", "201", "job_deliveries", NEW_JOB),
        ("/v1/jobs/{id}/deliveries", "get", "200", "resend_delivery", FIRST_DELIVERY),
    ];
    for (path, method, status, operation_id, id) in links {
        if let Some(response) =
            document.pointer_mut(&format!("/paths/{}/{method}/responses/{status}", path.replace('/', "~1")))
        {
            response["links"][operation_id] =
                serde_json::json!({"operationId": operation_id, "parameters": {"id": id}});
        }
    }
}
