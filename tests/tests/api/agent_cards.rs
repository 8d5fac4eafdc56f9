//! A2A Agent Cards: an active agent's card validates against the A2A v1.0
//! JSON Schema, its signature (A2A §8.4) verifies with an independent JOSE
//! library against `/.well-known/jwks.json` and breaks when the card
//! changes, and its `ETag` makes revalidation a 304 until the agent changes.
//! Agents registered from their own card (a local card server) take its
//! fields, are found by its skill tags and refresh with its ETag; a card on a
//! private address, too large or invalid is a 422 saying why. A card's
//! provider and interfaces are signed as the agent's only when the card names
//! the agent's signing key and is proven for its endpoint's site: fetched
//! from that site, or signed (A2A §8.4) by a key that site publishes; another
//! agent cannot take a site's card, and a key rotation unproves it until the
//! card names the new key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tests::{
    Method, TestAgent, TestApp, TestKey, agent_card_problems, expect_status, spawn_app, spawn_app_with, verify_signed,
};

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

/// A card server on the loopback: serves the current card at `/card.json`
/// with a strong ETag (its version), and 304 to an `If-None-Match` of it.
pub(crate) struct CardServer {
    base: String,
    port: u16,
    card: Arc<Mutex<(u32, Vec<u8>)>>,
    not_modified: Arc<AtomicUsize>,
    /// Served at `/jwks.json`.
    jwks: Arc<Mutex<Value>>,
}

impl CardServer {
    pub(crate) async fn start(card: Value) -> Self {
        let state = Arc::new(Mutex::new((1, serde_json::to_vec(&card).unwrap())));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (state.clone(), not_modified.clone());
        let jwks = Arc::new(Mutex::new(json!({"keys": []})));
        let published = jwks.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let published = published.clone();
                async move { axum::Json(published.lock().unwrap().clone()) }
            }),
        );
        let app = app.route(
            "/card.json",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    let (version, body) = served.lock().unwrap().clone();
                    let etag = format!("\"v{version}\"");
                    if headers.get("if-none-match").is_some_and(|given| given.to_str().unwrap() == etag) {
                        counted.fetch_add(1, Ordering::SeqCst);
                        return (axum::http::StatusCode::NOT_MODIFIED, [("etag", etag)], Vec::new());
                    }
                    (axum::http::StatusCode::OK, [("etag", etag)], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://localhost:{port}"), port, card: state, not_modified, jwks }
    }

    /// An origin of this server under another name: `http://<host>:<port>`.
    fn origin(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/card.json", self.base)
    }

    fn serve(&self, body: Vec<u8>) {
        let mut card = self.card.lock().unwrap();
        *card = (card.0 + 1, body);
    }
}

pub(crate) fn a2a_card(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Plans routes that avoid traffic.",
        "version": "1.2.0",
        "supportedInterfaces": [{"url": "https://geo.example.com/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "provider": {"organization": "Example Geo", "url": "https://geo.example.com"},
        "capabilities": {"streaming": true},
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "skills": [
            {"id": "route", "name": "Route", "description": "Routes.", "tags": ["Routing", "traffic aware"]},
            {"id": "map", "name": "Map", "description": "Maps.", "tags": ["cartography"]}
        ]
    })
}

/// Registers a fresh key from the card at `url` alone (no name, description or capabilities).
async fn register_from_card(app: &TestApp, url: &str) -> (reqwest::Response, TestKey) {
    let key = TestKey::generate();
    let mut body = key.registration(json!({"agent_card_url": url}));
    for field in ["name", "description", "capabilities"] {
        body.as_object_mut().unwrap().remove(field);
    }
    (app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &body).await, key)
}

/// An API that may fetch cards from the loopback (and over plain http), as a local card server needs.
pub(crate) async fn app_reaching_loopback() -> TestApp {
    spawn_app_with(|source, _| {
        source.set("EGRESS_ALLOW_CIDRS", "127.0.0.0/8,::1/128");
        source.set("ALLOW_HTTP_ENDPOINTS", "true");
    })
    .await
}

