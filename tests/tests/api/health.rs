use serde_json::Value;
use tests::{TcpProxy, eventually, redis_url, spawn_app, spawn_app_behind_redis_proxy, spawn_app_with};

#[tokio::test]
async fn healthz_and_readyz_answer_when_all_is_well() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

async fn readiness(app: &tests::TestApp) -> (u16, Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn readyz_follows_postgres_going_away_and_coming_back() {
    let proxy = TcpProxy::start("127.0.0.1:5432".into()).await;
    let port = proxy.port();
    let app = spawn_app_with(|source, database| source.set("DATABASE_URL", database.url_via(port))).await;
    assert!(eventually(10, || async { readiness(&app).await.0 == 200 }).await, "ready at first");

    proxy.cut();
    assert!(eventually(10, || async { readiness(&app).await.0 == 503 }).await, "not ready without Postgres");
    let (_, body) = readiness(&app).await;
    assert_eq!(body["postgres"], "unreachable");
    assert_eq!(body["redis"], "ok");
    assert_eq!(app.get("/healthz").await.status(), 200, "still alive");

    proxy.restore();
    assert!(eventually(15, || async { readiness(&app).await.0 == 200 }).await, "ready again");
}

#[tokio::test]
async fn readyz_follows_redis_going_away_and_coming_back() {
    let (proxy, app) = spawn_app_behind_redis_proxy().await;
    assert!(eventually(10, || async { readiness(&app).await.0 == 200 }).await, "ready at first");

    proxy.cut();
    assert!(eventually(10, || async { readiness(&app).await.0 == 503 }).await, "not ready without Redis");
    let (_, body) = readiness(&app).await;
    assert_eq!(body["redis"], "unreachable");
    assert_eq!(body["postgres"], "ok");

    proxy.restore();
    assert!(eventually(15, || async { readiness(&app).await.0 == 200 }).await, "ready again");
}

/// A flood of probes checks the stores once a second: an answer is reused
/// for up to a second, then checked afresh.
#[tokio::test]
async fn a_readiness_answer_is_reused_for_about_a_second() {
    let (proxy, app) = spawn_app_behind_redis_proxy().await;
    assert!(eventually(10, || async { readiness(&app).await.0 == 200 }).await, "ready at first");

    proxy.cut();
    let started = std::time::Instant::now();
    let (status, body) = readiness(&app).await;
    assert_eq!((status, &body["redis"]), (200, &Value::from("ok")), "the answer of a moment ago");
    assert!(started.elapsed() < std::time::Duration::from_millis(500), "answered from memory, not by waiting on Redis");
    assert!(eventually(5, || async { readiness(&app).await.0 == 503 }).await, "then checked again");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let mut app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.expect("the server stops cleanly");
    let after = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert!(after.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/v1/agents",
        "/v1/agents/{id}",
        "/v1/agents/{id}/heartbeat",
        "/v1/agents/{id}/ratings",
        "/v1/jobs/{id}/rating",
        "/v1/jobs/{id}/receipt",
        "/v1/agents/{id}/receipts",
        "/v1/agents/{id}/agent-card.json",
        "/v1/agents/{id}/agent-card/refresh",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} is documented");
    }
    let discovery = document["paths"]["/v1/agents"]["get"]["parameters"].as_array().unwrap();
    let seen = discovery.iter().find(|parameter| parameter["name"] == "seen_within_seconds").unwrap();
    assert_eq!((seen["schema"]["minimum"].as_i64(), seen["schema"]["maximum"].as_i64()), (Some(60), Some(2_592_000)));
    let rating = &document["components"]["schemas"]["RateJob"]["properties"]["score"];
    assert_eq!((rating["minimum"].as_i64(), rating["maximum"].as_i64()), (Some(1), Some(5)));
    let job = &document["components"]["schemas"]["Job"]["properties"];
    assert!(job["status"]["enum"].as_array().unwrap().contains(&"completed".into()), "{job}");
    assert_eq!(job["expired_because"]["enum"], serde_json::json!(["accept_window", "deadline", null]));
    let created = &document["paths"]["/v1/jobs"]["post"]["responses"]["201"]["links"];
    assert_eq!(created["accept_job"]["operationId"], "accept_job", "{created}");
    for link in created.as_object().unwrap().values() {
        let operation_id = link["operationId"].as_str().unwrap();
        let documented =
            document["paths"].as_object().unwrap().values().flat_map(|item| item.as_object().unwrap().values());
        assert!(documented.clone().any(|operation| operation["operationId"] == operation_id), "{operation_id} exists");
    }
    let update = &document["components"]["schemas"]["UpdateAgent"];
    assert_eq!(update["minProperties"], 1, "a change names at least one field");
    assert!(update.get("maxProperties").is_none(), "and may name several: {update}");
    assert_eq!(update["properties"]["price"]["type"], "string", "and never sends null: {update}");
    assert!(
        document["paths"]["/v1/agents"].get("get").is_some() && document["paths"]["/v1/agents"].get("post").is_some()
    );
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    // The console keeps keys on this origin: the page's one third-party
    // script is pinned by version and hash, and nothing else may run.
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        policy.contains("script-src https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.4/dist/browser/;"),
        "{policy}"
    );
    assert!(policy.contains("connect-src 'self'") && !policy.contains("unsafe-eval"), "{policy}");
    let page = docs.text().await.unwrap();
    assert!(page.contains("\"openapi\"") && page.contains("/v1/agents"), "the page embeds the document");
    assert!(page.contains(r#"integrity="sha384-"#) && page.contains("@scalar/api-reference@1.76.4/"), "{page}");
}

#[tokio::test]
async fn the_api_guide_lists_every_documented_operation() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    let table: Vec<&str> = guide.lines().filter(|line| line.starts_with("| `")).collect();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let row = format!("| `{} {path}` |", method.to_uppercase());
            assert!(table.iter().any(|line| line.starts_with(&row)), "docs/API.md's endpoint table has a row {row}");
        }
    }
}

