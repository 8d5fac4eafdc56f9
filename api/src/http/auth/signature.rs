//! Verifying an RFC 9421 signature. Structured fields are parsed by `sfv`;
//! the signature base is built here because it must repeat the client's
//! `Signature-Input` parameters exactly as sent, in their order (RFC 9421
//! §2.5): the `httpsig` crate re-serialises them in an order of its own, so
//! it rejects correct signatures from other libraries. The policy (what must
//! be covered, how fresh, each nonce once) is here too; which key a keyid
//! names is [`crate::http::known_keys`].

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sfv::{BareItem, Dictionary, FieldType, InnerList, ListEntry, Parser};
use sha2::{Digest, Sha256};
use shared::settings::MAX_CLOCK_SKEW_SECONDS;
use shared::signing::{COVERED_COMPONENTS, DIGEST_COMPONENT, IDEMPOTENCY_KEY};

use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::http::state::AppState;

const MAX_NONCE_LEN: usize = 128;
const MAX_KEYID_LEN: usize = 64;

/// Which check refused a request; each is a 401 with its own problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("the request is not signed: send Signature-Input and Signature headers (RFC 9421)")]
    Missing,
    #[error("the signature headers are malformed: {0}")]
    Malformed(String),
    /// A required component is not covered: an intermediary could change it.
    #[error(
        "the signature must cover {0} (always @method and the target; content-digest with a body; idempotency-key when the request carries an Idempotency-Key)"
    )]
    Uncovered(&'static str),
    #[error("the signature's created time is more than {0} seconds old")]
    Expired(u64),
    #[error("the signature's expires time has passed")]
    ExpiresPassed,
    #[error("the signature's created time is in the future")]
    FromFuture,
    /// An unknown keyid (or one whose key was replaced or deactivated) and a
    /// wrong signature get this same answer, so neither can be told apart.
    #[error("the signature does not verify with an active key registered under this keyid")]
    BadSignature,
    #[error("the Content-Digest does not match the body")]
    DigestMismatch,
    #[error("this nonce was already used; sign each request with a new nonce")]
    ReplayedNonce,
}

impl AuthFailure {
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Missing => "signature-missing",
            Self::Malformed(_) => "signature-malformed",
            Self::Uncovered(_) => "signature-incomplete",
            Self::Expired(_) | Self::ExpiresPassed => "signature-expired",
            Self::FromFuture => "signature-from-future",
            Self::BadSignature => "signature-invalid",
            Self::DigestMismatch => "digest-mismatch",
            Self::ReplayedNonce => "nonce-replayed",
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        Self::Unauthorized { slug: failure.slug(), message: failure.to_string() }
    }
}

/// A verified signature: who signed, the key that verified, and the Redis
/// key of its nonce, which the caller stores (with the rate-limit token, in
/// one round trip) before the request goes on.
pub struct Verified {
    pub principal: Principal,
    pub key: VerifyingKey,
    pub nonce_key: String,
}

/// Checks run cheapest first; the nonce is stored only after them, so
/// requests that fail verification cannot fill Redis or burn a legitimate
/// nonce.
pub async fn verify(parts: &Parts, body: &[u8], state: &AppState) -> Result<Verified, ApiError> {
    let signature = SignatureInput::from_headers(&parts.headers)?;
    let nonce = signature.nonce.as_deref().ok_or_else(|| malformed("the nonce parameter (a string) is missing"))?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(malformed(format!("the nonce must be 1 to {MAX_NONCE_LEN} characters")).into());
    }
    signature.require_coverage(parts, !body.is_empty())?;
    check_created(signature.created, state.settings.signature_max_age.as_secs())?;
    check_expires(signature.expires)?;
    let base = signature.base(parts)?;

    let principal = Principal::from_keyid(&signature.keyid);
    let key = match &principal {
        Some(principal) => state.known_keys.resolve(&state.db, principal).await?,
        None => None,
    };
    // An unknown keyid is checked against a decoy all the same, so it costs what a known one does.
    let verified = key.as_ref().unwrap_or(&DECOY_KEY).verify_strict(base.as_bytes(), &signature.signature).is_ok();
    let (Some(principal), Some(key), true) = (principal, key, verified) else {
        return Err(AuthFailure::BadSignature.into());
    };
    if let Some(digest) = parts.headers.get(DIGEST_COMPONENT) {
        check_digest(digest.as_bytes(), body)?;
    }
    let nonce_key = nonce_key(state, &principal, nonce);
    Ok(Verified { principal, key, nonce_key })
}

