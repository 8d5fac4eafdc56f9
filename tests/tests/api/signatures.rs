//! Signed requests: what an independent RFC 9421 implementation signs is
//! accepted, and each kind of tampering or staleness is refused with its
//! own 401 problem.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shared::signing::RequestSigner;
use tests::{Method, TcpProxy, TestAgent, TestApp, TestKey, eventually, redis_url, spawn_app, spawn_app_with};

/// Headers from the published Python library (`tests/scripts/sign_request.py`).
fn python_signature(method: &str, url: &str, keyid: &str, key: &TestKey, body: &[u8]) -> Vec<(String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sign_request.py");
    let seed: String = key.seed.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut child = Command::new("python3")
        .args([script, "--seed", &seed, "--keyid", keyid, method, url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "sign_request.py failed (pip install -r tests/scripts/requirements.txt): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    headers.into_iter().map(|(name, value)| (name, value.as_str().unwrap().to_owned())).collect()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path)).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(body).send().await.unwrap()
}

async fn assert_refused(response: reqwest::Response, status: u16, problem: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:agent-registry:problem:{problem}"), "{body}");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_request_signed_by_an_independent_implementation_is_accepted() {
    let app = spawn_app().await;
    let key = TestKey::generate();
    let body = serde_json::to_vec(&key.registration(json!({"name": "Signed in Python"}))).unwrap();
    let url = app.url("/v1/agents");
    let headers = python_signature("POST", &url, &key.public_key, &key, &body);
    let response = send(&app, Method::POST, "/v1/agents", &headers, body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    // And a bodiless write, signed as the agent it now is.
    let agent: Value = app.get("/v1/agents?q=python").await.json().await.unwrap();
    let path = format!("/v1/agents/{}", agent["agents"][0]["id"].as_str().unwrap());
    let keyid = agent["agents"][0]["id"].as_str().unwrap();
    let headers = python_signature("DELETE", &app.url(&path), keyid, &key, b"");
    assert_eq!(send(&app, Method::DELETE, &path, &headers, Vec::new()).await.status(), 204);
}

async fn agent_and_patch(app: &TestApp) -> (TestAgent, Vec<u8>) {
    (app.register_agent(json!({})).await, serde_json::to_vec(&json!({"price": "1"})).unwrap())
}

#[tokio::test]
async fn tampering_with_method_path_query_body_or_digest_is_refused() {
    let app = spawn_app().await;
    let (agent, body) = agent_and_patch(&app).await;
    let other = app.register_agent(json!({})).await;
    let url = app.url(&agent.path());
    let sign = |method: &'static str, url: String, body: Vec<u8>| {
        let signer = &agent.signer;
        async move { signer.sign(method, &url, &body).await.unwrap() }
    };

    let headers = sign("DELETE", url.clone(), Vec::new()).await;
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, Vec::new()).await, 401, "signature-invalid")
        .await;

    let headers = sign("PATCH", app.url(&other.path()), body.clone()).await;
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, body.clone()).await, 401, "signature-invalid")
        .await;

    let headers = sign("PATCH", format!("{url}?dry=1"), body.clone()).await;
    let tampered_query = format!("{}?dry=0", agent.path());
    assert_refused(send(&app, Method::PATCH, &tampered_query, &headers, body.clone()).await, 401, "signature-invalid")
        .await;

    let headers = sign("PATCH", url.clone(), body.clone()).await;
    let other_body = serde_json::to_vec(&json!({"price": "0"})).unwrap();
    assert_refused(
        send(&app, Method::PATCH, &agent.path(), &headers, other_body.clone()).await,
        401,
        "digest-mismatch",
    )
    .await;

    // A digest that matches the new body no longer matches the signature.
    let honest = sign("PATCH", url.clone(), other_body.clone()).await;
    let digest = honest.iter().find(|(name, _)| name == "content-digest").unwrap().clone();
    let headers: Vec<_> =
        headers.into_iter().map(|h| if h.0 == "content-digest" { digest.clone() } else { h }).collect();
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, other_body).await, 401, "signature-invalid")
        .await;

    let fetched: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(fetched["price"], "12.5", "nothing tampered went through");
}

#[tokio::test]
async fn stale_future_replayed_and_unsigned_requests_are_refused() {
    let app = spawn_app().await;
    let (agent, body) = agent_and_patch(&app).await;
    let url = app.url(&agent.path());

    let old = agent.signer.sign_at("PATCH", &url, &body, now() - 31, "n-old").await.unwrap();
    assert_refused(send(&app, Method::PATCH, &agent.path(), &old, body.clone()).await, 401, "signature-expired").await;

    let future = agent.signer.sign_at("PATCH", &url, &body, now() + 60, "n-future").await.unwrap();
    assert_refused(send(&app, Method::PATCH, &agent.path(), &future, body.clone()).await, 401, "signature-from-future")
        .await;

    let once = agent.signer.sign("PATCH", &url, &body).await.unwrap();
    assert_eq!(send(&app, Method::PATCH, &agent.path(), &once, body.clone()).await.status(), 200);
    assert_refused(send(&app, Method::PATCH, &agent.path(), &once, body.clone()).await, 401, "nonce-replayed").await;

    assert_refused(send(&app, Method::PATCH, &agent.path(), &[], body).await, 401, "signature-missing").await;
}

#[tokio::test]
async fn unknown_and_wrong_keys_are_refused() {
    let app = spawn_app().await;
    let (agent, body) = agent_and_patch(&app).await;
    let url = app.url(&agent.path());
    let stranger = TestKey::generate();

    let unknown = stranger.signer("agt_00000000000000000000000000000000");
    let headers = unknown.sign("PATCH", &url, &body).await.unwrap();
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, body.clone()).await, 401, "unknown-key").await;

    let keyid = agent.registered["id"].as_str().unwrap();
    let wrong: RequestSigner = stranger.signer(keyid);
    let headers = wrong.sign("PATCH", &url, &body).await.unwrap();
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, body).await, 401, "signature-invalid").await;
}

#[tokio::test]
async fn signed_writes_fail_closed_without_redis() {
    let redis = reqwest::Url::parse(&redis_url()).unwrap();
    let proxy = TcpProxy::start(format!("{}:{}", redis.host_str().unwrap(), redis.port().unwrap_or(6379))).await;
    let proxied = format!("redis://127.0.0.1:{}/0", proxy.port());
    let app = spawn_app_with(|source, _| source.set("REDIS_URL", proxied)).await;
    let (agent, body) = agent_and_patch(&app).await;

    proxy.cut();
    let refused = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": "1"})).await;
    assert_eq!(refused.status(), 503, "no nonce check, no write");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(app.get(&agent.path()).await.status(), 200, "reads go on without Redis");

    proxy.restore();
    let url = app.url(&agent.path());
    assert!(
        eventually(15, || async {
            let headers = agent.signer.sign("PATCH", &url, &body).await.unwrap();
            send(&app, Method::PATCH, &agent.path(), &headers, body.clone()).await.status() == 200
        })
        .await,
        "writes resume when Redis is back"
    );
}
