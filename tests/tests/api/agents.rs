use serde_json::{Value, json};
use tests::{Method, TestKey, spawn_app};

#[tokio::test]
async fn register_then_get_returns_the_agent_and_the_secret_only_once() {
    let app = spawn_app().await;
    let key = TestKey::generate();
    let body = key.registration(json!({"capabilities": ["Translation", "ocr", "ocr"]}));
    let response = app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &body).await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();

    let id = registered["id"].as_str().unwrap();
    assert!(id.starts_with("agt_") && id.len() == 36, "{id}");
    assert!(registered["webhook_secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(registered["capabilities"], json!(["ocr", "translation"]), "tags are normalised");
    assert_eq!(registered["price"], "12.5");
    assert_eq!(registered["public_key"], key.public_key);
    assert_eq!(registered["active"], true);
    assert_eq!(registered["rating"], "0.00");

    let fetched = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(fetched.status(), 200);
    let fetched: Value = fetched.json().await.unwrap();
    assert!(fetched.get("webhook_secret").is_none(), "the secret is shown once");
    assert_eq!(fetched, public_view(&registered));
}

/// What anyone reads of an agent its owner got back from a write: no secret,
/// and the endpoint's host instead of its URL.
fn public_view(owner: &Value) -> Value {
    let mut public = owner.clone();
    let fields = public.as_object_mut().unwrap();
    fields.remove("webhook_secret");
    let url = fields.remove("endpoint_url").expect("the owner sees the endpoint URL");
    let host = reqwest::Url::parse(url.as_str().unwrap()).unwrap().host_str().unwrap().to_owned();
    fields.insert("endpoint_host".into(), Value::String(host));
    public
}

#[tokio::test]
async fn only_the_agent_reads_its_endpoint_url_anyone_else_its_host() {
    let app = spawn_app().await;
    let secret_url = "https://polyglot.example.com:8443/hooks/tok_5ecret?key=also-secret";
    let agent = app.register_agent(json!({"endpoint_url": secret_url, "capabilities": ["private-urls"]})).await;
    assert_eq!(agent.registered["endpoint_url"], secret_url, "the owner's answer has the URL");

    let public: Value = app.get(&agent.path()).await.json().await.unwrap();
    let page: Value = app.get("/v1/agents?capabilities=private-urls").await.json().await.unwrap();
    assert_eq!(page["agents"].as_array().unwrap().len(), 1);
    for shown in [&public, &page["agents"][0]] {
        assert_eq!(shown["endpoint_host"], "polyglot.example.com");
        assert!(shown.get("endpoint_url").is_none(), "{shown}");
        let text = shown.to_string();
        assert!(!text.contains("/hooks") && !text.contains("5ecret") && !text.contains("8443"), "{text}");
    }

    let endpoint = format!("{}/endpoint", agent.path());
    let own = app.signed(&agent.signer, Method::GET, &endpoint, &Value::Null).await;
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["endpoint_url"], secret_url);
    assert_eq!(own["endpoint_host"], "polyglot.example.com");
    assert_eq!(own["endpoint_disabled_at"], Value::Null);

    let other = app.register_agent(json!({})).await;
    assert_eq!(app.signed(&other.signer, Method::GET, &endpoint, &Value::Null).await.status(), 403);
    let (client, _) = app.register_client().await;
    assert_eq!(app.signed(&client, Method::GET, &endpoint, &Value::Null).await.status(), 403);
    assert_eq!(app.get(&endpoint).await.status(), 401, "signed only");
}

#[tokio::test]
async fn public_and_owner_answers_do_not_mix_in_the_page_cache() {
    let app = tests::spawn_app_with(|source, _| source.set("PUBLIC_READ_CACHE_MS", "60000")).await;
    let secret_url = "https://polyglot.example.com/hooks/tok_5ecret";
    let agent = app.register_agent(json!({"endpoint_url": secret_url})).await;
    let endpoint = format!("{}/endpoint", agent.path());
    for _ in 0..2 {
        let public = app.get(&agent.path()).await.text().await.unwrap();
        assert!(!public.contains("5ecret"), "{public}");
        let own: Value = app.signed(&agent.signer, Method::GET, &endpoint, &Value::Null).await.json().await.unwrap();
        assert_eq!(own["endpoint_url"], secret_url);
    }
    let moved = "https://polyglot.example.com/hooks/tok_n3w";
    let changes = json!({"endpoint_url": moved});
    assert_eq!(app.signed(&agent.signer, Method::PATCH, &agent.path(), &changes).await.status(), 200);
    let own: Value = app.signed(&agent.signer, Method::GET, &endpoint, &Value::Null).await.json().await.unwrap();
    assert_eq!(own["endpoint_url"], moved, "the owner's read is never cached");
    let public = app.get(&agent.path()).await.text().await.unwrap();
    assert!(!public.contains("n3w") && !public.contains("5ecret"), "{public}");
}

#[tokio::test]
async fn ids_are_unguessable_and_distinct() {
    let app = spawn_app().await;
    let first = app.register_agent(json!({})).await.registered;
    let second = app.register_agent(json!({})).await.registered;
    assert_ne!(first["id"], second["id"]);
    assert_ne!(first["webhook_secret"], second["webhook_secret"]);
}

