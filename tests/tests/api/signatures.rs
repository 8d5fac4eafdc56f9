//! Signed requests: what an independent RFC 9421 implementation signs is
//! accepted, and each kind of tampering or staleness is refused with its
//! own 401 problem.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shared::signing::{IDEMPOTENCY_KEY, SignOptions};
use tests::{Method, TestAgent, TestApp, TestKey, eventually, spawn_app, spawn_app_behind_redis_proxy};

/// Headers from the published Python library (`tests/scripts/sign_request.py`).
fn python_signature(method: &str, url: &str, keyid: &str, key: &TestKey, body: &[u8]) -> Vec<(String, String)> {
    python_signature_with(method, url, keyid, key, body, &[])
}

/// As [`python_signature`], with more arguments for the script (e.g. `--idempotency-key`).
fn python_signature_with(
    method: &str,
    url: &str,
    keyid: &str,
    key: &TestKey,
    body: &[u8],
    extra: &[&str],
) -> Vec<(String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sign_request.py");
    let seed: String = key.seed.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut child = Command::new("python3")
        .args([script, "--seed", &seed, "--keyid", keyid])
        .args(extra)
        .args([method, url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "sign_request.py failed (run the tests with `cargo xtask test`, which provides the Python tools): {}",
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

    // A job with an Idempotency-Key, which the Python signer covers.
    let agent = app.register_agent(json!({})).await;
    let client_key = TestKey::generate();
    let registration = json!({"name": "Python client", "public_key": client_key.public_key});
    let registered = app.signed(&client_key.registration_signer(), Method::POST, "/v1/clients", &registration).await;
    let client_id = registered.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let body = serde_json::to_vec(&json!({"agent_id": agent.registered["id"], "input": {}, "price": "5"})).unwrap();
    let extra = ["--idempotency-key", "py-order-1"];
    let headers = python_signature_with("POST", &app.url("/v1/jobs"), &client_id, &client_key, &body, &extra);
    assert!(headers.iter().any(|(name, value)| name == "Signature-Input" && value.contains("\"idempotency-key\"")));
    let created = send(&app, Method::POST, "/v1/jobs", &headers, body).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
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
async fn an_unknown_keyid_and_a_wrong_signature_get_the_same_answer() {
    let app = spawn_app().await;
    let (agent, body) = agent_and_patch(&app).await;
    let url = app.url(&agent.path());
    let stranger = TestKey::generate();

    let mut answers = Vec::new();
    for keyid in ["agt_00000000000000000000000000000000", agent.registered["id"].as_str().unwrap(), "no-such-key"] {
        let headers = stranger.signer(keyid).sign("PATCH", &url, &body).await.unwrap();
        let response = send(&app, Method::PATCH, &agent.path(), &headers, body.clone()).await;
        let status = response.status();
        let content_type = response.headers()["content-type"].clone();
        answers.push((status, content_type, response.bytes().await.unwrap()));
    }
    assert_eq!(answers[0].0, 401);
    let problem: Value = serde_json::from_slice(&answers[0].2).unwrap();
    assert_eq!(problem["type"], "urn:agent-registry:problem:signature-invalid");
    assert_eq!(answers[0], answers[1], "unknown keyid and wrong signature: same status, type and body");
    assert_eq!(answers[0], answers[2], "and a keyid that names nothing");
}

#[tokio::test]
async fn an_idempotency_key_the_signature_does_not_cover_is_refused() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let url = app.url("/v1/jobs");
    let body = serde_json::to_vec(&json!({"agent_id": agent.registered["id"], "input": {}, "price": "5"})).unwrap();
    let with_key = |headers: Vec<(String, String)>| {
        let mut headers = headers;
        headers.push(("idempotency-key".into(), "order-1".into()));
        headers
    };

    // Signed without the key, which an intermediary could have stripped from a retry.
    let uncovered = with_key(client.sign("POST", &url, &body).await.unwrap());
    let refused = send(&app, Method::POST, "/v1/jobs", &uncovered, body.clone()).await;
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:agent-registry:problem:signature-incomplete");
    assert!(problem["detail"].as_str().unwrap().contains("idempotency-key"), "{problem}");

    // Signed with it, then stripped on the way.
    let options = SignOptions { headers: &[(IDEMPOTENCY_KEY, "order-1")], ..SignOptions::default() };
    let covered = client.sign_with("POST", &url, &body, &options).await.unwrap();
    let stripped: Vec<_> = covered.iter().filter(|(name, _)| name != IDEMPOTENCY_KEY).cloned().collect();
    assert_refused(send(&app, Method::POST, "/v1/jobs", &stripped, body.clone()).await, 401, "signature-malformed")
        .await;
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&app.db).await.unwrap();
    assert_eq!(jobs, 0, "nothing refused made a job");

    let accepted = send(&app, Method::POST, "/v1/jobs", &covered, body).await;
    assert_eq!(accepted.status(), 201, "covered and sent: accepted");
}

#[tokio::test]
async fn a_signature_past_its_expires_time_is_refused() {
    let app = spawn_app().await;
    let (agent, body) = agent_and_patch(&app).await;
    let url = app.url(&agent.path());

    let lapsed = SignOptions { expires: Some(now() - 1), ..SignOptions::default() };
    let headers = agent.signer.sign_with("PATCH", &url, &body, &lapsed).await.unwrap();
    assert!(headers.iter().any(|(name, value)| name == "signature-input" && value.contains(";expires=")));
    assert_refused(send(&app, Method::PATCH, &agent.path(), &headers, body.clone()).await, 401, "signature-expired")
        .await;

    let later = SignOptions { expires: Some(now() + 60), ..SignOptions::default() };
    let headers = agent.signer.sign_with("PATCH", &url, &body, &later).await.unwrap();
    assert_eq!(send(&app, Method::PATCH, &agent.path(), &headers, body).await.status(), 200);
}

#[tokio::test]
async fn signed_writes_fail_closed_without_redis() {
    let (proxy, app) = spawn_app_behind_redis_proxy().await;
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
