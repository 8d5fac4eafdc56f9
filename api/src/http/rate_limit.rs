//! Token buckets per principal and class, kept in Redis so every API
//! instance shares them, and computed by one Lua script: one round trip,
//! atomic, with Redis's clock so instances need not agree on the time.
//!
//! Every `/v1/` request is limited per client address by [`limit_per_ip`]
//! before anything else (its signature included) is checked: discovery,
//! reads and writes in separate buckets; IPv6 addresses by /64, the block one
//! subscriber gets. Signed requests are limited again per verified principal
//! by the auth extractors. When Redis is unreachable, requests go through
//! unlimited (a limiter outage should not take the API down) and writes fail
//! closed anyway, since their nonce cannot be checked.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use fred::types::scripts::Script;
use shared::settings::BucketSettings;

use crate::http::error::ApiError;
use crate::http::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Discovery,
    Read,
    Write,
    /// Writes per client address, before their signature is checked.
    WriteIp,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Read => "read",
            Self::Write => "write",
            Self::WriteIp => "write_ip",
        }
    }

    fn bucket(self, state: &AppState) -> BucketSettings {
        let limits = &state.settings.rate_limits;
        match self {
            Self::Discovery => limits.discovery,
            Self::Read => limits.read,
            Self::Write => limits.write,
            Self::WriteIp => limits.write_ip,
        }
    }
}

/// Takes one token from the bucket KEYS[1] (ARGV[1]: capacity, ARGV[2]:
/// refill per minute) and returns {allowed (0/1), tokens left (floor), ms
/// until the next token}.
const TAKE_TOKEN_LUA: &str = include_str!("token_bucket.lua");

static TOKEN_BUCKET: LazyLock<Script> = LazyLock::new(|| Script::from_lua(TAKE_TOKEN_LUA));

/// A signed request's nonce and its principal's token in one round trip:
/// first `SET NX EX` of the nonce KEYS[2] for ARGV[3] seconds (a replay
/// answers {-1, 0, 0} and spends no token), then the token as above.
static NONCE_THEN_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "if not redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[3]) then return {{-1, 0, 0}} end\n{TAKE_TOKEN_LUA}"
    ))
});

/// The outcome of taking one token.
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    class: Class,
    bucket: BucketSettings,
    remaining: u64,
    next_token_ms: u64,
}

impl Decision {
    /// From the script's answer: {allowed (0/1), tokens left, ms until the next token}.
    fn new(class: Class, bucket: BucketSettings, (allowed, remaining, next_token_ms): (i64, i64, i64)) -> Self {
        Self {
            allowed: allowed == 1,
            class,
            bucket,
            remaining: u64::try_from(remaining).unwrap_or_default(),
            next_token_ms: u64::try_from(next_token_ms).unwrap_or_default(),
        }
    }

    /// Whole seconds until a request would be allowed again.
    pub fn retry_after_seconds(&self) -> u64 {
        self.next_token_ms.div_ceil(1000).max(1)
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers):
    /// the quota is the burst `q` over the window `w` in which it refills.
    pub fn headers(&self) -> HeaderMap {
        let window = (u64::from(self.bucket.capacity) * 60).div_ceil(u64::from(self.bucket.refill_per_min));
        let reset = if self.remaining == 0 { self.next_token_ms.div_ceil(1000) } else { 0 };
        let name = self.class.name();
        let mut headers = HeaderMap::new();
        let mut insert = |header: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header, value);
            }
        };
        insert("ratelimit-policy", format!("\"{name}\";q={};w={window}", self.bucket.capacity));
        insert("ratelimit", format!("\"{name}\";r={};t={reset}", self.remaining));
        if !self.allowed {
            insert("retry-after", self.retry_after_seconds().to_string());
        }
        headers
    }
}

/// Takes a token from `principal`'s bucket of `class`.
#[tracing::instrument(name = "redis rate limit", skip_all, fields(class = class.name()))]
pub async fn take(state: &AppState, class: Class, principal: &str) -> Result<Decision, fred::error::Error> {
    let bucket = class.bucket(state);
    let answer = TOKEN_BUCKET
        .evalsha_with_reload(state.redis.next(), bucket_key(state, class, principal), arguments(bucket))
        .await?;
    Ok(Decision::new(class, bucket, answer))
}

/// A signed request's nonce (`nonce_key`, kept `nonce_ttl`), then
/// a token of its principal's bucket, in one round trip. `None` when the
/// nonce was seen already: a replay, which spends no token.
#[tracing::instrument(name = "redis nonce and rate limit", skip_all, fields(class = class.name()))]
pub async fn take_with_nonce(
    state: &AppState,
    class: Class,
    principal: &str,
    nonce_key: String,
) -> Result<Option<Decision>, fred::error::Error> {
    let bucket = class.bucket(state);
    let mut arguments = arguments(bucket);
    arguments.push(i64::try_from(state.settings.nonce_ttl.as_secs()).unwrap_or(i64::MAX).max(1));
    let keys = vec![bucket_key(state, class, principal), nonce_key];
    let answer: (i64, i64, i64) = NONCE_THEN_TOKEN.evalsha_with_reload(state.redis.next(), keys, arguments).await?;
    Ok((answer.0 != -1).then(|| Decision::new(class, bucket, answer)))
}

