//! Agents described by an A2A Agent Card at a URL (`agent_card_url`): the
//! card is fetched through the SSRF-safe egress client (public addresses
//! only, no redirects, a timeout and a size cap), validated against the A2A
//! v1.0 JSON Schema and the fields the A2A proto marks REQUIRED, and gives
//! the agent its name, description, capabilities (its skills' tags),
//! interfaces and provider (whether those are the agent's to claim is
//! `card_proof`'s question, which starts from the agent signing keys the
//! card declares). The card's `ETag` is kept, so a refresh asks with
//! `If-None-Match` and an unchanged card costs nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::header;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentDescription, AgentName, Capabilities, CapabilityTag, EndpointUrl, PublicKey};
use shared::egress::{EgressClient, EgressError};
use url::Url;
use utoipa::ToSchema;

use crate::http::error::ApiError;

/// The largest card accepted.
pub const MAX_CARD_BYTES: usize = 64 * 1024;
/// The most interfaces kept from a card.
const MAX_INTERFACES: usize = 8;
const FIELD: &str = "agent_card_url";
/// The URI of the card extension (`capabilities.extensions[]`) by which a
/// card names the registry agent it speaks for: its `params.public_key` is
/// that agent's Ed25519 signing key, base64 as the API takes it.
pub const AGENT_KEY_EXTENSION_URI: &str = "urn:agent-registry:a2a:agent-key:v1";

/// A way to reach the agent over A2A, as its card declares it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentInterface {
    pub url: String,
    /// `JSONRPC`, `GRPC`, `HTTP+JSON` or another binding.
    #[serde(alias = "protocol_binding")]
    pub protocol_binding: String,
    #[serde(alias = "protocol_version")]
    #[schema(example = "1.0")]
    pub protocol_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Who provides the agent, as its card says.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentProvider {
    pub organization: String,
    pub url: String,
}

/// What the registry takes from a card.
#[derive(Debug)]
pub struct ImportedCard {
    pub name: AgentName,
    pub description: AgentDescription,
    pub capabilities: Capabilities,
    pub interfaces: Vec<AgentInterface>,
    pub provider: Option<AgentProvider>,
    /// The agent signing keys the card declares ([`AGENT_KEY_EXTENSION_URI`]).
    pub agent_keys: Vec<PublicKey>,
    /// The card's `ETag`, when its server sent one.
    pub etag: Option<String>,
    /// Its A2A §8.4 signatures, if any.
    pub signatures: Vec<CardSignature>,
    /// What they sign: the RFC 8785 form of the card without `signatures`
    /// (empty when it has none).
    pub signed_payload: Vec<u8>,
}

/// One of a card's signatures (A2A `AgentCardSignature`): a detached JWS.
#[derive(Debug, Deserialize)]
pub struct CardSignature {
    pub protected: String,
    pub signature: String,
}

/// A fetch's outcome: the card, or (asked with its ETag) unchanged.
pub enum Fetched {
    Unchanged,
    Card(Box<ImportedCard>),
}

/// The fields of a card the registry reads; the A2A proto marks them
/// REQUIRED, which the generated JSON Schema cannot say.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Card {
    name: String,
    description: String,
    /// Required by A2A; read only to refuse a card without it.
    #[serde(rename = "version")]
    _version: serde::de::IgnoredAny,
    #[serde(alias = "supported_interfaces")]
    supported_interfaces: Vec<AgentInterface>,
    skills: Vec<Skill>,
    provider: Option<AgentProvider>,
    #[serde(default)]
    capabilities: CardCapabilities,
    #[serde(default)]
    signatures: Vec<CardSignature>,
}

#[derive(Default, Deserialize)]
struct CardCapabilities {
    #[serde(default)]
    extensions: Vec<CardExtension>,
}

#[derive(Deserialize)]
struct CardExtension {
    uri: String,
    #[serde(default)]
    params: serde_json::Value,
}

#[derive(Deserialize)]
struct Skill {
    tags: Vec<String>,
}

