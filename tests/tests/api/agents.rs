use serde_json::{Value, json};
use tests::{new_public_key, registration, spawn_app};

#[tokio::test]
async fn register_then_get_returns_the_agent_and_the_secret_only_once() {
    let app = spawn_app().await;
    let key = new_public_key();
    let response = app
        .post_json(
            "/v1/agents",
            &registration(json!({"public_key": key, "capabilities": ["Translation", "ocr", "ocr"]})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();

    let id = registered["id"].as_str().unwrap();
    assert!(id.starts_with("agt_") && id.len() == 36, "{id}");
    assert!(registered["webhook_secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(registered["capabilities"], json!(["ocr", "translation"]), "tags are normalised");
    assert_eq!(registered["price"], "12.5");
    assert_eq!(registered["public_key"], key);
    assert_eq!(registered["active"], true);
    assert_eq!(registered["rating"], "0.00");

    let fetched = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(fetched.status(), 200);
    let fetched: Value = fetched.json().await.unwrap();
    assert!(fetched.get("webhook_secret").is_none(), "the secret is shown once");
    let mut expected = registered.clone();
    expected.as_object_mut().unwrap().remove("webhook_secret");
    assert_eq!(fetched, expected);
}

#[tokio::test]
async fn ids_are_unguessable_and_distinct() {
    let app = spawn_app().await;
    let first = app.register_agent(json!({})).await;
    let second = app.register_agent(json!({})).await;
    assert_ne!(first["id"], second["id"]);
    assert_ne!(first["webhook_secret"], second["webhook_secret"]);
}

#[tokio::test]
async fn a_public_key_registers_one_agent_only() {
    let app = spawn_app().await;
    let key = new_public_key();
    app.register_agent(json!({"public_key": key})).await;
    let response = app.post_json("/v1/agents", &registration(json!({"public_key": key}))).await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("public_key"), "{problem}");
}

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());

    let response = app.patch_json(&path, &json!({"price": "9.99", "capabilities": ["summarization"]})).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["price"], "9.99");
    assert_eq!(updated["capabilities"], json!(["summarization"]));
    assert_eq!(updated["name"], agent["name"]);
    assert_eq!(updated["endpoint_url"], agent["endpoint_url"]);
    assert!(updated["updated_at"].as_str() >= agent["updated_at"].as_str());
    assert_eq!(app.get(&path).await.json::<Value>().await.unwrap(), updated);

    let empty = app.patch_json(&path, &json!({})).await;
    assert_eq!(empty.status(), 422);
}

#[tokio::test]
async fn deactivation_is_idempotent_and_freezes_the_agent() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());

    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.delete(&path).await.status(), 204, "deactivating twice is harmless");
    let fetched: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fetched["active"], false);

    let response = app.patch_json(&path, &json!({"name": "Renamed"})).await;
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn unknown_agents_are_not_found() {
    let app = spawn_app().await;
    let path = "/v1/agents/agt_00000000000000000000000000000000";
    for response in [app.get(path).await, app.patch_json(path, &json!({"name": "x"})).await, app.delete(path).await] {
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
}
