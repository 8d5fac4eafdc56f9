//! Reputation that cannot be farmed: ratings of jobs below
//! `RATING_MIN_PRICE` and between related parties do not count, each
//! client counts once per agent, weighted by its age and paid
//! counterparties, and the migration re-scores existing ratings so.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tests::{Method, RequestSigner, TestAgent, TestApp, TestDatabase, TestKey, expect_status, spawn_app};
use uuid::Uuid;

/// One genuine 5 from an established client: (10 × 3 + 1 × 5) / (10 + 1).
const ONE_GENUINE_FIVE: &str = "3.181818";

fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().expect("a decimal string")).unwrap()
}

/// A signed POST as a caller at `address` (Cloud Run's `X-Forwarded-For`).
async fn post_from(app: &TestApp, signer: &RequestSigner, path: &str, body: &Value, address: &str) -> Value {
    let url = app.url(path);
    let bytes = serde_json::to_vec(body).unwrap();
    let mut request = app.http.post(&url).header("content-type", "application/json").header("x-forwarded-for", address);
    for (name, value) in signer.sign("POST", &url, &bytes).await.unwrap() {
        request = request.header(name, value);
    }
    expect_status(request.body(bytes).send().await.unwrap(), 201).await
}

/// A job of `agent` for `client` at `price`, accepted and completed.
async fn finished_job(app: &TestApp, client: &RequestSigner, agent: &TestAgent, price: &str) -> Value {
    let body = json!({"agent_id": agent.registered["id"], "input": {"text": "Bonjour"}, "price": price});
    let job = expect_status(app.signed(client, Method::POST, "/v1/jobs", &body).await, 201).await;
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{path}/accept"), &Value::Null).await, 200).await;
    let result = json!({"result": {"text": "Hello"}});
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{path}/complete"), &result).await, 200).await
}

async fn rate(app: &TestApp, client: &RequestSigner, job: &Value, score: i64) -> Value {
    let path = format!("/v1/jobs/{}/rating", job["id"].as_str().unwrap());
    expect_status(app.signed(client, Method::POST, &path, &json!({"score": score})).await, 201).await
}

/// Agents other than the one under test, for established clients to have
/// paid work with.
async fn counterparties(app: &TestApp) -> Vec<TestAgent> {
    let mut agents = Vec::new();
    for _ in 0..5 {
        agents.push(app.register_agent(json!({})).await);
    }
    agents
}

/// Makes `client` established: paid jobs with five distinct agents, and
/// (in the database) registered 60 days ago.
async fn establish(app: &TestApp, client: &RequestSigner, client_id: &str, others: &[TestAgent]) {
    for other in others {
        finished_job(app, client, other, "10").await;
    }
    backdate(&app.db, "clients", client_id).await;
}

async fn backdate(db: &PgPool, table: &str, prefixed_id: &str) {
    let id = Uuid::parse_str(&prefixed_id[4..]).unwrap();
    let statement = format!("UPDATE {table} SET created_at = created_at - interval '60 days' WHERE id = $1");
    let updated = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(id).execute(db).await.unwrap();
    assert_eq!(updated.rows_affected(), 1);
}

async fn established_client(app: &TestApp, others: &[TestAgent]) -> RequestSigner {
    let (client, registered) = app.register_client().await;
    establish(app, &client, registered["id"].as_str().unwrap(), others).await;
    client
}

/// How far one genuine 5 from an established client moves a new agent.
async fn genuine_move(app: &TestApp, others: &[TestAgent]) -> Decimal {
    let agent = app.register_agent(json!({})).await;
    let client = established_client(app, others).await;
    let job = finished_job(app, &client, &agent, "10").await;
    rate(app, &client, &job, 5).await;
    let standing = expect_status(app.get(&agent.path()).await, 200).await;
    assert_eq!(standing["score"], ONE_GENUINE_FIVE);
    decimal(&standing["score"]) - Decimal::from(3)
}