#[tokio::test]
async fn a_public_key_registers_one_agent_only() {
    let app = spawn_app().await;
    let key = TestKey::generate();
    let signer = key.registration_signer();
    let first = app.signed(&signer, Method::POST, "/v1/agents", &key.registration(json!({}))).await;
    assert_eq!(first.status(), 201);
    let response = app.signed(&signer, Method::POST, "/v1/agents", &key.registration(json!({}))).await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("public_key"), "{problem}");
}

#[tokio::test]
async fn registration_must_be_signed_by_the_key_it_registers() {
    let app = spawn_app().await;
    let (key, other) = (TestKey::generate(), TestKey::generate());
    let response =
        app.signed(&other.registration_signer(), Method::POST, "/v1/agents", &key.registration(json!({}))).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let before = &agent.registered;

    let changes = json!({"price": "9.99", "capabilities": ["summarization"]});
    let response = app.signed(&agent.signer, Method::PATCH, &agent.path(), &changes).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["price"], "9.99");
    assert_eq!(updated["capabilities"], json!(["summarization"]));
    assert_eq!(updated["name"], before["name"]);
    assert_eq!(updated["endpoint_url"], before["endpoint_url"]);
    assert!(updated["updated_at"].as_str() >= before["updated_at"].as_str());
    assert_eq!(app.get(&agent.path()).await.json::<Value>().await.unwrap(), public_view(&updated));

    let empty = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({})).await;
    assert_eq!(empty.status(), 422);
    // `null` could mean "keep" or "clear": refused, naming the field.
    let null = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": null})).await;
    assert_eq!(null.status(), 422);
    assert_eq!(null.json::<Value>().await.unwrap()["errors"][0]["field"], "price");
}

#[tokio::test]
async fn only_an_agents_own_key_may_change_it() {
    let app = spawn_app().await;
    let (agent, intruder) = (app.register_agent(json!({})).await, app.register_agent(json!({})).await);
    let patch = app.signed(&intruder.signer, Method::PATCH, &agent.path(), &json!({"price": "0"})).await;
    assert_eq!(patch.status(), 403);
    let delete = app.signed(&intruder.signer, Method::DELETE, &agent.path(), &Value::Null).await;
    assert_eq!(delete.status(), 403);
    let fetched: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(fetched["price"], "12.5");
    assert_eq!(fetched["active"], true);
}

#[tokio::test]
async fn deactivation_freezes_the_agent_and_retires_its_key() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;

    let response = app.signed(&agent.signer, Method::DELETE, &agent.path(), &Value::Null).await;
    assert_eq!(response.status(), 204);
    let fetched: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(fetched["active"], false);

    let again = app.signed(&agent.signer, Method::DELETE, &agent.path(), &Value::Null).await;
    assert_eq!(again.status(), 401, "a deactivated agent's key signs nothing, not even this");
    let response = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"name": "Renamed"})).await;
    assert_eq!(response.status(), 401);
    let fetched: Value = app.get(&agent.path()).await.json().await.unwrap();
    assert_eq!(fetched["name"], "Polyglot");
}

#[tokio::test]
async fn unknown_agents_are_not_found() {
    let app = spawn_app().await;
    let path = "/v1/agents/agt_00000000000000000000000000000000";
    assert_eq!(app.get(path).await.status(), 404);
}

#[tokio::test]
async fn clients_register_themselves_with_their_key() {
    let app = spawn_app().await;
    let key = TestKey::generate();
    let body = json!({"name": "Acme Research", "public_key": key.public_key});
    let response = app.signed(&key.registration_signer(), Method::POST, "/v1/clients", &body).await;
    assert_eq!(response.status(), 201);
    let client: Value = response.json().await.unwrap();
    assert!(client["id"].as_str().unwrap().starts_with("cli_"));
    assert_eq!(client["public_key"], key.public_key);

    let again = app.signed(&key.registration_signer(), Method::POST, "/v1/clients", &body).await;
    assert_eq!(again.status(), 409);
}

async fn price(app: &tests::TestApp, agent: &tests::TestAgent) -> Value {
    app.get(&agent.path()).await.json::<Value>().await.unwrap()["price"].clone()
}

#[tokio::test]
async fn a_cached_agent_is_never_served_stale_by_the_instance_that_changed_it() {
    let app = tests::spawn_app_with(|source, _| source.set("PUBLIC_READ_CACHE_MS", "60000")).await;
    let agent = app.register_agent(json!({"price": "10"})).await;
    assert_eq!(price(&app, &agent).await, "10");
    assert_eq!(price(&app, &agent).await, "10", "now from the cache");
    let changed = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": "11"})).await;
    assert_eq!(changed.status(), 200);
    assert_eq!(price(&app, &agent).await, "11", "the change is seen at once");
    // A change behind this instance's back (another instance's, say) shows once the entry expires.
    sqlx::query("UPDATE agents SET price = 12").execute(&app.db).await.unwrap();
    assert_eq!(price(&app, &agent).await, "11", "served from the cache within its TTL");
}
