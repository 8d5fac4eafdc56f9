//! Whether an imported card's claims of identity — its `provider` and its
//! interfaces — are proven, so that the registry may sign them as the
//! agent's (see `agent_cards`).
//!
//! The proof must name the agent: the card declares the agent's current
//! signing key ([`AGENT_KEY_EXTENSION_URI`](card_import::AGENT_KEY_EXTENSION_URI)),
//! or nothing is proven — else anyone could import a site's public (or
//! signed) card with an endpoint URL on that site they do not control. A key
//! rotation drops the proof (`store::forget_card_proof`) until the card is
//! fetched again.
//!
//! The claims name one site (a registrable domain, by the Public Suffix
//! List; an IP address or a name without one stands for itself): every
//! claimed URL must be on it, or nothing is proven. That site vouches for
//! them when the card was fetched from it ([`Proof::CardHost`]), or when the
//! card carries an A2A §8.4 signature (a detached JWS over the RFC 8785
//! form of the card without `signatures`) that verifies with a key of the
//! JWK set its protected header's `jku` names on that site ([`Proof::Jws`];
//! https only unless `ALLOW_HTTP_ENDPOINTS`, fetched through the egress
//! client, bounded in time and size). The claims are served, signed, only
//! while the agent's endpoint is on that site too: a card anyone can fetch
//! or copy proves nothing about who imports it.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use shared::egress::EgressClient;
use url::Url;

use super::card_import::{self, AgentInterface, AgentProvider, CardSignature, ImportedCard};

/// The largest JWK set read.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The most signatures of one card tried (each may cost a JWK set fetch).
const MAX_SIGNATURES: usize = 4;

/// How an imported card's claims were proven, as stored with the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// Not proven (or nothing to prove): the claims are not served.
    Unverified,
    /// The card was fetched from the site its claims name.
    CardHost,
    /// The card's JWS verified with a key published on the site its claims name.
    Jws,
}

/// A card's proof and the site it holds for (`None` when unverified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub proof: Proof,
    pub site: Option<String>,
}

impl Proven {
    pub const UNVERIFIED: Self = Self { proof: Proof::Unverified, site: None };

    /// Whether the claims may be served for an agent whose endpoint is `endpoint_url`.
    pub fn holds_for(&self, endpoint_url: &str) -> bool {
        self.proof != Proof::Unverified
            && self.site.is_some()
            && Url::parse(endpoint_url).ok().as_ref().and_then(site_of) == self.site
    }
}

/// What an imported card declared, as stored with its proof.
pub struct Declared {
    pub interfaces: Vec<AgentInterface>,
    pub provider: Option<AgentProvider>,
    pub proven: Proven,
}

/// What the registry's card of an agent takes from its imported card: the
/// claims only while their proof holds for the agent's endpoint, and which
/// proof that is (`Unverified`: the claims are left out).
pub struct Claims {
    pub interfaces: Vec<AgentInterface>,
    pub provider: Option<AgentProvider>,
    pub proof: Proof,
}

impl Declared {
    pub fn claims_for(self, endpoint_url: &str) -> Claims {
        if self.proven.holds_for(endpoint_url) {
            Claims { interfaces: self.interfaces, provider: self.provider, proof: self.proven.proof }
        } else {
            Claims { interfaces: Vec::new(), provider: None, proof: Proof::Unverified }
        }
    }
}

/// How the claims of `card`, fetched from `card_url`, are proven for the
/// agent whose signing key is `agent_key`.
pub async fn prove(
    egress: &EgressClient,
    allow_http: bool,
    card_url: &Url,
    card: &ImportedCard,
    agent_key: &VerifyingKey,
) -> Proven {
    if !names_agent(card, agent_key) {
        return Proven::UNVERIFIED;
    }
    let Some(site) = claimed_site(&card.interfaces, card.provider.as_ref()) else {
        return Proven::UNVERIFIED;
    };
    if site_of(card_url).as_deref() == Some(site.as_str()) {
        return Proven { proof: Proof::CardHost, site: Some(site) };
    }
    for signature in card.signatures.iter().take(MAX_SIGNATURES) {
        match verify(egress, allow_http, &site, &card.signed_payload, signature).await {
            Ok(()) => return Proven { proof: Proof::Jws, site: Some(site) },
            Err(why) => tracing::info!(%why, "an agent card's signature does not prove its claims"),
        }
    }
    Proven::UNVERIFIED
}

/// Whether the card declares `agent_key` as its agent's signing key (inside
/// what a card signature covers: everything but `signatures`).
fn names_agent(card: &ImportedCard, agent_key: &VerifyingKey) -> bool {
    card.agent_keys.iter().any(|declared| declared.verifying_key() == agent_key)
}