/// 50 fresh clients each hire a new agent at `price` and rate the job 5;
/// asserts that this moves its score less than one genuine 5 moves
/// another's. The agent, its standing, and the ratings as answered.
async fn farm(app: &TestApp, price: &str) -> (TestAgent, Value, Vec<Value>) {
    let others = counterparties(app).await;
    let genuine = genuine_move(app, &others).await;
    let agent = app.register_agent(json!({})).await;
    let mut ratings = Vec::new();
    for _ in 0..50 {
        let (client, _) = app.register_client().await;
        let job = finished_job(app, &client, &agent, price).await;
        ratings.push(rate(app, &client, &job, 5).await);
    }
    let standing = expect_status(app.get(&agent.path()).await, 200).await;
    assert!(decimal(&standing["score"]) - Decimal::from(3) < genuine, "{standing}");
    (agent, standing, ratings)
}

#[tokio::test]
async fn fifty_free_jobs_rated_five_move_the_score_less_than_one_genuine_five() {
    let app = spawn_app().await;
    let (farmed, standing, ratings) = farm(&app, "0").await;
    for rating in ratings {
        assert_eq!(
            (&rating["counted"], &rating["uncounted_reason"], &rating["weight"]),
            (&json!(false), &json!("below_min_price"), &json!("0")),
            "{rating}"
        );
    }
    assert_eq!(
        (&standing["rating_count"], &standing["uncounted_rating_count"], &standing["rating"]),
        (&json!(0), &json!(50), &json!("0.00")),
        "none counts, not even toward the plain mean"
    );

    // Listed, each saying why it does not count, never who gave it.
    let page = expect_status(app.get(&format!("{}/ratings?limit=100", farmed.path())).await, 200).await;
    let listed = page["ratings"].as_array().unwrap();
    assert_eq!(listed.len(), 50);
    for rating in listed {
        assert_eq!(rating["uncounted_reason"], "below_min_price", "{rating}");
        assert!(rating.get("client_id").is_none(), "{rating}");
    }
}

#[tokio::test]
async fn fifty_fresh_clients_paying_the_minimum_move_the_score_less_than_one_genuine_five() {
    let app = spawn_app().await;
    let (farmed, standing, ratings) = farm(&app, "1.00").await;
    for rating in ratings {
        assert_eq!((&rating["counted"], &rating["uncounted_reason"]), (&json!(true), &Value::Null), "{rating}");
        assert_eq!(decimal(&rating["weight"]), Decimal::ZERO, "less than a whole day old: {rating}");
    }
    assert_eq!(
        (&standing["rating_count"], &standing["uncounted_rating_count"], &standing["rating"]),
        (&json!(50), &json!(0), &json!("0.00")),
        "counted, at a weight of 0, so not even the weighted mean `min_rating` filters on moves"
    );

    // The weights grow with the clients' age: a month on, the refresh
    // brings them to 1/5 each (one paid counterparty of five): still each
    // client once, so fifty of them outweigh the prior, as they should.
    sqlx::query("UPDATE clients SET created_at = created_at - interval '30 days'").execute(&app.db).await.unwrap();
    let prior = shared::settings::ReputationPrior { weight: Decimal::TEN, mean: Decimal::from(3) };
    let min_price = "1.00".parse().unwrap();
    api::background::reputation::follow_settings(&app.db, prior, min_price).await.unwrap();
    let standing = expect_status(app.get(&farmed.path()).await, 200).await;
    assert_eq!(standing["score"], "4.000000", "(10 × 3 + 50 × 0.2 × 5) / (10 + 50 × 0.2)");
}

#[tokio::test]
async fn a_client_and_agent_sharing_a_signing_key_do_not_count() {
    let app = spawn_app().await;
    let others = counterparties(&app).await;
    // The agent registers with a key and rotates it away; a client then
    // registers with that key.
    let shared_key = TestKey::generate();
    let registration = shared_key.registration(json!({}));
    let response = app.signed(&shared_key.registration_signer(), Method::POST, "/v1/agents", &registration).await;
    let registered = expect_status(response, 201).await;
    let agent_id = registered["id"].as_str().unwrap();
    let next_key = TestKey::generate();
    let rotation = next_key.rotation_to(agent_id, &shared_key.public_key);
    let rotate = format!("/v1/agents/{agent_id}/keys");
    expect_status(app.signed(&shared_key.signer(agent_id), Method::POST, &rotate, &rotation).await, 200).await;
    let agent = TestAgent { signer: next_key.signer(agent_id), registered };

    let body = json!({"name": "Sock puppet", "public_key": shared_key.public_key});
    let response = app.signed(&shared_key.registration_signer(), Method::POST, "/v1/clients", &body).await;
    let client_registered = expect_status(response, 201).await;
    let client_id = client_registered["id"].as_str().unwrap();
    let client = shared_key.signer(client_id);
    establish(&app, &client, client_id, &others).await;

    let job = finished_job(&app, &client, &agent, "10").await;
    let rating = rate(&app, &client, &job, 5).await;
    let standing = expect_status(app.get(&agent.path()).await, 200).await;
    assert_eq!(standing["score"], "3.000000", "an established client's 5 would move it: {standing}");
    assert_eq!((&standing["rating_count"], &standing["uncounted_rating_count"]), (&json!(0), &json!(1)));
    assert_eq!((&rating["counted"], &rating["uncounted_reason"]), (&json!(false), &json!("same_signing_key")));
}