fn malformed(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Malformed(reason.into())
}

/// The one signature of a request, from `Signature-Input` and `Signature`.
struct SignatureInput {
    components: Vec<String>,
    /// The inner list with its parameters, serialised as sent.
    params: String,
    created: i64,
    /// Optional (RFC 9421 §2.3); enforced when sent.
    expires: Option<i64>,
    keyid: String,
    /// Required by our policy (replays), not by the format.
    nonce: Option<String>,
    signature: Signature,
}

impl SignatureInput {
    fn from_headers(headers: &HeaderMap) -> Result<Self, AuthFailure> {
        let (Some(input), Some(signature)) = (headers.get("signature-input"), headers.get("signature")) else {
            return Err(AuthFailure::Missing);
        };
        let inputs = parse_dictionary(input.as_bytes(), "Signature-Input")?;
        let mut members = inputs.into_iter();
        let (Some((label, ListEntry::InnerList(inner))), None) = (members.next(), members.next()) else {
            return Err(malformed("Signature-Input must hold exactly one signature, an inner list"));
        };
        let signatures = parse_dictionary(signature.as_bytes(), "Signature")?;
        let signature = match signatures.get(&label) {
            Some(ListEntry::Item(item)) => item.bare_item.as_byte_sequence(),
            _ => None,
        }
        .ok_or_else(|| malformed(format!("Signature has no byte sequence labelled {}", label.as_str())))?;
        let signature = Signature::from_slice(signature).map_err(|_| malformed("the signature is not 64 bytes"))?;

        let components = inner
            .items
            .iter()
            .map(|item| match (&item.bare_item, item.params.is_empty()) {
                (BareItem::String(name), true) => Ok(name.as_str().to_owned()),
                _ => Err(malformed("covered components must be plain strings such as \"@method\"")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let param = |name: &str| inner.params.iter().find(|(key, _)| key.as_str() == name).map(|(_, value)| value);
        let text = |name: &str| {
            param(name)
                .and_then(|value| value.as_string().map(|text| text.as_str().to_owned()))
                .ok_or_else(|| malformed(format!("the {name} parameter (a string) is missing")))
        };
        if param("alg").is_some_and(|alg| alg.as_string().map(|alg| alg.as_str()) != Some("ed25519")) {
            return Err(malformed("alg must be \"ed25519\""));
        }
        let created = param("created")
            .and_then(BareItem::as_integer)
            .map(i64::from)
            .ok_or_else(|| malformed("the created parameter (an integer) is missing"))?;
        let expires = param("expires")
            .map(|value| {
                value.as_integer().map(i64::from).ok_or_else(|| malformed("the expires parameter must be an integer"))
            })
            .transpose()?;
        let keyid = text("keyid")?;
        let nonce = text("nonce").ok();
        if keyid.len() > MAX_KEYID_LEN {
            return Err(malformed("keyid is too long"));
        }
        let params = serialize_inner_list(inner)?;
        Ok(Self { components, params, created, expires, keyid, nonce, signature })
    }

    fn covers(&self, component: &str) -> bool {
        self.components.iter().any(|covered| covered == component)
    }

    /// `@method`, the target (`@target-uri`, or `@authority` + `@path` +
    /// `@query`), with a body `content-digest`, and with an
    /// `Idempotency-Key` that header: stripped by an intermediary, it would
    /// turn a retry into a second (paid) job.
    fn require_coverage(&self, parts: &Parts, has_body: bool) -> Result<(), AuthFailure> {
        let target_by_parts =
            self.covers("@authority") && self.covers("@path") && (parts.uri.query().is_none() || self.covers("@query"));
        let mut required = COVERED_COMPONENTS.to_vec();
        if has_body {
            required.push(DIGEST_COMPONENT);
        }
        if parts.headers.contains_key(IDEMPOTENCY_KEY) {
            required.push(IDEMPOTENCY_KEY);
        }
        match required.into_iter().find(|name| !(self.covers(name) || (*name == "@target-uri" && target_by_parts))) {
            Some(missing) => Err(AuthFailure::Uncovered(missing)),
            None => Ok(()),
        }
    }

    /// The signature base (RFC 9421 §2.5): one line per covered component,
    /// then the parameters exactly as sent.
    fn base(&self, parts: &Parts) -> Result<String, AuthFailure> {
        let mut base = String::new();
        for component in &self.components {
            let value = component_value(component, parts)?;
            base.push_str(&format!("\"{component}\": {value}\n"));
        }
        base.push_str(&format!("\"@signature-params\": {}", self.params));
        Ok(base)
    }
}

fn parse_dictionary(value: &[u8], header: &str) -> Result<Dictionary, AuthFailure> {
    Parser::new(value).parse::<Dictionary>().map_err(|e| malformed(format!("{header} is not a structured field: {e}")))
}

fn serialize_inner_list(inner: InnerList) -> Result<String, AuthFailure> {
    let list: sfv::List = vec![ListEntry::InnerList(inner)];
    list.serialize().ok_or_else(|| malformed("the signature parameters cannot be serialised"))
}

/// The value of one covered component. Derived components describe the
/// request as the client sent it: Cloud Run terminates TLS and says
/// `X-Forwarded-Proto: https`.
fn component_value(component: &str, parts: &Parts) -> Result<String, AuthFailure> {
    let authority = || {
        parts
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| malformed("the request has no Host"))
    };
    let path = parts.uri.path();
    let query = parts.uri.query();
    Ok(match component {
        "@method" => parts.method.as_str().to_owned(),
        "@scheme" => scheme(&parts.headers).to_owned(),
        "@authority" => authority()?,
        "@path" => path.to_owned(),
        "@query" => format!("?{}", query.unwrap_or_default()),
        "@request-target" => parts.uri.path_and_query().map_or_else(|| path.to_owned(), |target| target.to_string()),
        "@target-uri" => {
            let target = parts.uri.path_and_query().map_or(path, |target| target.as_str());
            format!("{}://{}{target}", scheme(&parts.headers), authority()?)
        }
        derived if derived.starts_with('@') => return Err(malformed(format!("component {derived} is not supported"))),
        field => {
            let values: Vec<&str> = parts
                .headers
                .get_all(field)
                .iter()
                .map(|value| value.to_str().map(str::trim))
                .collect::<Result<_, _>>()
                .map_err(|_| malformed(format!("header {field} is not visible ASCII")))?;
            if values.is_empty() {
                return Err(malformed(format!("the signature covers {field}, which the request lacks")));
            }
            values.join(", ")
        }
    })
}

fn scheme(headers: &HeaderMap) -> &'static str {
    let forwarded = headers.get("x-forwarded-proto").and_then(|proto| proto.to_str().ok());
    match forwarded.and_then(|proto| proto.split(',').next()).map(str::trim) {
        Some("https") => "https",
        _ => "http",
    }
}

/// RFC 9530: the `sha-256` member must be the SHA-256 of the body.
fn check_digest(header: &[u8], body: &[u8]) -> Result<(), AuthFailure> {
    let digests = parse_dictionary(header, "Content-Digest")?;
    let sent = digests
        .iter()
        .find(|(algorithm, _)| algorithm.as_str() == "sha-256")
        .and_then(|(_, entry)| match entry {
            ListEntry::Item(item) => item.bare_item.as_byte_sequence(),
            ListEntry::InnerList(_) => None,
        })
        .ok_or_else(|| malformed("Content-Digest needs a sha-256 byte sequence"))?;
    if sent[..] != Sha256::digest(body)[..] {
        return Err(AuthFailure::DigestMismatch);
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |now| now.as_secs())
}

fn check_expires(expires: Option<i64>) -> Result<(), AuthFailure> {
    match expires {
        Some(expires) if i128::from(unix_now()) > i128::from(expires) => Err(AuthFailure::ExpiresPassed),
        _ => Ok(()),
    }
}

fn check_created(created: i64, max_age_seconds: u64) -> Result<(), AuthFailure> {
    let age = i128::from(unix_now()) - i128::from(created);
    if age > i128::from(max_age_seconds) {
        return Err(AuthFailure::Expired(max_age_seconds));
    }
    if -age > i128::from(MAX_CLOCK_SKEW_SECONDS) {
        return Err(AuthFailure::FromFuture);
    }
    Ok(())
}

static DECOY_KEY: LazyLock<VerifyingKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]).verifying_key());

