//! Private receipts: what anyone reads about an agent's jobs names none of
//! its clients and none of their ratings; the job's two parties read the
//! full receipt, whose salt and client id a client reveals to prove it was
//! the buyer (checked by joserfc and a plain SHA-256, independently of the
//! API); nobody else reads it; receipts issued before they were private are
//! made private, once, and keep verifying.

use api::features::receipts::legacy;
use api::http::platform_keys::PlatformKeys;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::domain::JobId;
use shared::platform_key::PlatformSigningKey;
use tests::{
    Method, RequestSigner, TestAgent, TestApp, TestKey, expect_status, spawn_app, spawn_app_with, verify_signed,
};

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

async fn full_receipt(app: &TestApp, signer: &RequestSigner, job: &Value) -> reqwest::Response {
    app.signed(signer, Method::GET, &format!("/v1/jobs/{}/receipt", id(job)), &Value::Null).await
}

async fn rate(app: &TestApp, client: &RequestSigner, job: &Value, body: Value) {
    expect_status(app.signed(client, Method::POST, &format!("/v1/jobs/{}/rating", id(job)), &body).await, 201).await;
}

async fn listed(app: &TestApp, agent: &TestAgent) -> Value {
    expect_status(app.get(&format!("{}/receipts", agent.path())).await, 200).await
}

async fn jwks(app: &TestApp) -> Value {
    expect_status(app.get("/.well-known/jwks.json").await, 200).await
}

/// The receipt's claims, verified by joserfc against the key set.
fn verified(jwks: &Value, receipt: &Value) -> Value {
    verify_signed("receipts", &json!({"jwks": jwks, "receipt": receipt})).expect("the receipt verifies")
}

/// What a third party checks: the public receipt verifies and commits to this client under this salt.
fn buyer(jwks: &Value, public: &Value, client_id: &Value, client_salt: &Value) -> Result<Value, String> {
    verify_signed(
        "buyer",
        &json!({"jwks": jwks, "receipt": public, "client_id": client_id, "client_salt": client_salt}),
    )
}

/// A receipt's claims, not verified: what anyone reading it sees.
fn claims(receipt: &Value) -> Value {
    let payload = receipt.as_str().unwrap().split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// SHA-256 of the salt's bytes, then the client id, as docs/API.md defines it.
fn commitment(client_salt: &str, client_id: &str) -> String {
    let mut input: Vec<u8> =
        (0..client_salt.len()).step_by(2).map(|at| u8::from_str_radix(&client_salt[at..at + 2], 16).unwrap()).collect();
    assert_eq!(input.len(), 32, "a 32-byte salt");
    input.extend_from_slice(client_id.as_bytes());
    format!("{:x}", Sha256::digest(&input))
}

#[tokio::test]
async fn the_public_receipt_of_a_rated_job_names_neither_its_client_nor_its_rating() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    let job = app.completed_job(&client, &agent, &json!({"text": "done"})).await;
    let before = listed(&app, &agent).await;
    rate(&app, &client, &job, json!({"score": 2, "comment": "Slow."})).await;
    let after = listed(&app, &agent).await;
    assert_eq!(before, after, "a rating changes nothing public about the receipt, not even when it was signed");

    let public = &after["receipts"][0]["receipt"];
    let stated = verified(&jwks(&app).await, public);
    assert_eq!((&stated["form"], &stated["job_id"]), (&json!("public"), &job["id"]));
    for name in ["client_id", "rating", "client_salt"] {
        assert!(stated.get(name).is_none(), "{name} in the public receipt: {stated}");
    }
    assert_eq!(stated["client_commitment"].as_str().map(str::len), Some(64), "{stated}");

    // Everything anyone reads about the agent, receipts decoded: the client is named nowhere.
    let mut public_reads = String::new();
    for path in [
        agent.path(),
        format!("{}/ratings", agent.path()),
        format!("{}/receipts", agent.path()),
        format!("{}/agent-card.json", agent.path()),
        "/v1/agents".to_owned(),
    ] {
        public_reads.push_str(&app.get(&path).await.text().await.unwrap());
    }
    for receipt in after["receipts"].as_array().unwrap() {
        public_reads.push_str(&claims(&receipt["receipt"]).to_string());
    }
    assert!(public_reads.contains("Slow."), "the rating itself is public");
    let client_id = id(&registered);
    let hex = client_id.strip_prefix("cli_").unwrap();
    let hyphenated = uuid::Uuid::parse_str(hex).unwrap().hyphenated().to_string();
    for name in [hex, hyphenated.as_str()] {
        assert!(!public_reads.contains(name), "the client {client_id} is named in a public read: {public_reads}");
    }
}

