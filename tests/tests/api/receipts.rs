//! Job receipts: a job that completes or fails gets a receipt signed with the
//! platform key, which an independent JOSE library (joserfc) verifies against
//! `/.well-known/jwks.json`; its `result_sha256` is the job's result's; any
//! change breaks it; rating signs the full receipt again with the score;
//! anyone pages through an agent's public receipts; and a key rotation keeps
//! old receipts verifiable while the previous key is published. What the
//! public form hides is `receipt_privacy`'s.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::platform_key::PlatformSigningKey;
use tests::{Method, RequestSigner, TestApp, TestKey, expect_status, spawn_app, spawn_app_with, verify_signed};

async fn receipt(app: &TestApp, signer: &RequestSigner, job: &Value) -> reqwest::Response {
    app.signed(signer, Method::GET, &format!("/v1/jobs/{}/receipt", job["id"].as_str().unwrap()), &Value::Null).await
}

async fn jwks(app: &TestApp) -> Value {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    expect_status(response, 200).await
}

fn verify(jwks: &Value, receipt: &str) -> Result<Value, String> {
    verify_signed("receipts", &json!({"jwks": jwks, "receipt": receipt}))
}

/// The receipt with its payload's `name` claim set to `value`, signature kept.
fn tampered(receipt: &str, name: &str, value: Value) -> String {
    let parts: Vec<&str> = receipt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims[name] = value;
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}

fn kid(receipt: &str) -> String {
    let header = receipt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_finished_job_has_a_receipt_that_verifies_and_breaks_when_changed() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let (stranger, _) = app.register_client().await;
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "one key before any rotation: {keys}");
    assert_eq!((keys["keys"][0]["kty"].as_str(), keys["keys"][0]["crv"].as_str()), (Some("OKP"), Some("Ed25519")));

    let pending = app.hire(&client, &agent).await;
    let problem = expect_status(receipt(&app, &client, &pending).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("pending"), "{problem}");

    // Keys out of order and a non-ASCII string: the hash is over the RFC 8785 form.
    let result = json!({"text": "Grüße", "pages": [1, 2], "done": true});
    let job = app.completed_job(&client, &agent, &result).await;
    expect_status(receipt(&app, &stranger, &job).await, 404).await;
    let by_agent = expect_status(receipt(&app, &agent.signer, &job).await, 200).await;
    let served = expect_status(receipt(&app, &client, &job).await, 200).await;
    assert_eq!(by_agent, served, "both parties read the same receipt");
    assert_eq!((&served["job_id"], &served["agent_id"]), (&job["id"], &job["agent_id"]));
    let jws = served["receipt"].as_str().unwrap();

    let claims = verify(&keys, jws).expect("the receipt verifies with joserfc against the JWKS");
    assert_eq!(claims["form"], "full");
    for name in ["agent_id", "client_id", "status", "price", "fee", "created_at"] {
        assert_eq!(claims[name], job[name], "{name}");
    }
    assert_eq!(claims["job_id"], job["id"]);
    assert_eq!(claims["finished_at"], job["updated_at"]);
    assert_eq!((claims["status"].as_str(), claims["price"].as_str()), (Some("completed"), Some("10")));
    let canonical = r#"{"done":true,"pages":[1,2],"text":"Grüße"}"#;
    assert_eq!(claims["result_sha256"], format!("{:x}", Sha256::digest(canonical)));
    assert!(claims.get("rating").is_none(), "not rated yet: {claims}");

    for (name, value) in [("price", json!("1")), ("result_sha256", json!("00")), ("status", json!("failed"))] {
        let error = verify(&keys, &tampered(jws, name, value)).expect_err("a changed claim breaks the signature");
        assert!(error.contains("does not verify"), "{error}");
    }
    // A character well inside the signature (the last one has unused bits).
    let mut forged = jws.to_owned();
    let at = forged.len() - 10;
    let changed = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, changed);
    verify(&keys, &forged).expect_err("a changed signature does not verify");

    let public = verify(&keys, served["public_receipt"].as_str().unwrap()).expect("the public receipt verifies");
    for name in ["job_id", "agent_id", "status", "price", "fee", "created_at", "finished_at", "result_sha256"] {
        assert_eq!(public[name], claims[name], "{name}");
    }

    // Rated: the full receipt signed again, with the score; the public one unchanged.
    expect_status(
        app.signed(
            &client,
            Method::POST,
            &format!("/v1/jobs/{}/rating", job["id"].as_str().unwrap()),
            &json!({"score": 5}),
        )
        .await,
        201,
    )
    .await;
    let rated = expect_status(receipt(&app, &client, &job).await, 200).await;
    let claims = verify(&keys, rated["receipt"].as_str().unwrap()).unwrap();
    assert_eq!(claims["rating"], 5);
    assert_eq!(rated["public_receipt"], served["public_receipt"]);
    assert_eq!(claims["result_sha256"], format!("{:x}", Sha256::digest(canonical)));

    // A failed job's receipt says so and has no result hash.
    let failing = app.hire(&client, &agent).await;
    let path = format!("/v1/jobs/{}/fail", failing["id"].as_str().unwrap());
    expect_status(app.signed(&agent.signer, Method::POST, &path, &json!({"reason": "out of ink"})).await, 200).await;
    let failed = expect_status(receipt(&app, &client, &failing).await, 200).await;
    let claims = verify(&keys, failed["receipt"].as_str().unwrap()).unwrap();
    assert_eq!((claims["status"].as_str(), &claims["result_sha256"]), (Some("failed"), &Value::Null));
}