#[tokio::test]
async fn an_agent_registered_from_its_card_takes_its_fields_is_found_by_skill_tag_and_refreshes() {
    let app = app_reaching_loopback().await;
    let server = CardServer::start(a2a_card("GeoSpatial Route Planner")).await;
    let (response, key) = register_from_card(&app, &server.url()).await;
    let registered = expect_status(response, 201).await;
    assert_eq!(registered["name"], "GeoSpatial Route Planner");
    assert_eq!(registered["description"], "Plans routes that avoid traffic.");
    assert_eq!(registered["capabilities"], json!(["cartography", "routing", "traffic-aware"]));
    let id = registered["id"].as_str().unwrap();
    let agent = TestAgent { signer: key.signer(id), registered: registered.clone() };

    // Its card here leaves out the interface and provider its own card claimed: a card on
    // localhost cannot speak for geo.example.com. It is still valid and signed.
    let served: Value = card(&app, &agent.path(), None).await.json().await.unwrap();
    assert_eq!(served["supportedInterfaces"], json!([]));
    assert_eq!(served.get("provider"), None);
    assert_eq!(served["capabilities"]["extensions"][0]["params"]["card_proof"], "unverified");
    assert_eq!(agent_card_problems(&served), Vec::<String>::new(), "{served:#}");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    verify_signed("card", &json!({"jwks": jwks, "card": served})).expect("the card verifies");

    // Discovery filters by a skill tag as by any capability.
    let found = expect_status(app.get("/v1/agents?capabilities=cartography").await, 200).await;
    assert_eq!(found["agents"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["agents"][0]["id"], registered["id"]);

    // Unchanged: the refresh asks with the stored ETag and changes nothing.
    let refresh = format!("{}/agent-card/refresh", agent.path());
    let same = expect_status(app.signed(&agent.signer, Method::POST, &refresh, &Value::Null).await, 200).await;
    assert_eq!((&same["name"], &same["updated_at"]), (&registered["name"], &registered["updated_at"]));
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1, "asked with If-None-Match");

    // Changed: the agent takes the new card.
    let mut renamed = a2a_card("Route Planner Pro");
    renamed["skills"] = json!([{"id": "route", "name": "Route", "description": "Routes.", "tags": ["routing"]}]);
    server.serve(serde_json::to_vec(&renamed).unwrap());
    let refreshed = expect_status(app.signed(&agent.signer, Method::POST, &refresh, &Value::Null).await, 200).await;
    assert_eq!(
        (refreshed["name"].as_str(), &refreshed["capabilities"]),
        (Some("Route Planner Pro"), &json!(["routing"]))
    );

    // A refresh is the agent's own; an agent without a card URL has nothing to refresh.
    let other = app.register_agent(json!({})).await;
    let by_other = app.signed(&other.signer, Method::POST, &refresh, &Value::Null).await;
    expect_status(by_other, 403).await;
    let no_card = format!("{}/agent-card/refresh", other.path());
    let problem = expect_status(app.signed(&other.signer, Method::POST, &no_card, &Value::Null).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("agent_card_url"), "{problem}");

    // PATCH with a card URL: the card fills what the request leaves out.
    server.serve(serde_json::to_vec(&a2a_card("Patched Planner")).unwrap());
    let body = json!({"agent_card_url": server.url(), "description": "Mine."});
    let patched = expect_status(app.signed(&other.signer, Method::PATCH, &other.path(), &body).await, 200).await;
    assert_eq!((patched["name"].as_str(), patched["description"].as_str()), (Some("Patched Planner"), Some("Mine.")));
}