#[tokio::test]
async fn the_parties_read_the_full_receipt_whose_salt_proves_the_buyer_and_nobody_else_does() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let other_agent = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    let (stranger, stranger_registered) = app.register_client().await;
    let job = app.completed_job(&client, &agent, &json!({"text": "done"})).await;
    rate(&app, &client, &job, json!({"score": 5})).await;
    let keys = jwks(&app).await;

    let full = expect_status(full_receipt(&app, &client, &job).await, 200).await;
    assert_eq!(expect_status(full_receipt(&app, &agent.signer, &job).await, 200).await, full, "both parties read it");
    let stated = verified(&keys, &full["receipt"]);
    assert_eq!(
        (&stated["form"], &stated["client_id"], &stated["rating"]),
        (&json!("full"), &registered["id"], &json!(5))
    );
    let salt = stated["client_salt"].as_str().unwrap();
    assert_eq!(stated["client_commitment"], commitment(salt, id(&registered)), "the commitment as documented");

    // The public receipt the parties get is the listed one, and commits to the same client.
    assert_eq!(listed(&app, &agent).await["receipts"][0]["receipt"], full["public_receipt"]);
    let public = verified(&keys, &full["public_receipt"]);
    assert_eq!((&public["client_commitment"], &public["job_id"]), (&stated["client_commitment"], &job["id"]));

    // The client proves to a third party that it bought the job; nobody else can claim it.
    let proven = buyer(&keys, &full["public_receipt"], &registered["id"], &stated["client_salt"]).unwrap();
    assert_eq!(proven["job_id"], job["id"]);
    let error = buyer(&keys, &full["public_receipt"], &stranger_registered["id"], &stated["client_salt"]).unwrap_err();
    assert!(error.contains("do not match"), "{error}");
    let other_salt = json!("00".repeat(32));
    buyer(&keys, &full["public_receipt"], &registered["id"], &other_salt).expect_err("another salt proves nothing");
    buyer(&keys, &full["receipt"], &registered["id"], &stated["client_salt"])
        .expect_err("a full receipt is not public");

    // Third parties cannot read the full receipt.
    expect_status(full_receipt(&app, &stranger, &job).await, 404).await;
    expect_status(full_receipt(&app, &other_agent.signer, &job).await, 404).await;
    expect_status(app.get(&format!("/v1/jobs/{}/receipt", id(&job))).await, 401).await;
}

#[tokio::test]
async fn receipts_issued_before_they_were_private_are_made_private_once_and_still_verify() {
    let seed = TestKey::generate().seed;
    let app = spawn_app_with(|source, _| source.set("PLATFORM_SIGNING_KEY", STANDARD.encode(seed))).await;
    let keys = PlatformKeys::new(Some(&PlatformSigningKey::from_seed(seed)), None).unwrap();
    let agent = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    let rated = app.completed_job(&client, &agent, &json!({"n": 1})).await;
    let unrated = app.completed_job(&client, &agent, &json!({"n": 2})).await;
    // As an older revision stored them: one receipt naming the client (and the rating), no public form.
    for (job, rating) in [(&rated, Some(4)), (&unrated, None)] {
        let mut old = json!({
            "job_id": job["id"], "agent_id": job["agent_id"], "client_id": job["client_id"], "status": "completed",
            "price": job["price"], "fee": job["fee"], "created_at": job["created_at"],
            "finished_at": job["updated_at"], "result_sha256": "00", "iat": 1_700_000_000,
        });
        if let Some(rating) = rating {
            old["rating"] = json!(rating);
        }
        sqlx::query(
            "UPDATE job_receipts SET jws = $2, client_salt = NULL, public_jws = NULL, public_issued_at = NULL
             WHERE job_id = $1",
        )
        .bind(id(job).parse::<JobId>().unwrap().as_uuid())
        .bind(keys.sign_claims(&old).unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    }
    assert_eq!(listed(&app, &agent).await["receipts"], json!([]), "not listed while they name the client");

    // A party's read makes its job's receipt private on the spot.
    let full = expect_status(full_receipt(&app, &client, &unrated).await, 200).await;
    let listing = listed(&app, &agent).await;
    assert_eq!(listing["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(listing["receipts"][0]["receipt"], full["public_receipt"]);

    // The maintenance pass the rest, once.
    assert_eq!(legacy::make_private(&app.db, &keys, usize::MAX).await.unwrap(), 1);
    assert_eq!(legacy::make_private(&app.db, &keys, usize::MAX).await.unwrap(), 0, "idempotent");
    let jwks = jwks(&app).await;
    let listing = listed(&app, &agent).await;
    assert_eq!(listing["receipts"].as_array().unwrap().len(), 2);
    for public in listing["receipts"].as_array().unwrap() {
        let stated = verified(&jwks, &public["receipt"]);
        assert!(stated.get("client_id").is_none() && stated.get("rating").is_none(), "{stated}");
        assert_eq!(stated["result_sha256"], "00", "the old receipt's claims carry over");
    }
    let full = expect_status(full_receipt(&app, &client, &rated).await, 200).await;
    let stated = verified(&jwks, &full["receipt"]);
    assert_eq!(
        (&stated["form"], &stated["client_id"], &stated["rating"]),
        (&json!("full"), &registered["id"], &json!(4))
    );
    buyer(&jwks, &full["public_receipt"], &registered["id"], &stated["client_salt"]).expect("the buyer proves it");

    // Rating after the change re-signs only the full receipt.
    let public_before =
        full_receipt(&app, &client, &unrated).await.json::<Value>().await.unwrap()["public_receipt"].clone();
    rate(&app, &client, &unrated, json!({"score": 3})).await;
    let now = expect_status(full_receipt(&app, &client, &unrated).await, 200).await;
    assert_eq!(now["public_receipt"], public_before);
    assert_eq!(verified(&jwks, &now["receipt"])["rating"], 3);
}