/// Keyed by the canonical keyid: a nonce cannot be used again under
/// another spelling. Stored with `SET NX EX`, atomic, so two replays racing
/// each other cannot both pass.
fn nonce_key(state: &AppState, principal: &Principal, nonce: &str) -> String {
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
    format!("{}nonce:{principal}:{nonce}", state.settings.redis_key_prefix)
}

#[cfg(test)]
mod tests {
    use shared::domain::PublicKey;

    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    /// RFC 9421 Appendix B.2.6: the Ed25519 example, key `test-key-ed25519`.
    #[test]
    fn verifies_the_rfc_9421_ed25519_example() {
        let request = parts(
            "POST",
            "/foo?param=Value&Pet=dog",
            &[
                ("host", "example.com"),
                ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
                ("content-type", "application/json"),
                ("content-length", "18"),
                (
                    "signature-input",
                    r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#,
                ),
                (
                    "signature",
                    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
                ),
            ],
        );
        let expected_base = concat!(
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n",
            "\"@method\": POST\n",
            "\"@path\": /foo\n",
            "\"@authority\": example.com\n",
            "\"content-type\": application/json\n",
            "\"content-length\": 18\n",
            "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\")",
            ";created=1618884473;keyid=\"test-key-ed25519\"",
        );
        let signature = SignatureInput::from_headers(&request.headers).unwrap();
        assert_eq!(signature.base(&request).unwrap(), expected_base);
        let key = "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=".parse::<PublicKey>().unwrap();
        assert!(key.verifying_key().verify_strict(expected_base.as_bytes(), &signature.signature).is_ok());
    }