/// A self-signed CA, standing for Memorystore's server CA.
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUfuVeYDHrZImQXMfCaYsrvBaNntIwCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNdGVzdCByZWRpcyBDQTAeFw0yNjExMjUxNDE5NThaFw0zNjEx\nMjIxNDE5NThaMBgxFjAUBgNVBAMMDXRlc3QgcmVkaXMgQ0EwWTATBgcqhkjOPQIB\nBggqhkjOPQMBBwNCAAQ0/sYNOd9q5HRwY35qWBdZJBh7luasTJkJAiFviBq8eaI/\nwRF4TKVKdsOwROLp5wCet3DlOsyqNrIKcw9XVyuno1MwUTAdBgNVHQ4EFgQUTgNL\noXEmzs1pBGhELy0MtXO+dZMwHwYDVR0jBBgwFoAUTgNLoXEmzs1pBGhELy0MtXO+\ndZMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiApChuubLGfaluN\n2xEAdglVvwnT9t3JTH4UG+LdnqJVJAIhAO0dpQPXKxaLm0y6kRhSZXNd0IP65Mw7\nmPWuIZ5DgWOW\n-----END CERTIFICATE-----\n";

#[tokio::test]
async fn redis_over_tls_with_a_ca_starts_and_reports_not_ready_on_a_plain_server() {
    shared::tls::install_crypto_provider();
    for ca in [Some(TEST_CA), None] {
        let app = spawn_app_with(|source, _| {
            source.set("REDIS_URL", redis_url().replacen("redis://", "rediss://", 1));
            if let Some(ca) = ca {
                source.set("REDIS_CA_CERT", ca);
            }
        })
        .await;
        let (status, body) = readiness(&app).await;
        assert_eq!((status, &body["redis"]), (503, &Value::from("unreachable")), "TLS to a plain server fails safe");
    }
}

#[tokio::test]
async fn a_malformed_redis_ca_stops_start_up_naming_it() {
    let database = tests::TestDatabase::create().await;
    let settings = tests::settings(&database, &redis_url(), |source| source.set("REDIS_CA_CERT", "not a certificate"));
    let error = api::startup::Application::build(settings).await.err().expect("start-up fails").to_string();
    assert!(error.contains("REDIS_CA_CERT"), "{error}");
}

#[tokio::test]
async fn the_api_does_not_start_without_a_platform_signing_key() {
    let database = tests::TestDatabase::create().await;
    let settings = tests::settings(&database, &redis_url(), |source| source.set("PLATFORM_SIGNING_KEY", ""));
    let error = api::startup::Application::build(settings).await.err().expect("start-up fails").to_string();
    assert!(error.contains("PLATFORM_SIGNING_KEY is missing") && error.contains("openssl rand -base64 32"), "{error}");
}

/// A pooled connection is not pinged before each use (that was a second
/// round trip per statement), only after a second idle: connections Postgres
/// dropped while idle, as on a failover or a restart, must still be
/// replaced before a request gets them.
#[tokio::test]
async fn connections_postgres_dropped_while_idle_are_replaced_before_use() {
    let app = spawn_app().await;
    let agent = app.register_agent(serde_json::json!({"capabilities": ["translation"]})).await;
    let id = agent.registered["id"].as_str().unwrap().to_owned();
    let paths = [format!("/v1/agents/{id}"), "/v1/agents?capabilities=translation".to_owned()];
    let reads = || {
        futures_util::future::join_all((0..24).map(|n| {
            let (app, path) = (&app, &paths[n % 2]);
            async move { app.get(path).await.status() }
        }))
    };
    assert!(reads().await.iter().all(|status| *status == 200), "every read answers at first");

    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND application_name LIKE 'agent-registry%'",
    )
    .bind(&app.database.name)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(dropped.len() >= 2, "the API's pools had connections open: {dropped:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;

    let statuses = reads().await;
    assert!(statuses.iter().all(|status| *status == 200), "no read pays for a dropped connection: {statuses:?}");
}
