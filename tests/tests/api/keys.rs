//! Signing keys: rotation (with proof of possession) and deactivation take
//! effect at once on the instance that answers and within the cache bound on
//! every other; meanwhile, no write (every signed write of the OpenAPI
//! document) applies with the replaced key, even where it is still trusted;
//! unknown keyids are remembered briefly; a keyid is one key however it is
//! spelled.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api::http::known_keys::{KNOWN_KEY_TTL, UNKNOWN_KEY_TTL};
use serde_json::{Value, json};
use tests::{Method, RequestSigner, TestApp, TestKey, expect_status, signed_at, spawn_app};

use crate::agent_cards::{CardServer, a2a_card, app_reaching_loopback};

/// Polls the instance at `base_url` (a freshly signed GET each time) until
/// it answers `status`; how long that took, or `None`.
async fn until_status(
    base_url: &str,
    signer: &RequestSigner,
    path: &str,
    status: u16,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if signed_at(base_url, signer, Method::GET, path, &Value::Null).await.status() == status {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The most another instance may keep honouring a replaced key, with slack for a loaded machine.
fn bound() -> Duration {
    KNOWN_KEY_TTL + Duration::from_secs(2)
}

#[tokio::test]
async fn a_rotated_then_deactivated_client_key_stops_working_on_every_instance() {
    let app = spawn_app().await;
    let other = app.spawn_instance().await;
    let (old, client) = app.register_client().await;
    let id = client["id"].as_str().unwrap();
    let jobs = "/v1/jobs?role=client";
    assert_eq!(
        signed_at(&other.base_url, &old, Method::GET, jobs, &Value::Null).await.status(),
        200,
        "the other instance knows the key"
    );

    let new_key = TestKey::generate();
    let new = new_key.signer(id);
    let rotation = new_key.rotation_to(id, client["public_key"].as_str().unwrap());
    let rotated = app.signed(&old, Method::POST, &format!("/v1/clients/{id}/keys"), &rotation).await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.json::<Value>().await.unwrap(), json!({"id": id, "public_key": new_key.public_key}));

    let refused = app.signed(&old, Method::GET, jobs, &Value::Null).await;
    assert_eq!(refused.status(), 401, "the old key stops at once where it was rotated");
    assert_eq!(app.signed(&new, Method::GET, jobs, &Value::Null).await.status(), 200);
    let old_refused = until_status(&other.base_url, &old, jobs, 401, bound()).await;
    assert!(old_refused.is_some(), "the other instance refuses the old key within {:?}", bound());
    let new_accepted = until_status(&other.base_url, &new, jobs, 200, bound()).await;
    assert!(new_accepted.is_some(), "and accepts the new one");
    eprintln!("old key refused on the other instance after {old_refused:?}, new key accepted after {new_accepted:?}");

    let deactivated = app.signed(&new, Method::DELETE, &format!("/v1/clients/{id}"), &Value::Null).await;
    assert_eq!(deactivated.status(), 204);
    assert_eq!(app.signed(&new, Method::GET, jobs, &Value::Null).await.status(), 401, "deactivated at once here");
    let job = json!({"agent_id": "agt_00000000000000000000000000000000", "input": {}, "price": "1"});
    assert_eq!(app.signed(&new, Method::POST, "/v1/jobs", &job).await.status(), 401, "nothing can be signed");
    let gone = until_status(&other.base_url, &new, jobs, 401, bound()).await;
    assert!(gone.is_some(), "a deactivated client is refused on the other instance within {:?}", bound());
    eprintln!("deactivated client refused on the other instance after {gone:?}");
    let active: bool = sqlx::query_scalar("SELECT active FROM clients WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id[4..]).unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!active);
}

#[tokio::test]
async fn a_rotated_agent_key_is_refused_on_the_instance_that_did_not_rotate_it() {
    let app = spawn_app().await;
    let other = app.spawn_instance().await;
    let agent = app.register_agent(json!({})).await;
    let id = agent.registered["id"].as_str().unwrap();
    let deliveries = format!("{}/deliveries", agent.path());
    assert_eq!(app.signed(&agent.signer, Method::GET, &deliveries, &Value::Null).await.status(), 200);

    let new_key = TestKey::generate();
    let rotation = new_key.rotation_to(id, agent.registered["public_key"].as_str().unwrap());
    let rotated =
        signed_at(&other.base_url, &agent.signer, Method::POST, &format!("{}/keys", agent.path()), &rotation).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["public_key"], new_key.public_key.as_str(), "the answer is the agent with its new key");
    let public: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(public["public_key"], new_key.public_key.as_str());

    assert!(until_status(&app.base_url, &agent.signer, &deliveries, 401, bound()).await.is_some());
    assert!(until_status(&app.base_url, &new_key.signer(id), &deliveries, 200, bound()).await.is_some());
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'agent.key_rotated'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 1, "the rotation is an event");
}

