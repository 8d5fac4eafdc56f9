//! Every kind of bad input gets a 4xx problem+json naming what was wrong;
//! never a 5xx.

use serde_json::{Value, json};
use tests::{Method, TestKey, spawn_app};

async fn assert_problem(response: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["type"].as_str().unwrap().starts_with("urn:agent-registry:problem:"));
    if let Some(field) = field {
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
    problem
}

#[tokio::test]
async fn each_invalid_registration_field_is_named() {
    let app = spawn_app().await;
    let key = TestKey::generate();
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": 42}), "name"),
        (json!({"description": "d".repeat(2001)}), "description"),
        (json!({"capabilities": []}), "capabilities"),
        (json!({"capabilities": ["ok", "not ok"]}), "capabilities[1]"),
        (json!({"capabilities": "translation"}), "capabilities"),
        (json!({"endpoint_url": "not a url"}), "endpoint_url"),
        (json!({"endpoint_url": "http://polyglot.example.com/hooks"}), "endpoint_url"),
        (json!({"endpoint_url": "https://user:pw@polyglot.example.com/"}), "endpoint_url"),
        (json!({"public_key": "bm90IGEga2V5"}), "public_key"),
        (json!({"public_key": "%%%"}), "public_key"),
        (json!({"price": "-1"}), "price"),
        (json!({"price": 12.5}), "price"),
        (json!({"price": "0.0000001"}), "price"),
        (json!({"colour": "blue"}), "colour"),
    ];
    for (overrides, field) in cases {
        let response =
            app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &key.registration(overrides)).await;
        assert_problem(response, 422, Some(field)).await;
    }
    let mut missing = key.registration(json!({}));
    missing.as_object_mut().unwrap().remove("public_key");
    let response = app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &missing).await;
    assert_problem(response, 422, Some("public_key")).await;
}

#[tokio::test]
async fn http_endpoints_are_accepted_only_when_allowed() {
    let app = tests::spawn_app_with(|source, _| {
        source.set("ALLOW_HTTP_ENDPOINTS", "true");
        source.set("EGRESS_ALLOW_CIDRS", "127.0.0.0/8");
    })
    .await;
    app.register_agent(json!({"endpoint_url": "http://127.0.0.1:9000/hook"})).await;
}

#[tokio::test]
async fn webhook_targets_on_ip_literals_or_private_names_are_refused_at_registration() {
    // As in production: the egress policy permits public addresses only.
    let app = tests::spawn_app_with(|source, _| source.set("EGRESS_ALLOW_CIDRS", "")).await;
    let refused = [
        "https://127.0.0.1/hooks",
        "https://10.0.0.8/hooks",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://[::1]/hooks",
        "https://[::ffff:192.168.0.1]/hooks",
        // Public, but a literal: a target is named by its host name.
        "https://8.8.8.8/hooks",
        // Resolves to loopback only.
        "https://localhost/hooks",
        "https://metadata.google.internal/computeMetadata/v1/",
    ];
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    for target in refused {
        let key = TestKey::generate();
        let registration = key.registration(json!({"endpoint_url": target}));
        let response = app.signed(&key.registration_signer(), Method::POST, "/v1/agents", &registration).await;
        let problem = assert_problem(response, 422, Some("endpoint_url")).await;
        assert!(problem["detail"].as_str().unwrap().contains("must"), "{target}: {problem}");

        let change = json!({"endpoint_url": target});
        assert_problem(
            app.signed(&agent.signer, Method::PATCH, &agent.path(), &change).await,
            422,
            Some("endpoint_url"),
        )
        .await;

        let job = json!({"agent_id": agent.registered["id"], "input": {}, "price": "12.50", "callback_url": target});
        assert_problem(app.signed(&client, Method::POST, "/v1/jobs", &job).await, 422, Some("callback_url")).await;
    }
    let public_name = json!({"endpoint_url": "https://agent.example.com/hooks"});
    let response = app.signed(&agent.signer, Method::PATCH, &agent.path(), &public_name).await;
    assert_eq!(response.status(), 200, "a name that does not resolve here is accepted: each delivery checks again");
}

#[tokio::test]
async fn malformed_bodies_are_refused_cleanly() {
    let app = spawn_app().await;
    let signer = TestKey::generate().registration_signer();
    let send = |body: &str, content_type: &'static str| {
        app.send_signed(&signer, Method::POST, "/v1/agents", content_type, body.as_bytes().to_vec())
    };
    assert_problem(send("{\"name\": ", "application/json").await, 400, None).await;
    assert_problem(send("[1, 2]", "application/json").await, 422, Some("body")).await;
    let trailing = format!("{} {{}}", TestKey::generate().registration(json!({})));
    assert_problem(send(&trailing, "application/json").await, 400, None).await;
    assert_problem(send("name=x", "application/x-www-form-urlencoded").await, 415, None).await;

    let huge = TestKey::generate().registration(json!({"description": "x".repeat(70_000)}));
    assert_problem(send(&huge.to_string(), "application/json").await, 413, None).await;
}

#[tokio::test]
async fn bad_ids_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/agents/not-an-id").await, 422, Some("id")).await;
    assert_problem(app.get("/v1/agents/job_00000000000000000000000000000000").await, 422, Some("id")).await;
    assert_problem(app.get("/v1/nothing-here").await, 404, None).await;
    let put = app.http.put(app.url("/v1/agents")).send().await.unwrap();
    assert_problem(put, 405, None).await;
}

#[tokio::test]
async fn each_invalid_discovery_parameter_is_named() {
    let app = spawn_app().await;
    let long_query = format!("q={}", "w".repeat(201));
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("sort=popularity", "sort"),
        ("max_price=cheap", "max_price"),
        ("min_rating=6", "min_rating"),
        ("capabilities=ok,not%20ok", "capabilities"),
        ("cursor=garbage", "cursor"),
        (long_query.as_str(), "q"),
        ("unknown=1", "unknown"),
    ];
    for (query, field) in cases {
        assert_problem(app.get(&format!("/v1/agents?{query}")).await, 422, Some(field)).await;
    }
}

/// Each tag is another walk or filter: a search names at most 32.
#[tokio::test]
async fn a_search_for_more_than_32_tags_is_refused() {
    let app = spawn_app().await;
    let tags = |n: usize| (0..n).map(|i| format!("tag-{i}")).collect::<Vec<_>>().join(",");
    assert_eq!(app.get(&format!("/v1/agents?capabilities={}", tags(32))).await.status(), 200);
    let problem =
        assert_problem(app.get(&format!("/v1/agents?capabilities={}", tags(33))).await, 422, Some("capabilities"))
            .await;
    assert!(problem["detail"].as_str().unwrap().contains("at most 32"), "{problem}");
}

/// A cursor only makes sense for the sort it was issued for.
#[tokio::test]
async fn a_cursor_from_another_sort_is_refused() {
    let app = spawn_app().await;
    for _ in 0..2 {
        app.register_agent(json!({})).await;
    }
    let page: Value = app.get("/v1/agents?limit=1&sort=price").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let problem =
        assert_problem(app.get(&format!("/v1/agents?sort=rating&cursor={cursor}")).await, 422, Some("cursor")).await;
    assert!(problem["detail"].as_str().unwrap().contains("sort=price"));
}