/// Fetches and reads the card at `url`; with `etag`, asks whether it changed.
/// Every refusal is a 422 on `agent_card_url` saying why.
pub async fn fetch(egress: &EgressClient, url: &EndpointUrl, etag: Option<&str>) -> Result<Fetched, ApiError> {
    let mut request = reqwest::Request::new(reqwest::Method::GET, url.as_url().clone());
    request.headers_mut().insert(header::ACCEPT, header::HeaderValue::from_static("application/json"));
    if let Some(value) = etag.and_then(|etag| header::HeaderValue::from_str(etag).ok()) {
        request.headers_mut().insert(header::IF_NONE_MATCH, value);
    }
    let mut response = egress
        .send(request)
        .await
        .map_err(|error| ApiError::invalid(FIELD, format!("could not be fetched: {error}")))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
        return Ok(Fetched::Unchanged);
    }
    if !status.is_success() {
        return Err(ApiError::invalid(FIELD, format!("answered {status}, not the card")));
    }
    let etag = response.headers().get(header::ETAG).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let body = read_bounded(&mut response, MAX_CARD_BYTES)
        .await
        .map_err(|error| ApiError::invalid(FIELD, format!("could not be read: {error}")))?
        .ok_or_else(|| ApiError::invalid(FIELD, format!("the card is larger than {MAX_CARD_BYTES} bytes")))?;
    let mut card = read(&body)?;
    card.etag = etag.filter(|etag| etag.len() <= 256);
    Ok(Fetched::Card(Box::new(card)))
}