#[tokio::test]
async fn a_rotation_needs_the_new_keys_proof_the_principals_own_key_and_a_free_key() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let id = agent.registered["id"].as_str().unwrap();
    let current = agent.registered["public_key"].as_str().unwrap();
    let keys = format!("{}/keys", agent.path());
    let new_key = TestKey::generate();

    let mut forged = new_key.rotation_to(id, current);
    forged["proof"] = TestKey::generate().rotation_to(id, current)["proof"].clone();
    let refused = app.signed(&agent.signer, Method::POST, &keys, &forged).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(refused.json::<Value>().await.unwrap()["errors"][0]["field"], "proof");

    let for_another_agent = new_key.rotation_to("agt_00000000000000000000000000000000", current);
    assert_eq!(app.signed(&agent.signer, Method::POST, &keys, &for_another_agent).await.status(), 422);

    let stranger_key = TestKey::generate();
    let registration = stranger_key.registration(json!({}));
    let registered = app.signed(&stranger_key.registration_signer(), Method::POST, "/v1/agents", &registration).await;
    let stranger = stranger_key.signer(registered.json::<Value>().await.unwrap()["id"].as_str().unwrap());
    let not_its_own = app.signed(&stranger, Method::POST, &keys, &new_key.rotation_to(id, current)).await;
    assert_eq!(not_its_own.status(), 403);

    let to_a_taken_key = app.signed(&agent.signer, Method::POST, &keys, &stranger_key.rotation_to(id, current)).await;
    assert_eq!(to_a_taken_key.status(), 409, "another agent holds that key");

    let unknown_field = json!({"public_key": new_key.public_key, "proof": forged["proof"], "extra": 1});
    assert_eq!(app.signed(&agent.signer, Method::POST, &keys, &unknown_field).await.status(), 422);

    let fetched: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(fetched["public_key"], current, "nothing refused changed the key");
}

#[tokio::test]
async fn a_deactivated_agent_can_sign_nothing() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    assert_eq!(app.signed(&agent.signer, Method::DELETE, &agent.path(), &Value::Null).await.status(), 204);
    for (method, path, body) in [
        (Method::DELETE, agent.path(), Value::Null),
        (Method::PATCH, agent.path(), json!({"price": "1"})),
        (Method::POST, format!("{}/heartbeat", agent.path()), Value::Null),
        (Method::GET, format!("{}/deliveries", agent.path()), Value::Null),
    ] {
        let response = app.signed(&agent.signer, method.clone(), &path, &body).await;
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}

#[tokio::test]
async fn case_variants_of_a_keyid_are_one_key_with_one_set_of_nonces() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let id = agent.registered["id"].as_str().unwrap();
    let shouted = format!("agt_{}", id[4..].to_uppercase());
    assert_ne!(shouted, id);
    let url = app.url(&format!("{}/deliveries", agent.path()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    let lower = agent.signer.sign_at("GET", &url, b"", now, "nonce-1").await.unwrap();
    let key = agent.signer.with_keyid(shouted);
    let upper = key.sign_at("GET", &url, b"", now, "nonce-1").await.unwrap();
    let send = |headers: Vec<(String, String)>| {
        let request = app.http.get(&url);
        async move { headers.into_iter().fold(request, |r, (n, v)| r.header(n, v)).send().await.unwrap() }
    };
    assert_eq!(send(lower).await.status(), 200);
    let replayed = send(upper).await;
    assert_eq!(replayed.status(), 401, "the nonce was used by the same key, spelled otherwise");
    let problem: Value = replayed.json().await.unwrap();
    assert_eq!(problem["type"], "urn:agent-registry:problem:nonce-replayed");
    let fresh = key.sign_at("GET", &url, b"", now, "nonce-2").await.unwrap();
    assert_eq!(send(fresh).await.status(), 200, "the upper-case spelling names the same key");
}

#[tokio::test]
async fn a_keyid_with_no_active_key_is_remembered_for_a_moment() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let id = uuid::Uuid::parse_str(&agent.registered["id"].as_str().unwrap()[4..]).unwrap();
    let deliveries = format!("{}/deliveries", agent.path());
    let set_active = |active: bool| {
        sqlx::query("UPDATE agents SET active = $2 WHERE id = $1").bind(id).bind(active).execute(&app.db)
    };

    // Changed behind the API's back, so no instance forgets anything.
    set_active(false).await.unwrap();
    assert_eq!(app.signed(&agent.signer, Method::GET, &deliveries, &Value::Null).await.status(), 401);
    set_active(true).await.unwrap();
    let start = Instant::now();
    assert_eq!(
        app.signed(&agent.signer, Method::GET, &deliveries, &Value::Null).await.status(),
        401,
        "refused from memory, without asking Postgres again"
    );
    let back = until_status(&app.base_url, &agent.signer, &deliveries, 200, UNKNOWN_KEY_TTL * 3).await;
    let back = back.map(|_| start.elapsed()).expect("the keyid is looked up again after a moment");
    assert!(back >= UNKNOWN_KEY_TTL / 2, "remembered as unknown for a while, not just once: {back:?}");
}

