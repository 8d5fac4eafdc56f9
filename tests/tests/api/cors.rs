//! Browser apps: CORS for the origins in `CORS_ALLOWED_ORIGINS`, none otherwise.

use reqwest::Method;
use tests::{TestApp, spawn_app, spawn_app_with};

const APP: &str = "https://app.example.com";

async fn spawn_with_origins() -> TestApp {
    spawn_app_with(|source, _| source.set("CORS_ALLOWED_ORIGINS", format!("{APP},http://localhost:5173"))).await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url("/v1/jobs"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, signature, signature-input, content-digest, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map(|value| value.to_str().unwrap().to_ascii_lowercase()).unwrap_or_default()
}

#[tokio::test]
async fn a_listed_origin_may_send_signed_writes() {
    let app = spawn_with_origins().await;
    let response = preflight(&app, APP).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), APP);
    let methods = header(&response, "access-control-allow-methods");
    for method in ["get", "post", "patch", "delete"] {
        assert!(methods.contains(method), "{method} in {methods}");
    }
    let headers = header(&response, "access-control-allow-headers");
    for name in ["content-type", "signature", "signature-input", "content-digest", "idempotency-key"] {
        assert!(headers.contains(name), "{name} in {headers}");
    }
    assert!(header(&response, "access-control-max-age").parse::<u64>().unwrap() > 0);
    assert!(header(&response, "vary").contains("origin"), "caches keep origins apart");
}

#[tokio::test]
async fn an_unlisted_origin_is_not_allowed() {
    let app = spawn_with_origins().await;
    let response = preflight(&app, "https://evil.example.com").await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let response =
        app.http.get(app.url("/v1/agents")).header("origin", "https://evil.example.com").send().await.unwrap();
    assert_eq!(response.status(), 200, "the request itself is not refused; the browser hides the answer");
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_simple_read_from_a_listed_origin_exposes_the_rate_limit_headers() {
    let app = spawn_with_origins().await;
    let response = app.http.get(app.url("/v1/agents")).header("origin", "http://localhost:5173").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), "http://localhost:5173");
    let exposed = header(&response, "access-control-expose-headers");
    for name in ["ratelimit", "ratelimit-policy", "retry-after", "idempotent-replayed"] {
        assert!(exposed.split(',').any(|exposed| exposed.trim() == name), "{name} in {exposed}");
    }
    assert!(response.headers().contains_key("ratelimit"), "and the API does send them");
}

#[tokio::test]
async fn without_origins_there_are_no_cors_headers_at_all() {
    let app = spawn_app().await;
    let response = preflight(&app, APP).await;
    let read = app.http.get(app.url("/v1/agents")).header("origin", APP).send().await.unwrap();
    for response in [&response, &read] {
        let cors: Vec<_> =
            response.headers().keys().filter(|name| name.as_str().starts_with("access-control-")).collect();
        assert!(cors.is_empty(), "{cors:?}");
    }
}
