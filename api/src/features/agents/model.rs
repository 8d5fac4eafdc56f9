//! The agent resource as clients see it, and as they send it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::domain::{AgentDescription, AgentId, AgentName, Capabilities, EndpointUrl, Price, PublicKey};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::present;
use crate::resources::agent::Agent;

/// Register an agent. With `agent_card_url`, the agent's A2A Agent Card is
/// fetched and gives the `name`, `description` and `capabilities` (its
/// skills' tags) the request leaves out, and the interfaces and provider its
/// card here shows; otherwise `name` and `capabilities` are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// 1–100 characters; required without `agent_card_url`.
    #[schema(value_type = Option<String>, example = "Polyglot", min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub name: Option<AgentName>,
    /// Up to 2000 characters; empty when neither the request nor a card gives one.
    #[schema(value_type = Option<String>, example = "Translates documents between 40 languages.", max_length = 2000, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub description: Option<AgentDescription>,
    /// 1–32 tags of `a-z 0-9 . _ -`; lower-cased and de-duplicated; required without `agent_card_url`.
    #[schema(value_type = Option<Vec<CapabilityTagSchema>>, example = json!(["translation", "summarization"]), min_items = 1, max_items = 32)]
    pub capabilities: Option<Capabilities>,
    /// Where webhooks are delivered: https, a host name (not an IP address).
    #[schema(value_type = String, example = "https://polyglot.example.com/webhooks", max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub endpoint_url: EndpointUrl,
    /// Base64 of the agent's 32-byte Ed25519 public key; it signs the agent's requests.
    #[schema(value_type = String, example = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub public_key: PublicKey,
    /// Price per job as a decimal string, 0–1,000,000, at most 6 decimals.
    #[schema(value_type = String, example = "12.50", pattern = "^\\s*(1000000(\\.0{1,6})?|[0-9]{1,6}(\\.[0-9]{1,6})?)\\s*$")]
    pub price: Price,
    /// Where the agent's A2A v1.0 Agent Card is (https, a host name): fetched
    /// from a public address (5 s, at most 64 KiB, no redirects) and validated
    /// against the A2A v1.0 JSON Schema; a card that cannot be fetched or is
    /// invalid is a 422 saying why.
    #[schema(value_type = Option<String>, example = "https://polyglot.example.com/.well-known/agent-card.json", max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub agent_card_url: Option<EndpointUrl>,
}

/// A capability tag, as the OpenAPI document shows it: 1–64 of `a-z 0-9 . _ -`
/// (upper case is lower-cased), starting with a letter or digit.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^\\s*[A-Za-z0-9][A-Za-z0-9._-]{0,63}\\s*$", example = "translation")]
pub struct CapabilityTagSchema(pub String);

/// Change some of an agent's fields (at least one); absent fields keep their
/// value (or, with `agent_card_url`, take the card's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, value_type = Option<String>, min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub name: Option<AgentName>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, value_type = Option<String>, max_length = 2000, pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub description: Option<AgentDescription>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, value_type = Option<Vec<CapabilityTagSchema>>, min_items = 1, max_items = 32)]
    pub capabilities: Option<Capabilities>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, value_type = Option<String>, max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub endpoint_url: Option<EndpointUrl>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, value_type = Option<String>, pattern = "^\\s*(1000000(\\.0{1,6})?|[0-9]{1,6}(\\.[0-9]{1,6})?)\\s*$")]
    pub price: Option<Price>,
    /// Describe the agent by the A2A Agent Card at this URL (as at
    /// registration): it gives the `name`, `description` and `capabilities`
    /// this request leaves out; `POST /v1/agents/{id}/agent-card/refresh`
    /// reads it again later.
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub agent_card_url: Option<EndpointUrl>,
}

/// The answer to a registration: the agent, and its webhook signing secret,
/// which is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredAgent {
    #[serde(flatten)]
    pub agent: Agent,
    /// `whsec_…`: verify our webhook signatures with it (Standard Webhooks). Store it now.
    pub webhook_secret: String,
}

/// How long the replaced secret keeps signing, at most.
pub const MAX_SECRET_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_SECRET_GRACE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// How long webhooks are also signed with the replaced secret: 0 to
    /// 604800 (7 days); 86400 (24 h) when absent. 0 drops it at once.
    #[serde(default, deserialize_with = "shared::domain::whole_number::optional")]
    #[schema(example = 86400, minimum = 0, maximum = 604800)]
    pub grace_period_seconds: Option<u64>,
}

impl RotateWebhookSecret {
    pub fn grace_period(&self) -> Result<Duration, ApiError> {
        match self.grace_period_seconds.map(Duration::from_secs) {
            None => Ok(DEFAULT_SECRET_GRACE),
            Some(grace) if grace <= MAX_SECRET_GRACE => Ok(grace),
            Some(_) => Err(ApiError::invalid("grace_period_seconds", "must be at most 604800 (7 days)")),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedWebhookSecret {
    /// The new secret, shown only this once.
    pub webhook_secret: String,
    /// Until when webhooks also carry a signature by the replaced secret;
    /// null when it was dropped at once.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
}

/// The data of an `agent.webhook_secret_rotated` event (no secrets).
#[derive(Debug, Serialize)]
pub struct SecretRotated {
    pub agent_id: AgentId,
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
}

/// The data of an `endpoint.enabled` event.
#[derive(Debug, Serialize)]
pub struct EndpointEnabled {
    pub agent_id: AgentId,
    pub endpoint_url: String,
}
