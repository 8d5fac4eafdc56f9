//! Public reads on a real streaming replica (`DATABASE_READ_URL`): served
//! there, owner reads on the primary, the lag measured and reported, and the
//! primary taking over while the replica lags, dies under load, or comes back.

use std::time::{Duration, Instant};

use pg_cluster::Server;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tests::replica::start_cluster;
use tests::{Method, TestApp, spawn_app_on};

/// The tag only this test's agents carry: a search by it walks `agent_tags`
/// on discovery's pool, which the lag measurement never uses.
const TAG: &str = "replica-marker";

#[tokio::test]
async fn public_reads_run_on_the_replica_and_fall_back_to_the_primary() {
    let name = format!("ar_test_{}", uuid::Uuid::new_v4().simple());
    // Declared first, dropped last: after the API stopped.
    let (cluster, database) = start_cluster(&name).await;
    let replica_url = cluster.url(Server::Replica, &name);
    let app = spawn_app_on(database, |source, _| {
        source.set("DATABASE_READ_URL", &replica_url);
        source.set("READ_REPLICA_MAX_LAG", "1");
    })
    .await;
    let agent = app.register_agent(json!({"capabilities": [TAG]})).await;
    let id = agent.registered["id"].as_str().unwrap().to_owned();
    // Read at once, whatever the replica has yet: never a 404 for an agent just registered.
    assert_eq!(app.get(&format!("/v1/agents/{id}")).await.status(), 200, "a read right after the write finds it");
    wait_for_status(&app, "in_use").await;

    // Discovery served by the replica: its own statement is the last one its connection on the replica ran.
    let mut replica = PgConnection::connect(&replica_url).await.unwrap();
    assert_eq!(discovered(&app).await, 1);
    assert!(replica_ran_discovery(&mut replica).await, "the discovery statement ran on the replica");
    let readiness = readiness(&app).await;
    assert!(readiness["replica"]["lag_ms"].as_u64().is_some(), "the lag is reported: {readiness}");

    // An owner read right after a write sees it (on the primary).
    let changed = json!({"endpoint_url": "https://changed.example.com/hooks"});
    let response = app.signed(&agent.signer, Method::PATCH, &format!("/v1/agents/{id}"), &changed).await;
    assert_eq!(response.status(), 200);
    let response = app.signed(&agent.signer, Method::GET, &format!("/v1/agents/{id}/endpoint"), &Value::Null).await;
    let endpoint: Value = response.json().await.unwrap();
    assert_eq!(endpoint["endpoint_url"], "https://changed.example.com/hooks", "the owner reads its own write");

    // Replay paused: the replica falls behind past READ_REPLICA_MAX_LAG, and the primary answers.
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut replica).await.unwrap();
    app.register_agent(json!({"capabilities": [TAG]})).await;
    wait_for_status(&app, "lagging").await;
    assert_eq!(discovered(&app).await, 2, "the primary serves discovery while the replica lags");
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut replica).await.unwrap();
    wait_for_status(&app, "in_use").await;
    drop(replica);

    // The replica dies under load: every read still answers, from the primary.
    let load = tokio::spawn(load(app.base_url.clone(), id.clone(), Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop_immediately(Server::Replica).expect("the replica stops");
    let failures = load.await.unwrap();
    assert_eq!(failures, Vec::<u16>::new(), "no read failed while the replica died");
    wait_for_status(&app, "unreachable").await;
    assert_eq!(discovered(&app).await, 2);

    // It comes back: reads return to it.
    cluster.start(Server::Replica).expect("the replica starts again");
    wait_for_status(&app, "in_use").await;
    let mut replica = PgConnection::connect(&replica_url).await.unwrap();
    assert_eq!(discovered(&app).await, 2);
    assert!(replica_ran_discovery(&mut replica).await, "discovery is back on the replica");
}

/// How many of this test's agents discovery finds.
async fn discovered(app: &TestApp) -> usize {
    let response = app.get(&format!("/v1/agents?capabilities={TAG}")).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["agents"].as_array().unwrap().len()
}

async fn replica_ran_discovery(replica: &mut PgConnection) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT FROM pg_stat_activity
                        WHERE application_name = 'agent-registry replica generic plans' AND query LIKE '%agent_tags%')",
    )
    .fetch_one(replica)
    .await
    .unwrap()
}

async fn readiness(app: &TestApp) -> Value {
    app.get("/readyz").await.json().await.unwrap()
}

/// Waits (up to 10 s) until `/readyz` reports the replica as `status`.
async fn wait_for_status(app: &TestApp, status: &str) {
    let started = Instant::now();
    loop {
        let readiness = readiness(app).await;
        if readiness["replica"]["status"] == status {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the replica never became {status}: {readiness}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Discovery and agent reads, four at a time, for `length`; the statuses that were not 200.
async fn load(base_url: String, id: String, length: Duration) -> Vec<u16> {
    let http = reqwest::Client::new();
    let until = Instant::now() + length;
    let workers = (0..4).map(|worker| {
        let (http, base_url, id) = (http.clone(), base_url.clone(), id.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while Instant::now() < until {
                let path =
                    if worker % 2 == 0 { format!("/v1/agents?capabilities={TAG}") } else { format!("/v1/agents/{id}") };
                let status = http.get(format!("{base_url}{path}")).send().await.map_or(0, |r| r.status().as_u16());
                if status != 200 {
                    failures.push(status);
                }
            }
            failures
        })
    });
    let mut failures = Vec::new();
    for worker in workers.collect::<Vec<_>>() {
        failures.extend(worker.await.unwrap());
    }
    failures
}
