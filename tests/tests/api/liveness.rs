//! Agent liveness: heartbeats set `last_seen_at`, written to Postgres at
//! most once a minute per agent, and discovery's `seen_within_seconds`
//! keeps only agents seen that recently.

use serde_json::{Value, json};
use tests::{Method, TestAgent, TestApp, spawn_app, spawn_app_with};

async fn heartbeat(app: &TestApp, signer: &tests::RequestSigner, agent: &TestAgent) -> reqwest::Response {
    app.signed(signer, Method::POST, &format!("{}/heartbeat", agent.path()), &Value::Null).await
}

async fn stored_last_seen(app: &TestApp, agent: &TestAgent) -> Option<time::OffsetDateTime> {
    let id = agent.registered["id"].as_str().unwrap().trim_start_matches("agt_");
    sqlx::query_scalar("SELECT last_seen_at FROM agents WHERE id = $1::uuid").bind(id).fetch_one(&app.db).await.unwrap()
}

fn names(page: &Value) -> Vec<&str> {
    page["agents"].as_array().unwrap().iter().map(|agent| agent["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_heartbeat_sets_last_seen_at_and_repeats_within_a_minute_write_nothing() {
    let app = spawn_app().await;
    let alive = app.register_agent(json!({"name": "Alive", "capabilities": ["ocr"]})).await;
    let silent = app.register_agent(json!({"name": "Silent", "capabilities": ["ocr"]})).await;
    assert!(alive.registered["last_seen_at"].is_null(), "no heartbeat yet");

    let first = heartbeat(&app, &alive.signer, &alive).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let stored = stored_last_seen(&app, &alive).await.expect("recorded");
    let answered = time::OffsetDateTime::parse(
        first["last_seen_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((stored - answered).abs() < time::Duration::milliseconds(1), "{stored} vs {answered}");

    // Within the minute: answered from Redis; Postgres is not written again.
    let xmin_before: String =
        sqlx::query_scalar("SELECT xmin::text FROM agents WHERE name = 'Alive'").fetch_one(&app.db).await.unwrap();
    for _ in 0..3 {
        let again: Value = heartbeat(&app, &alive.signer, &alive).await.json().await.unwrap();
        assert_eq!(again["last_seen_at"], first["last_seen_at"]);
    }
    let xmin_after: String =
        sqlx::query_scalar("SELECT xmin::text FROM agents WHERE name = 'Alive'").fetch_one(&app.db).await.unwrap();
    assert_eq!(xmin_before, xmin_after, "no new row version: no write");

    assert_eq!(heartbeat(&app, &alive.signer, &silent).await.status(), 403, "only the agent's own key");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the public-read cache
    let shown: Value = app.get(&alive.path()).await.json().await.unwrap();
    assert_eq!(shown["last_seen_at"], first["last_seen_at"]);

    for query in ["/v1/agents?seen_within_seconds=60", "/v1/agents?capabilities=ocr&seen_within_seconds=60&sort=price"]
    {
        let page: Value = app.get(query).await.json().await.unwrap();
        assert_eq!(names(&page), ["Alive"], "{query}");
    }
    let everyone: Value = app.get("/v1/agents?capabilities=ocr").await.json().await.unwrap();
    assert_eq!(names(&everyone).len(), 2);

    // Seen two hours ago: within a day, not within an hour.
    sqlx::query("UPDATE agents SET last_seen_at = now() - interval '2 hours' WHERE name = 'Alive'")
        .execute(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let hour: Value =
        app.get("/v1/agents?capabilities=ocr&seen_within_seconds=3600&sort=newest").await.json().await.unwrap();
    assert!(names(&hour).is_empty(), "{hour}");
    let day: Value = app.get("/v1/agents?seen_within_seconds=86400").await.json().await.unwrap();
    assert_eq!(names(&day), ["Alive"]);

    for bad in ["59", "2592001", "-1", "soon"] {
        let refused = app.get(&format!("/v1/agents?seen_within_seconds={bad}")).await;
        assert_eq!(refused.status(), 422, "{bad}");
    }
}

#[tokio::test]
async fn heartbeats_are_rate_limited_and_a_deactivated_agent_has_none() {
    let app = spawn_app_with(|source, _| {
        source.set("RATE_LIMIT_WRITE_CAPACITY", "3");
        source.set("RATE_LIMIT_WRITE_REFILL_PER_MIN", "1");
    })
    .await;
    let agent = app.register_agent(json!({})).await;
    let statuses = [
        heartbeat(&app, &agent.signer, &agent).await.status(),
        heartbeat(&app, &agent.signer, &agent).await.status(),
        heartbeat(&app, &agent.signer, &agent).await.status(),
        heartbeat(&app, &agent.signer, &agent).await.status(),
    ];
    assert_eq!(statuses.map(|status| status.as_u16()), [200, 200, 200, 429], "a heartbeat is a signed write");

    let other = app.register_agent(json!({})).await;
    assert_eq!(app.signed(&other.signer, Method::DELETE, &other.path(), &Value::Null).await.status(), 204);
    let refused = heartbeat(&app, &other.signer, &other).await;
    assert_eq!(refused.status(), 401, "a deactivated agent's key signs nothing");
    assert!(stored_last_seen(&app, &other).await.is_none());
    assert_eq!(heartbeat(&app, &other.signer, &other).await.status(), 401);
}