    #[test]
    fn parameters_keep_the_order_the_client_sent() {
        let signature = SignatureInput::from_headers(
            &parts(
                "GET",
                "/",
                &[
                    ("signature-input", r#"a=("@method");nonce="n";keyid="k";created=1"#),
                    ("signature", &format!("a=:{}:", base64::engine::general_purpose::STANDARD.encode([0u8; 64]))),
                ],
            )
            .headers,
        )
        .unwrap();
        assert_eq!(signature.params, r#"("@method");nonce="n";keyid="k";created=1"#);
    }

    #[test]
    fn target_uri_uses_the_forwarded_scheme_and_host() {
        let request = parts("GET", "/v1/agents?q=x", &[("host", "api.example.com"), ("x-forwarded-proto", "https")]);
        assert_eq!(component_value("@target-uri", &request).unwrap(), "https://api.example.com/v1/agents?q=x");
        assert_eq!(component_value("@query", &request).unwrap(), "?q=x");
        assert!(component_value("@status", &request).is_err());
        assert!(component_value("content-digest", &request).is_err(), "covered headers must be present");
    }

    fn signed_input(params: &str) -> SignatureInput {
        let signature = format!("a=:{}:", base64::engine::general_purpose::STANDARD.encode([0u8; 64]));
        let headers = [("signature-input", params), ("signature", signature.as_str())];
        SignatureInput::from_headers(&parts("GET", "/", &headers).headers).unwrap()
    }

    #[test]
    fn an_idempotency_key_sent_must_be_covered() {
        let plain = signed_input(r#"a=("@method" "@target-uri");created=1;keyid="k""#);
        let covering = signed_input(r#"a=("@method" "@target-uri" "idempotency-key");created=1;keyid="k""#);
        let with_key = parts("POST", "/v1/jobs", &[("idempotency-key", "order-1")]);
        assert_eq!(plain.require_coverage(&with_key, false), Err(AuthFailure::Uncovered("idempotency-key")));
        assert_eq!(covering.require_coverage(&with_key, false), Ok(()));
        assert_eq!(plain.require_coverage(&parts("POST", "/v1/jobs", &[]), false), Ok(()), "no key, nothing to cover");
    }

    #[test]
    fn expires_is_enforced_when_sent() {
        assert_eq!(signed_input(r#"a=("@method");created=1;keyid="k""#).expires, None);
        let past = signed_input(r#"a=("@method");created=1;expires=2;keyid="k""#);
        assert_eq!(check_expires(past.expires), Err(AuthFailure::ExpiresPassed));
        let later = i64::try_from(unix_now()).unwrap() + 60;
        assert_eq!(check_expires(Some(later)), Ok(()));
        let headers =
            [("signature-input", r#"a=("@method");created=1;expires="soon";keyid="k""#), ("signature", "a=:AA==:")];
        assert!(matches!(
            SignatureInput::from_headers(&parts("GET", "/", &headers).headers),
            Err(AuthFailure::Malformed(_))
        ));
    }

    #[test]
    fn digests_must_be_sha_256_of_the_body() {
        let digest = format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"{\"hello\": \"world\"}"))
        );
        assert!(check_digest(digest.as_bytes(), b"{\"hello\": \"world\"}").is_ok());
        assert_eq!(check_digest(digest.as_bytes(), b"{}"), Err(AuthFailure::DigestMismatch));
        assert!(matches!(check_digest(b"sha-512=:AAAA:", b"{}"), Err(AuthFailure::Malformed(_))));
    }
}