#[tokio::test]
async fn a_card_on_a_private_address_too_large_or_invalid_is_a_422_saying_why() {
    let server = CardServer::start(a2a_card("Local Agent")).await;
    // Without an allow-list the loopback is what it is: not a public address.
    let public_only = spawn_app_with(|source, _| source.set("ALLOW_HTTP_ENDPOINTS", "true")).await;
    let problem = expect_status(register_from_card(&public_only, &server.url()).await.0, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("agent_card_url") && detail.contains("non-public"), "{problem}");

    let app = app_reaching_loopback().await;
    let too_large = a2a_card(&"x".repeat(70 * 1024));
    for (body, why) in [
        (serde_json::to_vec(&too_large).unwrap(), "larger than 65536 bytes"),
        (b"<html>not a card</html>".to_vec(), "not JSON"),
        (serde_json::to_vec(&json!({"name": "No skills", "skills": "none"})).unwrap(), "/skills"),
        (serde_json::to_vec(&json!({"name": "Missing fields"})).unwrap(), "not a valid A2A v1.0 Agent Card"),
    ] {
        server.serve(body);
        let problem = expect_status(register_from_card(&app, &server.url()).await.0, 422).await;
        assert!(problem["detail"].as_str().unwrap().contains(why), "{why}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "agent_card_url");
    }
    let missing = format!("{}/nothing-here.json", server.base);
    let problem = expect_status(register_from_card(&app, &missing).await.0, 422).await;
    assert!(problem["detail"].as_str().unwrap().contains("404"), "{problem}");

    // Without a card, name and capabilities are required.
    let key = TestKey::generate();
    let mut body = key.registration(json!({}));
    body.as_object_mut().unwrap().remove("name");
    let problem =
        expect_status(app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &body).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
}

/// A card whose provider and interface are on `origin`.
fn card_claiming(origin: &str) -> Value {
    let mut card = a2a_card("Claimant");
    card["provider"] = json!({"organization": "Loopback Labs", "url": origin});
    card["supportedInterfaces"] =
        json!([{"url": format!("{origin}/a2a"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]);
    card
}

/// `card` with an A2A §8.4 signature by `key` (EdDSA): a detached JWS over
/// the RFC 8785 form of the card, its protected header naming `kid` and `jku`.
fn signed_card(mut card: Value, key: &ed25519_dalek::SigningKey, kid: &str, jku: &str) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::Signer;
    let protected =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "EdDSA", "kid": kid, "jku": jku})).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json_canonicalizer::to_vec(&card).unwrap());
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    card["signatures"] = json!([{"protected": protected, "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes())}]);
    card
}

/// `card` naming `public_key` as its agent's signing key (the agent-key extension).
fn naming(mut card: Value, public_key: &str) -> Value {
    card["capabilities"]["extensions"] =
        json!([{"uri": "urn:agent-registry:a2a:agent-key:v1", "params": {"public_key": public_key}}]);
    card
}

/// Registers a fresh key as an agent whose endpoint is `endpoint_url`, from
/// the card `card(key)` that `server` serves at `card_url`; its card as the
/// registry serves it, and the agent.
async fn served_card_of(
    app: &TestApp,
    server: &CardServer,
    card: impl Fn(&TestKey) -> Value,
    card_url: &str,
    endpoint_url: &str,
) -> (Value, TestAgent) {
    let key = TestKey::generate();
    server.serve(serde_json::to_vec(&card(&key)).unwrap());
    let body = key.registration(json!({"agent_card_url": card_url, "endpoint_url": endpoint_url}));
    let registered =
        expect_status(app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &body).await, 201).await;
    let agent = TestAgent { signer: key.signer(registered["id"].as_str().unwrap()), registered };
    (served_card(app, &agent).await, agent)
}

/// The agent's card as the registry serves it, checked valid and signed.
async fn served_card(app: &TestApp, agent: &TestAgent) -> Value {
    let served: Value = expect_status(card(app, &agent.path(), None).await, 200).await;
    assert_eq!(agent_card_problems(&served), Vec::<String>::new(), "{served:#}");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    verify_signed("card", &json!({"jwks": jwks, "card": served})).expect("the card verifies");
    served
}

/// Whether `served` signs the claims of `claimed` as the agent's, and the proof its listing names.
fn claims_and_proof(served: &Value, claimed: &Value) -> (bool, String) {
    let signed =
        served["provider"] == claimed["provider"] && served["supportedInterfaces"] == claimed["supportedInterfaces"];
    let unsigned = served.get("provider").is_none() && served["supportedInterfaces"] == json!([]);
    assert!(signed || unsigned, "all of the claims or none: {served:#}");
    (signed, served["capabilities"]["extensions"][0]["params"]["card_proof"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_cards_provider_and_interfaces_are_signed_only_when_its_endpoints_site_vouches_for_them() {
    let app = app_reaching_loopback().await;
    let server = CardServer::start(Value::Null).await;
    let (here, elsewhere) = (server.origin("localhost"), server.origin("127.0.0.1"));
    let claimed = card_claiming(&here);
    let (at_here, at_elsewhere) = (format!("{here}/card.json"), format!("{elsewhere}/card.json"));
    let (hooks_here, hooks_elsewhere) = (format!("{here}/hooks"), format!("{elsewhere}/hooks"));
    let names_agent = |key: &TestKey| naming(claimed.clone(), &key.public_key);

    // Fetched from the site its claims name, naming the agent, for an endpoint on that site: signed.
    let (served, _) = served_card_of(&app, &server, names_agent, &at_here, &hooks_here).await;
    assert_eq!(claims_and_proof(&served, &claimed), (true, "card_host".into()));
    // The same card for an endpoint on another host: the claims are not the agent's.
    let (served, _) = served_card_of(&app, &server, names_agent, &at_here, &hooks_elsewhere).await;
    assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()));
    // Served from a foreign host, unsigned: a copy proves nothing.
    let (served, _) = served_card_of(&app, &server, names_agent, &at_elsewhere, &hooks_here).await;
    assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()));
    // From the site, but not naming the agent's key: it is not the agent's card.
    let (served, _) = served_card_of(&app, &server, |_| claimed.clone(), &at_here, &hooks_here).await;
    assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()));

    // From a foreign host but signed by a key the claims' site publishes, naming the agent: signed.
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let x = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.verifying_key().as_bytes());
    *server.jwks.lock().unwrap() =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "card-key", "alg": "EdDSA"}]});
    let jku = format!("{here}/jwks.json");
    let signed = |agent: &TestKey| signed_card(naming(claimed.clone(), &agent.public_key), &key, "card-key", &jku);
    let (served, _) = served_card_of(&app, &server, signed, &at_elsewhere, &hooks_here).await;
    assert_eq!(claims_and_proof(&served, &claimed), (true, "jws".into()));

    // Not when the keys are published elsewhere, or by a key not there, or the card changed after
    // signing, or the signed card does not name the agent.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[10; 32]);
    let jku_elsewhere = format!("{elsewhere}/jwks.json");
    let refusals = |agent: &TestKey| {
        let named = naming(claimed.clone(), &agent.public_key);
        let mut tampered = signed(agent);
        tampered["description"] = json!("Changed after signing.");
        [
            signed_card(named.clone(), &key, "card-key", &jku_elsewhere),
            signed_card(named, &stranger, "card-key", &jku),
            tampered,
            signed_card(claimed.clone(), &key, "card-key", &jku),
        ]
    };
    for case in 0..4 {
        let refused = |agent: &TestKey| refusals(agent).into_iter().nth(case).unwrap();
        let (served, _) = served_card_of(&app, &server, refused, &at_elsewhere, &hooks_here).await;
        assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()), "case {case}");
    }
}

