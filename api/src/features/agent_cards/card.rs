//! An agent as an A2A v1.0 `AgentCard` (ProtoJSON field names), and its
//! signature per A2A §8.4: a detached JWS (EdDSA, the platform key) over the
//! RFC 8785 canonical form of the card without `signatures`.
//!
//! A verifier drops fields at their proto default before canonicalising
//! (§8.4.1), so the card never holds one unless the proto marks it REQUIRED
//! or `optional`: empty lists that are not REQUIRED and `required: false` on
//! the extension are left out, or the signature would not verify.

use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::features::agents::card_import::{AgentInterface, AgentProvider};
use crate::features::agents::card_proof::Claims;
use crate::http::platform_keys::PlatformKeys;
use crate::resources::agent::AgentProfile;

/// The URI of the extension that carries this registry's listing of the agent.
pub const LISTING_EXTENSION_URI: &str = "urn:agent-registry:a2a:listing:v1";

/// What jobs take and give: any JSON.
const JSON_MODES: [&str; 1] = ["application/json"];

/// An A2A v1.0 `AgentCard`, as this registry serves it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    pub name: String,
    /// The agent's description (may be empty).
    pub description: String,
    /// How to reach the agent over A2A, as its own card (`agent_card_url`)
    /// declared, when that is proven (see the listing's `card_proof`); empty
    /// otherwise (it is then hired through this registry's jobs).
    pub supported_interfaces: Vec<AgentInterface>,
    /// Who provides the agent, as its own card declared, when that is proven; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<AgentProvider>,
    /// When the agent's registration last changed (RFC 3339).
    pub version: String,
    pub capabilities: AgentCapabilities,
    #[schema(example = json!(["application/json"]))]
    pub default_input_modes: Vec<String>,
    #[schema(example = json!(["application/json"]))]
    pub default_output_modes: Vec<String>,
    /// One skill per capability tag.
    pub skills: Vec<AgentSkill>,
    /// The platform's signature (A2A §8.4); its `kid` is a key of `/.well-known/jwks.json`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<AgentCardSignature>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    pub streaming: bool,
    pub push_notifications: bool,
    /// This registry's listing (`urn:agent-registry:a2a:listing:v1`).
    pub extensions: Vec<AgentExtension>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentExtension {
    #[schema(example = "urn:agent-registry:a2a:listing:v1")]
    pub uri: String,
    pub description: String,
    /// `agent_id`; `price` (decimal string); `rating` (mean score, two
    /// decimals) and `rating_count`; `score` (reputation); `last_seen_at`
    /// (RFC 3339, absent before the first heartbeat); `receipts` (where the
    /// agent's signed job receipts are listed); `card_proof` (with an
    /// imported card: `card_host` or `jws`, how its provider and interfaces
    /// were proven, or `unverified`, and then they are left out).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSkill {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCardSignature {
    /// Base64url of the protected header `{"alg":"EdDSA","kid":…,"typ":"JOSE"}`.
    pub protected: String,
    /// Base64url of the Ed25519 signature.
    pub signature: String,
}

impl AgentCard {
    /// The card of `agent` (an active one), with what of its own card's
    /// claims are proven for it (`claims`: interfaces and provider), unsigned.
    pub fn of(agent: &AgentProfile, claims: Option<Claims>) -> anyhow::Result<Self> {
        let proof = claims.as_ref().map(|claims| claims.proof);
        let (supported_interfaces, provider) =
            claims.map(|claims| (claims.interfaces, claims.provider)).unwrap_or_default();
        let mut params = json!({
            "agent_id": agent.id,
            "price": agent.price,
            "rating": agent.rating.to_string(),
            "rating_count": agent.rating_count,
            "score": agent.score.to_string(),
            "receipts": format!("/v1/agents/{}/receipts", agent.id),
        });
        if let Some(seen) = agent.last_seen_at {
            params["last_seen_at"] = seen.format(&Rfc3339)?.into();
        }
        if let Some(proof) = proof {
            params["card_proof"] = serde_json::to_value(proof)?;
        }
        let listing = AgentExtension {
            uri: LISTING_EXTENSION_URI.into(),
            description: "The agent's listing in this registry: its price per job, ratings, reputation score, last \
                          heartbeat and signed job receipts. Hire it with POST /v1/jobs."
                .into(),
            params,
        };
        let skills = agent
            .capabilities
            .iter()
            .map(|tag| AgentSkill {
                id: tag.clone(),
                name: tag.clone(),
                description: format!("{tag}, as {} offers it", agent.name),
                tags: vec![tag.clone()],
            })
            .collect();
        Ok(Self {
            name: agent.name.clone(),
            description: agent.description.clone(),
            supported_interfaces,
            provider,
            version: agent.updated_at.format(&Rfc3339)?,
            capabilities: AgentCapabilities { streaming: false, push_notifications: false, extensions: vec![listing] },
            default_input_modes: JSON_MODES.map(String::from).to_vec(),
            default_output_modes: JSON_MODES.map(String::from).to_vec(),
            skills,
            signatures: Vec::new(),
        })
    }

    /// Signs the card (replacing any signature) per A2A §8.4.
    pub fn sign(mut self, keys: &PlatformKeys) -> anyhow::Result<Self> {
        self.signatures.clear();
        let canonical = serde_json_canonicalizer::to_vec(&self)?;
        let signed = keys.sign_detached(&canonical)?;
        self.signatures.push(AgentCardSignature { protected: signed.protected, signature: signed.signature });
        Ok(self)
    }
}
