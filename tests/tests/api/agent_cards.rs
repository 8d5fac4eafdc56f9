//! A2A Agent Cards: an active agent's card validates against the A2A v1.0
//! JSON Schema, its signature (A2A §8.4) verifies with an independent JOSE
//! library against `/.well-known/jwks.json` and breaks when the card
//! changes, and its `ETag` makes revalidation a 304 until the agent changes.

use serde_json::{Value, json};
use tests::{Method, TestApp, agent_card_problems, spawn_app, verify_signed};

async fn card(app: &TestApp, path: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(&format!("{path}/agent-card.json")));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_agent_card_is_valid_a2a_signed_by_the_platform_and_revalidates_with_its_etag() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({"capabilities": ["translation", "summarization"]})).await;
    let heartbeat = app.signed(&agent.signer, Method::POST, &format!("{}/heartbeat", agent.path()), &Value::Null).await;
    assert!(heartbeat.status().is_success());

    let response = card(&app, &agent.path(), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    assert_eq!(response.headers()["content-type"], "application/json");
    let first_etag = etag(&response);
    let served: Value = response.json().await.unwrap();
    assert_eq!(agent_card_problems(&served), Vec::<String>::new(), "{served:#}");

    assert_eq!(
        (&served["name"], &served["description"]),
        (&agent.registered["name"], &agent.registered["description"])
    );
    let tags: Vec<&Value> = served["skills"].as_array().unwrap().iter().map(|skill| &skill["tags"][0]).collect();
    assert_eq!(tags, [&agent.registered["capabilities"][0], &agent.registered["capabilities"][1]]);
    let listing = &served["capabilities"]["extensions"][0];
    assert_eq!(listing["uri"], "urn:agent-registry:a2a:listing:v1");
    assert_eq!(
        (&listing["params"]["agent_id"], &listing["params"]["price"]),
        (&agent.registered["id"], &json!("12.5"))
    );
    assert!(listing["params"]["last_seen_at"].is_string(), "the heartbeat shows: {listing}");

    // The signature verifies with joserfc over the RFC 8785 form, by the JWKS key it names.
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let kids = verify_signed("card", &json!({"jwks": jwks, "card": served})).expect("the card's signature verifies");
    assert_eq!(kids, json!([jwks["keys"][0]["kid"]]));
    let protected = &served["signatures"][0]["protected"];
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, protected.as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("EdDSA"), Some("JOSE")));
    for (pointer, value) in [("/name", json!("Impostor")), ("/capabilities/extensions/0/params/price", json!("0.01"))] {
        let mut tampered = served.clone();
        *tampered.pointer_mut(pointer).unwrap() = value;
        verify_signed("card", &json!({"jwks": jwks, "card": tampered})).expect_err("a changed card does not verify");
    }

    // Revalidation: the same ETag (strong, weak or any) is a 304 with no body.
    for given in [first_etag.clone(), format!("W/{first_etag}"), format!("\"other\", {first_etag}"), "*".into()] {
        let unchanged = card(&app, &agent.path(), Some(&given)).await;
        assert_eq!(unchanged.status(), 304, "If-None-Match: {given}");
        assert_eq!(
            (etag(&unchanged), unchanged.headers()["cache-control"].to_str().unwrap()),
            (first_etag.clone(), "public, max-age=60")
        );
        assert!(unchanged.bytes().await.unwrap().is_empty());
    }
    let again = card(&app, &agent.path(), None).await;
    assert_eq!(etag(&again), first_etag, "an unchanged card keeps its ETag");
    assert_eq!(card(&app, &agent.path(), Some("\"stale\"")).await.status(), 200);

    // A change to the agent is a new card, and the old ETag no longer matches.
    let update = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": "9.99"})).await;
    assert_eq!(update.status(), 200);
    let changed = card(&app, &agent.path(), Some(&first_etag)).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(etag(&changed), first_etag);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["capabilities"]["extensions"][0]["params"]["price"], "9.99");
    verify_signed("card", &json!({"jwks": jwks, "card": changed})).expect("the new card verifies too");
}

#[tokio::test]
async fn only_active_agents_have_a_card() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    assert_eq!(app.signed(&agent.signer, Method::DELETE, &agent.path(), &Value::Null).await.status(), 204);
    for path in [agent.path().as_str(), "/v1/agents/agt_00000000000000000000000000000000"] {
        let response = card(&app, path, None).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(card(&app, "/v1/agents/nope", None).await.status(), 422);
}