/// Every signed write of the OpenAPI document (method and path template),
/// but the two registrations, which a new key signs.
async fn owner_writes(app: &TestApp) -> BTreeSet<(String, String)> {
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut writes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let signed = operation["security"].as_array().is_some_and(|security| !security.is_empty());
            if signed && method != "get" && !matches!(path.as_str(), "/v1/agents" | "/v1/clients") {
                writes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    writes
}

/// Who signs a write.
#[derive(Clone, Copy)]
enum Party {
    Agent,
    Client,
}

/// One attempt: fresh principals, their keys rotated through `app` right
/// after `other` looked them up, then every owner write sent to `other`
/// with the replaced keys, each asserted refused as an unknown key is.
/// `false` when `other` had already dropped a replaced key by the end (the
/// machine was too slow for the cache bound), so the attempt proved nothing.
async fn refused_while_still_trusted(app: &TestApp, other: &str, cards: &CardServer) -> bool {
    let agent_key = TestKey::generate();
    let registration = agent_key.registration(json!({"agent_card_url": cards.url()}));
    let registered = app.signed(&agent_key.registration_signer(), Method::POST, "/v1/agents", &registration).await;
    let agent_id = expect_status(registered, 201).await["id"].as_str().unwrap().to_owned();
    let agent = agent_key.signer(&agent_id);
    let client_key = TestKey::generate();
    let body = json!({"name": "Acme Research", "public_key": client_key.public_key});
    let registered = app.signed(&client_key.registration_signer(), Method::POST, "/v1/clients", &body).await;
    let client_id = expect_status(registered, 201).await["id"].as_str().unwrap().to_owned();
    let client = client_key.signer(&client_id);
    let hire = json!({"agent_id": agent_id, "input": {"text": "Bonjour"}, "price": "10"});
    let job = expect_status(app.signed(&client, Method::POST, "/v1/jobs", &hire).await, 201).await;
    let job = job["id"].as_str().unwrap().to_owned();
    let deliveries = format!("/v1/agents/{agent_id}/deliveries");
    let listed = expect_status(app.signed(&agent, Method::GET, &deliveries, &Value::Null).await, 200).await;
    let delivery = listed["deliveries"][0]["id"].as_str().unwrap().to_owned();

    // The other instance looks both keys up (and keeps them for KNOWN_KEY_TTL); then both are rotated away.
    let client_jobs = "/v1/jobs?role=client";
    for (signer, path) in [(&agent, deliveries.as_str()), (&client, client_jobs)] {
        assert_eq!(signed_at(other, signer, Method::GET, path, &Value::Null).await.status(), 200);
    }
    let warmed = Instant::now();
    let agent_rotation = TestKey::generate().rotation_to(&agent_id, &agent_key.public_key);
    let keys = format!("/v1/agents/{agent_id}/keys");
    expect_status(app.signed(&agent, Method::POST, &keys, &agent_rotation).await, 200).await;
    let client_rotation = TestKey::generate().rotation_to(&client_id, &client_key.public_key);
    let keys = format!("/v1/clients/{client_id}/keys");
    expect_status(app.signed(&client, Method::POST, &keys, &client_rotation).await, 200).await;

    let since = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let recover = json!({"since": since});
    // Each write as it would apply: valid, by its own party, on its own things. Deactivations last.
    let writes: Vec<(&str, &str, Party, Value)> = vec![
        ("PATCH", "/v1/agents/{id}", Party::Agent, json!({"price": "1"})),
        (
            "POST",
            "/v1/agents/{id}/keys",
            Party::Agent,
            TestKey::generate().rotation_to(&agent_id, &agent_key.public_key),
        ),
        ("POST", "/v1/agents/{id}/webhook-secret", Party::Agent, json!({"grace_period_seconds": 0})),
        ("POST", "/v1/agents/{id}/endpoint/enable", Party::Agent, Value::Null),
        ("POST", "/v1/agents/{id}/heartbeat", Party::Agent, Value::Null),
        ("POST", "/v1/agents/{id}/agent-card/refresh", Party::Agent, Value::Null),
        ("POST", "/v1/agents/{id}/deliveries/recover", Party::Agent, recover.clone()),
        ("POST", "/v1/deliveries/{id}/resend", Party::Agent, Value::Null),
        ("POST", "/v1/jobs/{id}/accept", Party::Agent, Value::Null),
        ("POST", "/v1/jobs/{id}/complete", Party::Agent, json!({"result": {"text": "Hello"}})),
        ("POST", "/v1/jobs/{id}/fail", Party::Agent, json!({"reason": "out of stock"})),
        ("POST", "/v1/jobs", Party::Client, hire.clone()),
        ("POST", "/v1/jobs/{id}/cancel", Party::Client, Value::Null),
        ("POST", "/v1/jobs/{id}/rating", Party::Client, json!({"score": 5})),
        (
            "POST",
            "/v1/clients/{id}/keys",
            Party::Client,
            TestKey::generate().rotation_to(&client_id, &client_key.public_key),
        ),
        ("POST", "/v1/clients/{id}/deliveries/recover", Party::Client, recover),
        ("DELETE", "/v1/agents/{id}", Party::Agent, Value::Null),
        ("DELETE", "/v1/clients/{id}", Party::Client, Value::Null),
    ];
    let listed: BTreeSet<_> =
        writes.iter().map(|(method, path, ..)| ((*method).to_owned(), (*path).to_owned())).collect();
    assert_eq!(listed, owner_writes(app).await, "every owner write of the OpenAPI document is tried here");

    let unknown = TestKey::generate().signer("agt_00000000000000000000000000000000");
    let as_unknown = signed_at(
        other,
        &unknown,
        Method::PATCH,
        "/v1/agents/agt_00000000000000000000000000000000",
        &json!({"price": "1"}),
    )
    .await;
    let as_unknown = expect_status(as_unknown, 401).await;
    for (method, template, party, body) in &writes {
        let id = match (template.starts_with("/v1/jobs/"), template.starts_with("/v1/deliveries/"), party) {
            (true, ..) => &job,
            (_, true, _) => &delivery,
            (.., Party::Agent) => &agent_id,
            (.., Party::Client) => &client_id,
        };
        let path = template.replace("{id}", id);
        let signer = match party {
            Party::Agent => &agent,
            Party::Client => &client,
        };
        let method: Method = method.parse().unwrap();
        let refused = expect_status(signed_at(other, signer, method.clone(), &path, body).await, 401).await;
        for field in ["type", "title", "status", "detail"] {
            assert_eq!(refused[field], as_unknown[field], "{method} {path} is refused as an unknown key is: {refused}");
        }
    }

    // Still trusted there at the end: each refusal above came from the write's own check.
    let still_trusted = signed_at(other, &agent, Method::GET, &deliveries, &Value::Null).await.status() == 200
        && signed_at(other, &client, Method::GET, client_jobs, &Value::Null).await.status() == 200;
    eprintln!("writes with replaced keys refused {:?} after the other instance looked them up", warmed.elapsed());
    still_trusted
}

#[tokio::test]
async fn a_rotated_away_key_is_refused_on_every_owner_write_where_it_is_still_trusted() {
    let app = app_reaching_loopback().await;
    let other = app.spawn_instance().await;
    let cards = CardServer::start(a2a_card("Card Holder")).await;
    for _ in 0..3 {
        if refused_while_still_trusted(&app, &other.base_url, &cards).await {
            return;
        }
    }
    panic!("the other instance never kept a replaced key through the writes: too slow a machine to tell");
}

/// A write already checked against the key holds the principal's row until
/// it commits; a deactivation waits for it, so nothing the key signed
/// commits after the deactivation has answered.
#[tokio::test]
async fn a_deactivation_waits_for_the_writes_already_checked_against_the_key() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let id = agent.registered["id"].as_str().unwrap();
    let uuid: uuid::Uuid = id.trim_start_matches("agt_").parse().unwrap();
    // A write in flight: its check's lock, held.
    let mut in_flight = app.db.begin().await.unwrap();
    sqlx::query("SELECT FROM agents WHERE id = $1 FOR KEY SHARE").bind(uuid).execute(&mut *in_flight).await.unwrap();
    let (path, no_body) = (agent.path(), Value::Null);
    let deactivation = app.signed(&agent.signer, Method::DELETE, &path, &no_body);
    tokio::pin!(deactivation);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut deactivation).await;
    assert!(early.is_err(), "the deactivation answered while a checked write was in flight");
    in_flight.commit().await.unwrap();
    assert_eq!(deactivation.await.status(), 204);
}