/// The one site every claimed URL is on; `None` when there are no claims,
/// or they name several sites or none.
fn claimed_site(interfaces: &[AgentInterface], provider: Option<&AgentProvider>) -> Option<String> {
    let urls = interfaces.iter().map(|interface| &interface.url).chain(provider.map(|provider| &provider.url));
    let mut sites = urls.map(|url| Url::parse(url).ok().as_ref().and_then(site_of));
    let first = sites.next()??;
    sites.all(|site| site.as_deref() == Some(first.as_str())).then_some(first)
}

/// A URL's site: the registrable domain of its host, or the host itself
/// when it is an IP address or has no registrable domain (`localhost`).
pub fn site_of(url: &Url) -> Option<String> {
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Some(host);
    }
    Some(psl::domain_str(&host).map_or_else(|| host.clone(), str::to_owned))
}

/// The protected header of a card signature, as far as it is read here.
#[derive(Deserialize)]
struct Protected {
    alg: String,
    kid: String,
    jku: String,
}

/// Whether `signature` verifies over `payload` with the key its header
/// names, published at its `jku` on `site`; why not otherwise.
async fn verify(
    egress: &EgressClient,
    allow_http: bool,
    site: &str,
    payload: &[u8],
    signature: &CardSignature,
) -> Result<(), String> {
    let header = URL_SAFE_NO_PAD.decode(&signature.protected).map_err(|_| "the protected header is not base64url")?;
    let header: Protected = serde_json::from_slice(&header)
        .map_err(|error| format!("the protected header lacks alg, kid or jku: {error}"))?;
    let algorithm: Algorithm = header.alg.parse().map_err(|_| format!("unknown alg {}", header.alg))?;
    if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err("a shared-secret alg proves nothing".into());
    }
    let jku = Url::parse(&header.jku).map_err(|_| "jku is not a URL")?;
    if !(jku.scheme() == "https" || (allow_http && jku.scheme() == "http")) {
        return Err("jku is not https".into());
    }
    if site_of(&jku).as_deref() != Some(site) {
        return Err(format!("jku is not on {site}, the site the card's claims name"));
    }
    let keys = card_import::get_bounded(egress, &jku, MAX_JWKS_BYTES).await.map_err(|error| error.to_string())?;
    let keys: JwkSet = serde_json::from_slice(&keys).map_err(|error| format!("jku is not a JWK set: {error}"))?;
    let jwk = keys.find(&header.kid).ok_or_else(|| format!("no key {} at jku", header.kid))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|error| format!("key {}: {error}", header.kid))?;
    let signing_input = format!("{}.{}", signature.protected, URL_SAFE_NO_PAD.encode(payload));
    match jsonwebtoken::crypto::verify(&signature.signature, signing_input.as_bytes(), &key, algorithm) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the signature does not verify".into()),
        Err(error) => Err(format!("the signature cannot be checked: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(url: &str) -> Option<String> {
        site_of(&Url::parse(url).unwrap())
    }

    fn interface(url: &str) -> AgentInterface {
        serde_json::from_value(serde_json::json!({"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}))
            .unwrap()
    }

    #[test]
    fn a_site_is_the_registrable_domain_by_the_public_suffix_list() {
        assert_eq!(site("https://a2a.geo.example.com/x").as_deref(), Some("example.com"));
        assert_eq!(site("https://Shop.Example.CO.UK.").as_deref(), Some("example.co.uk"));
        // A private suffix: two GitHub Pages users are two sites.
        assert_eq!(site("https://alice.github.io/card.json").as_deref(), Some("alice.github.io"));
        assert_ne!(site("https://alice.github.io"), site("https://bob.github.io"));
        assert_eq!(site("http://127.0.0.1:8080/card.json").as_deref(), Some("127.0.0.1"));
        assert_eq!(site("http://[::1]:8080/").as_deref(), Some("[::1]"));
        assert_eq!(site("http://localhost:3000/").as_deref(), Some("localhost"));
    }

    #[test]
    fn the_claims_must_all_name_one_site() {
        let provider = AgentProvider { organization: "Geo".into(), url: "https://geo.example.com".into() };
        let same = [interface("https://a2a.example.com/rpc")];
        assert_eq!(claimed_site(&same, Some(&provider)).as_deref(), Some("example.com"));
        let elsewhere = [interface("https://a2a.example.com/rpc"), interface("https://evil.example.net/rpc")];
        assert_eq!(claimed_site(&elsewhere, Some(&provider)), None);
        assert_eq!(claimed_site(&[], None), None, "nothing claimed, nothing to prove");
        assert_eq!(claimed_site(&[interface("not a url")], None), None);
    }

    #[test]
    fn a_proof_holds_only_for_an_endpoint_on_its_site() {
        let proven = Proven { proof: Proof::CardHost, site: Some("example.com".into()) };
        assert!(proven.holds_for("https://hooks.example.com/in"));
        assert!(!proven.holds_for("https://example.net/in"));
        assert!(!Proven::UNVERIFIED.holds_for("https://example.com/in"));
    }
}