/// Lets the request on, or refuses it with 429.
pub fn admit(decision: Decision) -> Result<(), ApiError> {
    if decision.allowed { Ok(()) } else { Err(rejected(decision)) }
}

/// A 503 for a request whose `checks` need Redis.
pub fn unavailable(error: &fred::error::Error, checks: &'static str) -> ApiError {
    tracing::warn!(%error, during = checks, "redis unavailable");
    ApiError::Unavailable(format!("cannot check {checks} right now; retry shortly"))
}

fn arguments(bucket: BucketSettings) -> Vec<i64> {
    vec![i64::from(bucket.capacity), i64::from(bucket.refill_per_min)]
}

fn bucket_key(state: &AppState, class: Class, principal: &str) -> String {
    format!("{}ratelimit:{}:{principal}", state.settings.redis_key_prefix, class.name())
}

/// A 429, logged for the rate-limit rejections metric.
fn rejected(decision: Decision) -> ApiError {
    tracing::info!(class = decision.class.name(), "rate limited");
    ApiError::RateLimited { retry_after_seconds: decision.retry_after_seconds(), headers: decision.headers() }
}

/// Middleware for every `/v1/`, `/.well-known/` and `/console` route, per
/// client IP: discovery (`GET /v1/agents`), other reads (the console's files
/// among them), and writes, whose signature is
/// not checked yet (so a flood of forged signatures costs one Redis call
/// each, not a verification and a key lookup). Fails open when Redis is
/// unreachable.
pub async fn limit_per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !["/v1/", "/.well-known/", "/console"].iter().any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
    let class = match *request.method() {
        Method::GET | Method::HEAD if path == "/v1/agents" => Class::Discovery,
        Method::GET | Method::HEAD => Class::Read,
        _ => Class::WriteIp,
    };
    let ip = client_ip(request.headers(), request.extensions());
    let decision = match take(&state, class, &ip).await {
        Ok(decision) => decision,
        Err(error) => {
            tracing::warn!(%error, during = "rate limit", "redis unavailable");
            return next.run(request).await;
        }
    };
    if !decision.allowed {
        return axum::response::IntoResponse::into_response(rejected(decision));
    }
    let headers = decision.headers();
    let mut response = next.run(request).await;
    // A refusal by the principal's own bucket keeps its headers: they say why.
    for (name, value) in &headers {
        response.headers_mut().entry(name).or_insert_with(|| value.clone());
    }
    response
}

/// The caller's bucket name: its IPv4 address, or the /64 of its IPv6 one
/// (one subscriber often holds a whole /64, so per address it could take
/// 2^64 buckets). Cloud Run appends the caller's address to
/// `X-Forwarded-For`; entries to its left are whatever the caller sent, so
/// only the last one is trusted. Without the header (local runs), the peer
/// address.
pub fn client_ip(headers: &HeaderMap, extensions: &axum::http::Extensions) -> String {
    // Anything unparseable shares one bucket rather than getting one per spelling.
    caller_address(headers, extensions).map_or_else(|| "unknown".to_owned(), bucket_of)
}

/// The address a registration is recorded as coming from (its bucket, as
/// [`client_ip`]): `None` when unknown, or loopback (this host itself: local
/// runs, where every caller shares it; behind Cloud Run no caller has it).
pub fn registration_address(headers: &HeaderMap, extensions: &axum::http::Extensions) -> Option<String> {
    caller_address(headers, extensions).filter(|address| !address.to_canonical().is_loopback()).map(bucket_of)
}

fn caller_address(headers: &HeaderMap, extensions: &axum::http::Extensions) -> Option<IpAddr> {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim)
        .filter(|ip| !ip.is_empty());
    match forwarded {
        Some(ip) => ip.parse::<IpAddr>().ok(),
        None => extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip()),
    }
}

fn bucket_of(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{}/64", Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(forwarded_for: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(forwarded_for).unwrap());
        client_ip(&headers, &axum::http::Extensions::new())
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_ipv4_stays_whole() {
        assert_eq!(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:DB8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(bucket("spoofed, 203.0.113.7"), "203.0.113.7");
        assert_eq!(bucket("::ffff:203.0.113.7"), "203.0.113.7", "an IPv4-mapped address is its IPv4 address");
        assert_eq!(bucket("not an address"), "unknown");
    }

    #[test]
    fn a_registration_records_the_callers_bucket_but_not_this_host() {
        let address = |forwarded_for: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_str(forwarded_for).unwrap());
            registration_address(&headers, &axum::http::Extensions::new())
        };
        assert_eq!(address("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(address("2001:db8:1:2::1").as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(address("127.0.0.1"), None);
        assert_eq!(address("::1"), None);
        assert_eq!(address("::ffff:127.0.0.1"), None);
        assert_eq!(address("not an address"), None);
    }
}