#[tokio::test]
async fn a_client_and_agent_registered_from_one_address_within_a_day_do_not_count() {
    let app = spawn_app().await;
    let others = counterparties(&app).await;
    let agent_key = TestKey::generate();
    let registered = post_from(
        &app,
        &agent_key.registration_signer(),
        "/v1/agents",
        &agent_key.registration(json!({})),
        "203.0.113.9",
    )
    .await;
    let agent_id = registered["id"].as_str().unwrap().to_owned();
    let agent = TestAgent { signer: agent_key.signer(&agent_id), registered };
    let client_key = TestKey::generate();
    let body = json!({"name": "Same desk", "public_key": client_key.public_key});
    let client_registered =
        post_from(&app, &client_key.registration_signer(), "/v1/clients", &body, "203.0.113.9").await;
    let client_id = client_registered["id"].as_str().unwrap();
    let client = client_key.signer(client_id);
    establish(&app, &client, client_id, &others).await;
    backdate(&app.db, "agents", &agent_id).await; // Still registered within a day of each other.

    let job = finished_job(&app, &client, &agent, "10").await;
    let rating = rate(&app, &client, &job, 5).await;
    let standing = expect_status(app.get(&agent.path()).await, 200).await;
    assert_eq!(standing["score"], "3.000000", "an established client's 5 would move it: {standing}");
    assert_eq!(standing["uncounted_rating_count"], 1);
    assert_eq!((&rating["counted"], &rating["uncounted_reason"]), (&json!(false), &json!("same_registration_address")));

    // Another address is another party: a rating of the same agent by an
    // established client registered elsewhere counts in full.
    let elsewhere_key = TestKey::generate();
    let body = json!({"name": "Elsewhere", "public_key": elsewhere_key.public_key});
    let elsewhere = post_from(&app, &elsewhere_key.registration_signer(), "/v1/clients", &body, "198.51.100.4").await;
    let elsewhere_id = elsewhere["id"].as_str().unwrap();
    let elsewhere = elsewhere_key.signer(elsewhere_id);
    establish(&app, &elsewhere, elsewhere_id, &others).await;
    let job = finished_job(&app, &elsewhere, &agent, "10").await;
    assert_eq!(rate(&app, &elsewhere, &job, 5).await["weight"], "1.0");
    assert_eq!(expect_status(app.get(&agent.path()).await, 200).await["score"], ONE_GENUINE_FIVE);
}

#[tokio::test]
async fn each_client_counts_once_per_agent_as_its_mean() {
    let app = spawn_app().await;
    let others = counterparties(&app).await;
    let agent = app.register_agent(json!({})).await;
    let client = established_client(&app, &others).await;
    for score in [5, 5, 5, 1] {
        let job = finished_job(&app, &client, &agent, "10").await;
        rate(&app, &client, &job, score).await;
    }
    let standing = expect_status(app.get(&agent.path()).await, 200).await;
    assert_eq!(
        (&standing["score"], &standing["rating"], &standing["rating_count"]),
        (&json!("3.090909"), &json!("4.00"), &json!(4)),
        "(10 × 3 + 1 × 4) / (10 + 1): four ratings, one client of weight 1"
    );
    let page = expect_status(app.get(&format!("{}/ratings", agent.path())).await, 200).await;
    for rating in page["ratings"].as_array().unwrap() {
        assert_eq!(rating["weight"], "0.3", "the client's weight split over its four, to one decimal: {rating}");
    }
}

/// The migration's version: databases are migrated up to just before it,
/// seeded as the previous revision left them, then migrated on.
const REPUTATION_MIGRATION: i64 = 20261206000001;