/// The JSON at `url` (a 2xx answer of at most `max` bytes), fetched through
/// the egress client; why not otherwise.
pub(super) async fn get_bounded(egress: &EgressClient, url: &Url, max: usize) -> Result<Vec<u8>, String> {
    let mut request = reqwest::Request::new(reqwest::Method::GET, url.clone());
    request.headers_mut().insert(header::ACCEPT, header::HeaderValue::from_static("application/json"));
    let mut response = egress.send(request).await.map_err(|error| format!("{url} could not be fetched: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    read_bounded(&mut response, max)
        .await
        .map_err(|error| format!("{url} could not be read: {error}"))?
        .ok_or_else(|| format!("{url} is larger than {max} bytes"))
}

/// The body, when it is at most `max` bytes (`None` when larger), read no further than that.
async fn read_bounded(response: &mut reqwest::Response, max: usize) -> Result<Option<Vec<u8>>, EgressError> {
    if response.content_length().is_some_and(|length| length > max as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A card's bytes as what the registry takes from it.
fn read(body: &[u8]) -> Result<ImportedCard, ApiError> {
    let invalid = |why: String| ApiError::invalid(FIELD, format!("is not a valid A2A v1.0 Agent Card: {why}"));
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| invalid(format!("not JSON ({error})")))?;
    if let Some(error) = A2A_AGENT_CARD.iter_errors(&value).next() {
        return Err(invalid(format!("{}: {error}", error.instance_path())));
    }
    let card: Card = serde_path_to_error::deserialize(&value)
        .map_err(|error| invalid(format!("{}: {}", error.path(), error.inner())))?;
    let name = card.name.parse::<AgentName>().map_err(|error| invalid(format!("name {error}")))?;
    let description = card.description.parse().map_err(|error| invalid(format!("description {error}")))?;
    // Skill tags are free text; capability tags are a-z 0-9 . _ -, so spaces become dashes.
    let tags = card
        .skills
        .iter()
        .flat_map(|skill| &skill.tags)
        .map(|tag| tag.split_whitespace().collect::<Vec<_>>().join("-").parse::<CapabilityTag>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(format!("a skill tag {error}")))?;
    let capabilities = Capabilities::new(tags).map_err(|error| invalid(format!("its skills' tags {error}")))?;
    if card.supported_interfaces.len() > MAX_INTERFACES {
        return Err(invalid(format!("it declares more than {MAX_INTERFACES} interfaces")));
    }
    let mut interfaces = card.supported_interfaces;
    // An empty tenant is the proto default: served back, it would break our card's signature for
    // verifiers that drop defaults (A2A §8.4.1).
    for interface in &mut interfaces {
        interface.tenant = interface.tenant.take().filter(|tenant| !tenant.is_empty());
    }
    let agent_keys = card
        .capabilities
        .extensions
        .iter()
        .enumerate()
        .filter(|(_, extension)| extension.uri == AGENT_KEY_EXTENSION_URI)
        .map(|(index, extension)| {
            let at = format!("capabilities.extensions[{index}].params.public_key");
            let key = extension.params.get("public_key").and_then(serde_json::Value::as_str);
            let key = key.ok_or_else(|| invalid(format!("{at} is required by {AGENT_KEY_EXTENSION_URI}")))?;
            key.parse::<PublicKey>().map_err(|error| invalid(format!("{at} {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signed_payload = match value.as_object_mut() {
        Some(fields) if !card.signatures.is_empty() => {
            fields.remove("signatures");
            serde_json_canonicalizer::to_vec(&value)
                .map_err(|error| invalid(format!("not canonicalisable ({error})")))?
        }
        _ => Vec::new(),
    };
    Ok(ImportedCard {
        name,
        description,
        capabilities,
        interfaces,
        provider: card.provider,
        agent_keys,
        etag: None,
        signatures: card.signatures,
        signed_payload,
    })
}

/// The A2A v1.0 JSON Schema of an Agent Card (`tests/a2a`, its source noted
/// there), compiled once. Its `$ref`s name proto messages
/// (`lf.a2a.v1.AgentSkill.jsonschema.json`) while its definitions are keyed
/// by title ("Agent Skill"): a title without spaces is the message name.
static A2A_AGENT_CARD: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let bundle: serde_json::Value =
        serde_json::from_str(include_str!("../../../../tests/a2a/a2a-v1.0.0-agent-card.schema.json"))
            .expect("the A2A schema is JSON");
    let definitions: HashMap<String, serde_json::Value> = bundle["definitions"]
        .as_object()
        .expect("the A2A schema has definitions")
        .iter()
        .map(|(title, schema)| (title.replace(' ', ""), schema.clone()))
        .collect();
    let card = definitions["AgentCard"].clone();
    jsonschema::options()
        .with_retriever(ByMessageName(definitions))
        .build(&card)
        .expect("the A2A Agent Card schema compiles")
});

struct ByMessageName(HashMap<String, serde_json::Value>);

impl jsonschema::Retrieve for ByMessageName {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let file = uri.path().as_str().rsplit('/').next().unwrap_or_default();
        let message = file.trim_end_matches(".jsonschema.json").rsplit('.').next().unwrap_or_default();
        self.0.get(message).cloned().ok_or_else(|| format!("no A2A definition for {uri}").into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn card() -> serde_json::Value {
        json!({
            "name": "GeoSpatial Route Planner",
            "description": "Plans routes.",
            "version": "1.2.0",
            "supportedInterfaces": [{"url": "https://geo.example.com/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "provider": {"organization": "Example Geo", "url": "https://geo.example.com"},
            "capabilities": {"streaming": true},
            "defaultInputModes": ["application/json"],
            "defaultOutputModes": ["application/json"],
            "skills": [
                {"id": "route", "name": "Route", "description": "Routes.", "tags": ["Maps", "route planning"]},
                {"id": "map", "name": "Map", "description": "Maps.", "tags": ["maps", "cartography"]}
            ],
            "securitySchemes": {"google": {"openIdConnectSecurityScheme": {"openIdConnectUrl": "https://accounts.google.com/.well-known/openid-configuration"}}}
        })
    }

    fn refusal(card: &serde_json::Value) -> String {
        read(&serde_json::to_vec(card).unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_card_gives_the_agent_its_fields_and_skill_tags_become_capabilities() {
        let imported = read(&serde_json::to_vec(&card()).unwrap()).unwrap();
        assert_eq!(imported.name.as_str(), "GeoSpatial Route Planner");
        assert_eq!(imported.capabilities.to_strings(), ["cartography", "maps", "route-planning"]);
        assert_eq!(imported.interfaces[0].protocol_binding, "JSONRPC");
        assert_eq!(imported.provider.unwrap().organization, "Example Geo");
        assert!(imported.agent_keys.is_empty());
    }

    #[test]
    fn a_card_names_its_agents_signing_key_in_the_agent_key_extension() {
        let key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        let mut named = card();
        named["capabilities"]["extensions"] = json!([
            {"uri": "urn:example:other", "params": {"public_key": "not ours to read"}},
            {"uri": AGENT_KEY_EXTENSION_URI, "params": {"public_key": key}}
        ]);
        let imported = read(&serde_json::to_vec(&named).unwrap()).unwrap();
        assert_eq!(imported.agent_keys, [key.parse::<PublicKey>().unwrap()]);
        named["capabilities"]["extensions"][1]["params"]["public_key"] = json!("c2hvcnQ=");
        assert!(refusal(&named).contains("capabilities.extensions[1].params.public_key"), "{}", refusal(&named));
        named["capabilities"]["extensions"][1]["params"] = json!({});
        assert!(refusal(&named).contains("is required by"), "{}", refusal(&named));
    }

    #[test]
    fn an_invalid_card_is_refused_saying_why() {
        let mut wrong_type = card();
        wrong_type["skills"][0]["tags"] = json!("maps");
        assert!(refusal(&wrong_type).contains("/skills/0/tags"), "{}", refusal(&wrong_type));
        let mut unknown = card();
        unknown["capabilities"]["telepathy"] = json!(true);
        assert!(refusal(&unknown).contains("telepathy"), "{}", refusal(&unknown));
        let mut missing = card();
        missing.as_object_mut().unwrap().remove("skills");
        assert!(refusal(&missing).contains("skills"), "{}", refusal(&missing));
        let mut no_tags = card();
        no_tags["skills"] = json!([]);
        assert!(refusal(&no_tags).contains("at least one capability"), "{}", refusal(&no_tags));
        assert!(read(b"<html>").unwrap_err().to_string().contains("not JSON"));
    }
}