#[tokio::test]
async fn anyone_pages_through_an_agent_s_receipts_most_recent_first() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let mut jobs = Vec::new();
    for n in 0..3 {
        jobs.push(app.completed_job(&client, &agent, &json!({ "n": n })).await);
    }
    let path = format!("{}/receipts", agent.path());
    let first = expect_status(app.get(&format!("{path}?limit=2")).await, 200).await;
    let second =
        expect_status(app.get(&format!("{path}?cursor={}", first["next_cursor"].as_str().unwrap())).await, 200).await;
    assert_eq!(second["next_cursor"], Value::Null);
    let listed: Vec<&Value> =
        first["receipts"].as_array().unwrap().iter().chain(second["receipts"].as_array().unwrap()).collect();
    let ids: Vec<&Value> = listed.iter().map(|receipt| &receipt["job_id"]).collect();
    assert_eq!(ids, [&jobs[2]["id"], &jobs[1]["id"], &jobs[0]["id"]]);
    let keys = jwks(&app).await;
    for receipt in listed {
        let claims = verify(&keys, receipt["receipt"].as_str().unwrap()).expect("every listed receipt verifies");
        assert_eq!(claims["form"], "public");
    }

    let other = app.register_agent(json!({})).await;
    let empty = expect_status(app.get(&format!("{}/receipts", other.path())).await, 200).await;
    assert_eq!(empty, json!({"receipts": [], "next_cursor": null}));
    expect_status(app.get("/v1/agents/agt_00000000000000000000000000000000/receipts").await, 404).await;
    expect_status(app.get(&format!("{path}?cursor=garbage!")).await, 422).await;
    expect_status(app.get(&format!("{path}?limit=101")).await, 422).await;
}

#[tokio::test]
async fn old_receipts_verify_after_a_key_rotation_while_the_previous_key_is_published() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let before = app.completed_job(&client, &agent, &json!({"text": "before"})).await;
    let old = expect_status(receipt(&app, &client, &before).await, 200).await["receipt"].as_str().unwrap().to_owned();
    let old_kid = kid(&old);

    let new_key = PlatformSigningKey::from_seed(TestKey::generate().seed);
    let app = app
        .restart_with(|settings| {
            settings.platform_signing_key_previous = settings.platform_signing_key.replace(new_key);
        })
        .await;
    let keys = jwks(&app).await;
    let kids: Vec<&str> = keys["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2, "{keys}");
    assert_eq!(kids[1], old_kid, "the previous key is published after the new one");
    assert_eq!(verify(&keys, &old).unwrap()["job_id"], before["id"], "the old receipt still verifies");

    let after = app.completed_job(&client, &agent, &json!({"text": "after"})).await;
    let new = expect_status(receipt(&app, &client, &after).await, 200).await["receipt"].as_str().unwrap().to_owned();
    assert_eq!(kid(&new), kids[0], "the new key signs");
    verify(&keys, &new).expect("the new receipt verifies");

    // Once the previous key is withdrawn, what only it signed no longer verifies.
    let app = app.restart_with(|settings| settings.platform_signing_key_previous = None).await;
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    verify(&keys, &old).expect_err("no published key for the old receipt");
    verify(&keys, &new).expect("the new receipt still verifies");
}

#[tokio::test]
async fn the_receipt_listing_and_the_key_set_are_rate_limited_per_address() {
    let app = spawn_app_with(|source, _| {
        source.set("RATE_LIMIT_READ_CAPACITY", "2");
        source.set("RATE_LIMIT_READ_REFILL_PER_MIN", "1");
    })
    .await;
    let agent = app.register_agent(json!({})).await;
    let path = format!("{}/receipts", agent.path());
    expect_status(app.get(&path).await, 200).await;
    expect_status(app.get("/.well-known/jwks.json").await, 200).await;
    for path in [path.as_str(), "/.well-known/jwks.json"] {
        let limited = app.get(path).await;
        assert!(limited.headers().contains_key("retry-after"));
        expect_status(limited, 429).await;
    }
}
