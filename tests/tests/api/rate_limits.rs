//! Token buckets in Redis: bursts beyond capacity get 429 with the right
//! Retry-After, tokens come back at the configured rate, and every API
//! instance draws from the same bucket.

use std::time::Duration;

use serde_json::json;
use tests::{Method, TestApp, spawn_app_with};

async fn app_with_limits(limits: &[(&str, &str)], prefix: Option<&str>) -> TestApp {
    spawn_app_with(|source, _| {
        for (name, value) in limits {
            source.set(name, *value);
        }
        if let Some(prefix) = prefix {
            source.set("REDIS_KEY_PREFIX", prefix);
        }
    })
    .await
}

#[tokio::test]
async fn a_burst_beyond_capacity_gets_429_with_retry_after() {
    // 3 tokens, one more every 10 s.
    let app =
        app_with_limits(&[("RATE_LIMIT_READ_CAPACITY", "3"), ("RATE_LIMIT_READ_REFILL_PER_MIN", "6")], None).await;
    let path = "/v1/agents/agt_00000000000000000000000000000000";
    for remaining in [2, 1, 0] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "within the burst");
        assert_eq!(response.headers()["ratelimit-policy"], "\"read\";q=3;w=30");
        assert!(response.headers()["ratelimit"].to_str().unwrap().starts_with(&format!("\"read\";r={remaining};")));
    }
    let limited = app.get(path).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((9..=10).contains(&retry_after), "one token takes 10 s, got {retry_after}");
    assert!(limited.headers().contains_key("ratelimit-policy"));

    // Other classes have their own buckets; probes are never limited.
    assert_eq!(app.get("/v1/agents").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn tokens_refill_at_the_configured_rate() {
    // 2 tokens, one more every second.
    let app =
        app_with_limits(&[("RATE_LIMIT_DISCOVERY_CAPACITY", "2"), ("RATE_LIMIT_DISCOVERY_REFILL_PER_MIN", "60")], None)
            .await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/agents").await.status(), 200);
    }
    let limited = app.get("/v1/agents").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.get("/v1/agents").await.status(), 200, "one token came back");
    assert_eq!(app.get("/v1/agents").await.status(), 429, "and only one");
}

#[tokio::test]
async fn two_instances_share_one_bucket() {
    let prefix = format!("shared-{}:", uuid::Uuid::new_v4().simple());
    let limits = [("RATE_LIMIT_DISCOVERY_CAPACITY", "4"), ("RATE_LIMIT_DISCOVERY_REFILL_PER_MIN", "1")];
    let first = app_with_limits(&limits, Some(&prefix)).await;
    let second = app_with_limits(&limits, Some(&prefix)).await;
    for app in [&first, &second, &first, &second] {
        assert_eq!(app.get("/v1/agents").await.status(), 200);
    }
    assert_eq!(first.get("/v1/agents").await.status(), 429);
    assert_eq!(second.get("/v1/agents").await.status(), 429);
}

#[tokio::test]
async fn writes_are_limited_per_key() {
    let app =
        app_with_limits(&[("RATE_LIMIT_WRITE_CAPACITY", "3"), ("RATE_LIMIT_WRITE_REFILL_PER_MIN", "1")], None).await;
    let (agent, other) = (app.register_agent(json!({})).await, app.register_agent(json!({})).await);
    for price in ["1", "2", "3"] {
        let response = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": price})).await;
        assert_eq!(response.status(), 200);
    }
    let limited = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": "4"})).await;
    assert_eq!(limited.status(), 429, "three updates spent this key's three tokens");
    assert!(limited.headers().contains_key("retry-after"));
    let policy = limited.headers()["ratelimit-policy"].to_str().unwrap();
    assert!(policy.starts_with("\"write\";q=3;"), "the bucket that refused, not the address's: {policy}");
    let response = app.signed(&other.signer, Method::PATCH, &other.path(), &json!({"price": "5"})).await;
    assert_eq!(response.status(), 200, "another key has its own bucket");
}

#[tokio::test]
async fn writes_are_limited_per_address_before_their_signature_is_checked() {
    let app =
        app_with_limits(&[("RATE_LIMIT_WRITE_IP_CAPACITY", "2"), ("RATE_LIMIT_WRITE_IP_REFILL_PER_MIN", "1")], None)
            .await;
    // Forged: nothing about them verifies, and every route counts, so a flood costs no verification.
    let forged = |address: &'static str, path: &'static str| {
        app.http
            .post(app.url(path))
            .header("x-forwarded-for", address)
            .header("content-type", "application/json")
            .header("signature-input", r#"sig1=("@method");created=1;keyid="agt_00000000000000000000000000000000""#)
            .header("signature", "sig1=:AAAA:")
            .body("{}")
            .send()
    };
    assert_eq!(forged("198.51.100.7", "/v1/jobs").await.unwrap().status(), 401);
    assert_eq!(forged("198.51.100.7", "/v1/clients").await.unwrap().status(), 401);
    let limited = forged("198.51.100.7", "/v1/agents").await.unwrap();
    assert_eq!(limited.status(), 429, "the address's third write, before any signature check");
    assert_eq!(limited.headers()["ratelimit-policy"], "\"write_ip\";q=2;w=120");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(forged("198.51.100.8", "/v1/jobs").await.unwrap().status(), 401, "another address has its own bucket");
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64() {
    let app =
        app_with_limits(&[("RATE_LIMIT_READ_CAPACITY", "1"), ("RATE_LIMIT_READ_REFILL_PER_MIN", "1")], None).await;
    let read = |address: &'static str| {
        app.http
            .get(app.url("/v1/agents/agt_00000000000000000000000000000000"))
            .header("x-forwarded-for", address)
            .send()
    };
    assert_eq!(read("2001:db8:1:2::1").await.unwrap().status(), 404);
    assert_eq!(read("2001:db8:1:2:8a2e:370:7334:9").await.unwrap().status(), 429, "same /64, same bucket");
    assert_eq!(read("2001:db8:1:3::1").await.unwrap().status(), 404, "the next /64 is another subscriber");
}

/// Everything the API keeps in Redis expires, so nothing there grows with
/// traffic beyond what arrives within a window: a nonce after `NONCE_TTL`
/// (60 s), a bucket once it would be full again (at most capacity ÷ refill,
/// 3 min with the defaults, and a second).
#[tokio::test]
async fn every_key_the_api_keeps_in_redis_expires() {
    let app = app_with_limits(&[], None).await;
    for _ in 0..3 {
        app.register_agent(json!({})).await;
    }
    assert_eq!(app.get("/v1/agents").await.status(), 200);
    assert_eq!(app.get("/v1/agents/agt_00000000000000000000000000000000").await.status(), 404);

    let keys = app.redis_keys().await;
    for kind in ["nonce:", "ratelimit:discovery:", "ratelimit:read:", "ratelimit:write"] {
        assert!(keys.iter().any(|(key, _)| key.contains(kind)), "no {kind} key in {keys:?}");
    }
    for (key, ttl_ms) in &keys {
        assert!((1..=181_000).contains(ttl_ms), "{key} lives {ttl_ms} ms");
    }
}