#[tokio::test]
async fn the_migration_rescores_existing_ratings_under_the_new_rules() {
    let database = database_before(REPUTATION_MIGRATION).await;
    let db = PgPool::connect(&database.url).await.unwrap();
    let (free_agent, paid_agent, fresh, aged) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let others: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for agent in [free_agent, paid_agent].iter().chain(&others) {
        sqlx::query(
            "INSERT INTO agents (id, name, capabilities, endpoint_url, public_key, price, webhook_secret_sealed)
             VALUES ($1, 'Old', '{translation}', 'https://old.example.com/', $2, 10, '\\x00')",
        )
        .bind(agent)
        .bind(Uuid::new_v4().as_bytes().repeat(2))
        .execute(&db)
        .await
        .unwrap();
    }
    for (client, age_days) in [(fresh, 0), (aged, 60)] {
        sqlx::query(
            "INSERT INTO clients (id, name, public_key, webhook_secret_sealed, created_at)
             VALUES ($1, 'Old', $2, '\\x00', now() - make_interval(days => $3))",
        )
        .bind(client)
        .bind(Uuid::new_v4().as_bytes().repeat(2))
        .bind(age_days)
        .execute(&db)
        .await
        .unwrap();
    }
    // Rated as the previous revision did: every rating counted, once each.
    let jobs = [(fresh, free_agent, "0", Some(5)), (aged, paid_agent, "10", Some(5))]
        .into_iter()
        .chain(others.iter().map(|other| (aged, *other, "10", None)));
    for (client, agent, price, score) in jobs {
        let job = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO jobs (id, client_id, agent_id, status, input, price, fee)
             VALUES ($1, $2, $3, 'completed', '{}', $4::numeric, 0)",
        )
        .bind(job)
        .bind(client)
        .bind(agent)
        .bind(price)
        .execute(&db)
        .await
        .unwrap();
        if let Some(score) = score {
            sqlx::query("INSERT INTO job_ratings (job_id, agent_id, client_id, score) VALUES ($1, $2, $3, $4)")
                .bind(job)
                .bind(agent)
                .bind(client)
                .bind(score as i16)
                .execute(&db)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE agents SET rating = 5, rating_sum = 5, rating_count = 1, score = reputation_score(5, 1)
                 WHERE id = $1",
            )
            .bind(agent)
            .execute(&db)
            .await
            .unwrap();
        }
    }

    shared::db::MIGRATOR.run(&db).await.unwrap();

    let standing = |agent: Uuid| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, i32)>("SELECT score::text, rating_count FROM agents WHERE id = $1")
                .bind(agent)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(standing(free_agent).await, ("3.000000".to_owned(), 0), "the free job's 5 no longer counts");
    assert_eq!(standing(paid_agent).await, (ONE_GENUINE_FIVE.to_owned(), 1), "the established client's does");
    let uncounted: i32 = sqlx::query_scalar("SELECT uncounted_rating_count FROM agents WHERE id = $1")
        .bind(free_agent)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(uncounted, 1);
    let reason: Option<String> = sqlx::query_scalar("SELECT uncounted_reason FROM job_ratings WHERE agent_id = $1")
        .bind(free_agent)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("below_min_price"));
    db.close().await;
}

/// A new database with the migrations before `version` applied, through a
/// migrator over a copy of those files.
async fn database_before(version: i64) -> TestDatabase {
    let name = format!("ar_test_{}", Uuid::new_v4().simple());
    let mut url = reqwest::Url::parse(&tests::admin_database_url()).unwrap();
    let mut admin = PgConnection::connect(url.as_str()).await.unwrap();
    admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await.unwrap();
    url.set_path(&name);
    let database = TestDatabase { name, url: url.to_string() };

    let directory = std::env::temp_dir().join(&database.name);
    std::fs::create_dir_all(&directory).unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/migrations");
    for entry in std::fs::read_dir(migrations).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let file_version: i64 = file.split('_').next().unwrap().parse().unwrap();
        if file_version < version {
            std::fs::copy(&path, directory.join(file)).unwrap();
        }
    }
    let pool = PgPool::connect(&database.url).await.unwrap();
    sqlx::migrate::Migrator::new(directory.as_path()).await.unwrap().run(&pool).await.unwrap();
    pool.close().await;
    std::fs::remove_dir_all(directory).unwrap();
    database
}