#[tokio::test]
async fn another_agent_cannot_take_a_sites_card_by_putting_its_endpoint_on_that_site() {
    let app = app_reaching_loopback().await;
    let server = CardServer::start(Value::Null).await;
    let (victim_site, attacker_site) = (server.origin("localhost"), server.origin("127.0.0.1"));
    let claimed = card_claiming(&victim_site);
    let at_victim = format!("{victim_site}/card.json");
    let hooks_at_victim = format!("{victim_site}/x");

    // The victim's own card, proven for the victim.
    let (served, victim) =
        served_card_of(&app, &server, |key| naming(claimed.clone(), &key.public_key), &at_victim, &hooks_at_victim)
            .await;
    assert_eq!(claims_and_proof(&served, &claimed), (true, "card_host".into()));
    let victims_card = naming(claimed.clone(), victim.registered["public_key"].as_str().unwrap());

    // The attacker imports it, from the victim's host, with its endpoint there: not the attacker's.
    let (served, _) = served_card_of(&app, &server, |_| victims_card.clone(), &at_victim, &hooks_at_victim).await;
    assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()));

    // Nor a copy of the victim's JWS-signed card, verbatim from the attacker's host.
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let x = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.verifying_key().as_bytes());
    *server.jwks.lock().unwrap() =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "card-key", "alg": "EdDSA"}]});
    let signed_by_victim = signed_card(victims_card.clone(), &key, "card-key", &format!("{victim_site}/jwks.json"));
    let at_attacker = format!("{attacker_site}/card.json");
    let (served, _) = served_card_of(&app, &server, |_| signed_by_victim.clone(), &at_attacker, &hooks_at_victim).await;
    assert_eq!(claims_and_proof(&served, &claimed), (false, "unverified".into()));
}

#[tokio::test]
async fn a_key_rotation_leaves_a_card_unverified_until_it_names_the_new_key() {
    let app = app_reaching_loopback().await;
    let server = CardServer::start(Value::Null).await;
    let here = server.origin("localhost");
    let claimed = card_claiming(&here);
    let (served, agent) = served_card_of(
        &app,
        &server,
        |key| naming(claimed.clone(), &key.public_key),
        &format!("{here}/card.json"),
        &format!("{here}/hooks"),
    )
    .await;
    assert_eq!(claims_and_proof(&served, &claimed), (true, "card_host".into()));

    let new_key = TestKey::generate();
    let id = agent.registered["id"].as_str().unwrap();
    let rotation = new_key.rotation_to(id, agent.registered["public_key"].as_str().unwrap());
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{}/keys", agent.path()), &rotation).await, 200)
        .await;
    assert_eq!(claims_and_proof(&served_card(&app, &agent).await, &claimed), (false, "unverified".into()));

    // A refresh reads the card again (not "unchanged"): still the old key, still unverified.
    let rotated = TestAgent { signer: new_key.signer(id), registered: agent.registered.clone() };
    let refresh = format!("{}/agent-card/refresh", agent.path());
    expect_status(app.signed(&rotated.signer, Method::POST, &refresh, &Value::Null).await, 200).await;
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 0, "the refresh after a rotation reads the card");
    assert_eq!(claims_and_proof(&served_card(&app, &agent).await, &claimed), (false, "unverified".into()));

    // The card names the new key: proven again.
    server.serve(serde_json::to_vec(&naming(claimed.clone(), &new_key.public_key)).unwrap());
    expect_status(app.signed(&rotated.signer, Method::POST, &refresh, &Value::Null).await, 200).await;
    assert_eq!(claims_and_proof(&served_card(&app, &agent).await, &claimed), (true, "card_host".into()));
}
