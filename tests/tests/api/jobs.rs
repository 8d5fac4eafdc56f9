//! Jobs: creation with idempotency keys and an exact fee, the state machine
//! refused atomically, and listings by role and status.

use serde_json::{Value, json};
use shared::signing::{IDEMPOTENCY_KEY, SignOptions};
use tests::pipeline::spawn_pipeline;
use tests::{Method, RequestSigner, TestAgent, TestApp, spawn_app, spawn_app_with};

async fn client(app: &TestApp) -> RequestSigner {
    app.register_client().await.0
}

fn job_body(agent: &TestAgent, price: &str) -> Value {
    json!({"agent_id": agent.registered["id"], "input": {"pages": 3}, "price": price})
}

async fn create(app: &TestApp, client: &RequestSigner, body: &Value, key: Option<&str>) -> reqwest::Response {
    let url = app.url("/v1/jobs");
    let bytes = serde_json::to_vec(body).unwrap();
    let mut request = app.http.post(&url).header("content-type", "application/json");
    // The signature covers the key (the API refuses it otherwise); signing adds it to the headers.
    let headers: Vec<_> = key.map(|key| (IDEMPOTENCY_KEY, key)).into_iter().collect();
    let options = SignOptions { headers: &headers, ..SignOptions::default() };
    for (name, value) in client.sign_with("POST", &url, &bytes, &options).await.unwrap() {
        request = request.header(name, value);
    }
    request.body(bytes).send().await.unwrap()
}

#[tokio::test]
async fn the_fee_is_exact_and_the_price_capped_by_the_agent() {
    let app = spawn_app_with(|source, _| source.set("PLATFORM_FEE_PERCENT", "0.025")).await;
    let agent = app.register_agent(json!({"price": "12.50"})).await;
    let client = client(&app).await;

    let job: Value = create(&app, &client, &job_body(&agent, "0.1"), None).await.json().await.unwrap();
    assert_eq!(job["fee"], "0.0025", "0.1 × 0.025, no float rounding");
    assert_eq!(job["status"], "pending");
    assert!(job["id"].as_str().unwrap().starts_with("job_"));

    let too_dear = create(&app, &client, &job_body(&agent, "12.51"), None).await;
    assert_eq!(too_dear.status(), 422);
    let problem: Value = too_dear.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "price");

    let unknown = json!({"agent_id": "agt_00000000000000000000000000000000", "input": {}, "price": "1"});
    assert_eq!(create(&app, &client, &unknown, None).await.status(), 422);
    let by_agent = app.signed(&agent.signer, Method::POST, "/v1/jobs", &job_body(&agent, "1")).await;
    assert_eq!(by_agent.status(), 403, "agents do not hire");

    let nul = json!({"agent_id": agent.registered["id"], "input": {"text": "a\u{0}b"}, "price": "1"});
    assert_eq!(create(&app, &client, &nul, None).await.status(), 422, "text Postgres cannot store is bad input");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;

    let first = create(&app, &client, &job_body(&agent, "5"), Some("order-42")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = create(&app, &client, &job_body(&agent, "5"), Some("order-42")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the first answer, not a second job");

    let other = create(&app, &client, &job_body(&agent, "6"), Some("order-42")).await;
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&app.db).await.unwrap();
    assert_eq!(count, 1);
    for malformed in ["order 43", &"k".repeat(256)] {
        let refused = create(&app, &client, &job_body(&agent, "5"), Some(malformed)).await;
        assert_eq!(refused.status(), 422, "{malformed:?}: 1–255 visible ASCII characters, as documented");
    }

    // A retry after the agent left still gets the first answer, not a refusal.
    let deactivated = app.signed(&agent.signer, Method::DELETE, &agent.path(), &Value::Null).await;
    assert_eq!(deactivated.status(), 204);
    let late = create(&app, &client, &job_body(&agent, "5"), Some("order-42")).await;
    assert_eq!(late.status(), 201);
    assert_eq!(late.json::<Value>().await.unwrap(), first);
    let unknown = create(&app, &client, &job_body(&agent, "5"), Some("order-43")).await;
    assert_eq!(unknown.status(), 409, "a new key for a deactivated agent is refused");
}

/// The hot path's tables refer to agents, clients, jobs, events and
/// deliveries without foreign keys (see the migration
/// `hot_path_without_foreign_keys`): what keeps every reference valid is
/// that those rows are never removed nor renumbered.
#[tokio::test]
async fn the_rows_a_job_refers_to_cannot_be_deleted_truncated_or_renumbered() {
    let mut app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    assert_eq!(create(&app, &client, &job_body(&agent, "1"), None).await.status(), 201);
    // Its relay would hold the delivery's row (no Cloud Tasks answers here) and a TRUNCATE wait for it.
    app.stop().await.unwrap();

    // Table names from this fixed list only.
    for table in ["agents", "clients", "jobs", "events", "webhook_deliveries"] {
        for statement in [
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table} CASCADE"),
            format!("UPDATE {table} SET id = gen_random_uuid()"),
        ] {
            let refused = sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&app.db).await.unwrap_err();
            assert_eq!(sqlstate(&refused).as_deref(), Some("23001"), "{statement}: {refused}");
        }
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert!(rows >= 1, "{table} keeps its rows");
    }
    // The cold tables that refer to them still have their foreign keys.
    let orphan = "INSERT INTO job_ratings (job_id, agent_id, client_id, score)
                  SELECT gen_random_uuid(), agent_id, client_id, 5 FROM jobs";
    let refused = sqlx::query(orphan).execute(&app.db).await.unwrap_err();
    assert_eq!(sqlstate(&refused).as_deref(), Some("23503"), "{refused}");
}

/// The hot tables' closed sets of values are checked by a cast to a domain
/// that holds each rule (the migration `closed_values_checked_by_domains`):
/// the database still refuses a value outside each set, by the domain's
/// check, allows NULL where the column does, and no table check on those
/// tables lists values again (Postgres would parse it for every row written).
/// The columns stay `text`, so what the previous release's statements return
/// does not change under it.
#[tokio::test]
async fn the_hot_tables_refuse_a_value_outside_their_closed_sets() {
    let mut app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    assert_eq!(create(&app, &client, &job_body(&agent, "1"), Some("first")).await.status(), 201);
    // Its relay would hold the delivery's row (no Cloud Tasks answers here) and the updates wait for it.
    app.stop().await.unwrap();

    for (statement, domain_check) in [
        ("UPDATE jobs SET status = 'done'", "job_status_check"),
        ("UPDATE jobs SET status = 'expired', expired_because = 'bored'", "job_expiry_reason_check"),
        ("UPDATE jobs SET idempotency_key = ''", "job_idempotency_key_check"),
        // Without a check of its own: a fee of 0 or more and at most the price.
        ("UPDATE jobs SET price = -1", "jobs_check"),
        ("UPDATE events SET aggregate_type = 'client'", "event_aggregate_type_check"),
        ("UPDATE webhook_deliveries SET status = 'sent'", "delivery_status_check"),
        ("UPDATE webhook_deliveries SET last_outcome = 'lost'", "attempt_outcome_check"),
        (
            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, outcome)
             SELECT id, 1, now(), 1, 'lost' FROM webhook_deliveries",
            "attempt_outcome_check",
        ),
    ] {
        let refused = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        let database = refused.as_database_error();
        assert_eq!(database.and_then(|error| error.constraint()), Some(domain_check), "{statement}: {refused}");
        assert_eq!(sqlstate(&refused).as_deref(), Some("23514"), "{statement}: {refused}");
    }
    for allowed in [
        "UPDATE jobs SET status = 'expired', expired_because = 'deadline', idempotency_key = NULL",
        "UPDATE webhook_deliveries SET status = 'dead', last_outcome = NULL",
        "UPDATE webhook_deliveries SET last_outcome = 'gone'",
    ] {
        sqlx::query(allowed).execute(&app.db).await.unwrap_or_else(|error| panic!("{allowed}: {error}"));
    }
    let value_lists: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint
         WHERE contype = 'c'
           AND (pg_get_constraintdef(oid) LIKE '%ARRAY[%' OR NOT convalidated OR conname = 'jobs_price_check')
           AND conrelid = ANY (ARRAY['jobs', 'events', 'webhook_deliveries', 'delivery_attempts']::regclass[])",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        value_lists.is_empty(),
        "table checks listing values, not validated, or implied by jobs_check: {value_lists:?}"
    );
    let column_types: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT atttypid::regtype::text FROM pg_attribute
         WHERE (attrelid, attname) IN (('jobs'::regclass, 'status'), ('jobs'::regclass, 'expired_because'),
                                       ('jobs'::regclass, 'idempotency_key'), ('events'::regclass, 'aggregate_type'),
                                       ('webhook_deliveries'::regclass, 'status'),
                                       ('webhook_deliveries'::regclass, 'last_outcome'),
                                       ('delivery_attempts'::regclass, 'outcome'))",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(column_types, ["text"]);
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error.as_database_error().and_then(|error| error.code()).map(|code| code.into_owned())
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_job() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    let body = job_body(&agent, "5");
    let (a, b, c) = tokio::join!(
        create(&app, &client, &body, Some("same")),
        create(&app, &client, &body, Some("same")),
        create(&app, &client, &body, Some("same"))
    );
    let mut ids = Vec::new();
    for response in [a, b, c] {
        assert_eq!(response.status(), 201);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one job for every retry: {ids:?}");
}

#[tokio::test]
async fn only_legal_transitions_by_the_right_party_succeed() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    let job: Value = create(&app, &client, &job_body(&agent, "5"), None).await.json().await.unwrap();
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let post = async |signer: &RequestSigner, action: &str, body: Value| {
        app.signed(signer, Method::POST, &format!("{path}/{action}"), &body).await.status().as_u16()
    };

    assert_eq!(post(&client, "accept", Value::Null).await, 403, "the client cannot accept");
    assert_eq!(post(&agent.signer, "complete", json!({"result": 1})).await, 409, "pending jobs cannot complete");
    assert_eq!(post(&agent.signer, "accept", Value::Null).await, 200);
    assert_eq!(post(&agent.signer, "accept", Value::Null).await, 409, "twice is not a transition");
    assert_eq!(post(&agent.signer, "complete", json!({"result": {"ok": true}})).await, 200);
    assert_eq!(post(&client, "cancel", Value::Null).await, 409, "finished jobs stay finished");
    assert_eq!(post(&agent.signer, "fail", json!({"reason": "late"})).await, 409);

    let stranger = app.register_agent(json!({})).await;
    let hidden = app.signed(&stranger.signer, Method::GET, &path, &Value::Null).await;
    assert_eq!(hidden.status(), 404, "other parties do not see the job");
    let fetched: Value = app.signed(&client, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    assert_eq!(fetched["status"], "completed");
    assert_eq!(fetched["result"], json!({"ok": true}));
}

#[tokio::test]
async fn two_racing_transitions_cannot_both_win() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    for _ in 0..5 {
        let job: Value = create(&app, &client, &job_body(&agent, "5"), None).await.json().await.unwrap();
        let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
        // Both may start from pending; only one can happen.
        let (fail_path, cancel_path, reason) =
            (format!("{path}/fail"), format!("{path}/cancel"), json!({"reason": "no capacity"}));
        let (fail, cancel) = tokio::join!(
            app.signed(&agent.signer, Method::POST, &fail_path, &reason),
            app.signed(&client, Method::POST, &cancel_path, &Value::Null),
        );
        let mut statuses = [fail.status().as_u16(), cancel.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "exactly one wins");
        let id: shared::domain::JobId = job["id"].as_str().unwrap().parse().unwrap();
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND type <> 'job.created'")
                .bind(id.as_uuid())
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(events, 1, "one transition, one event");
    }
}

#[tokio::test]
async fn jobs_are_listed_by_role_and_status_across_pages() {
    let pipeline = spawn_pipeline().await;
    let app = &pipeline.app;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(pipeline.create_job(&client, &agent).await["id"].clone());
    }
    let accept = format!("/v1/jobs/{}/accept", ids[0].as_str().unwrap());
    assert_eq!(app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await.status(), 200);

    let list = async |signer: &RequestSigner, query: &str| {
        app.signed(signer, Method::GET, &format!("/v1/jobs?{query}"), &Value::Null).await.json::<Value>().await.unwrap()
    };
    let page = list(&client, "limit=2").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let mut seen: Vec<Value> = page["jobs"].as_array().unwrap().iter().map(|job| job["id"].clone()).collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let page = list(&client, &format!("limit=2&cursor={next}")).await;
        seen.extend(page["jobs"].as_array().unwrap().iter().map(|job| job["id"].clone()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every job once");

    let accepted = list(&agent.signer, "role=agent&status=accepted").await;
    assert_eq!(accepted["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(list(&agent.signer, "status=pending").await["jobs"].as_array().unwrap().len(), 4);
    let wrong_role = app.signed(&agent.signer, Method::GET, "/v1/jobs?role=client", &Value::Null).await;
    assert_eq!(wrong_role.status(), 403);
    let no_role = app.signed(&agent.signer, Method::GET, "/v1/jobs?role=boss", &Value::Null).await;
    assert_eq!(no_role.status(), 422);
    let problem: Value = no_role.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "role", "{problem}");
    assert_eq!(problem["errors"][0]["message"], "must be client or agent", "{problem}");
}

/// Postgres prints jsonb numbers in full (f64::MAX has 309 digits); the API
/// must read back every number it accepted (the workspace's serde_json
/// `float_roundtrip`).
#[tokio::test]
async fn inputs_with_extreme_numbers_read_back_as_written() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    for number in [f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, 1e308, 1.7976931348623155e308, -0.0, 1e21] {
        let body = json!({"agent_id": agent.registered["id"], "input": {"x": number}, "price": "1"});
        let created = create(&app, &client, &body, None).await;
        assert_eq!(created.status(), 201, "{number:e}");
        let job: Value = created.json().await.unwrap();
        let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
        let read = app.signed(&client, Method::GET, &path, &Value::Null).await;
        assert_eq!(read.status(), 200, "{number:e}: {}", read.text().await.unwrap());
        let read: Value = read.json().await.unwrap();
        assert_eq!(read["input"]["x"].as_f64(), Some(number), "{number:e}");
    }
}

#[tokio::test]
async fn the_agent_never_sees_its_clients_callback_url() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let client = client(&app).await;
    let callback = "https://acme.example.com/callbacks/tok_client_secret";
    let body = json!({"agent_id": agent.registered["id"], "input": {}, "price": "10", "callback_url": callback});
    let job: Value = create(&app, &client, &body, None).await.json().await.unwrap();
    assert_eq!(job["callback_url"], callback, "the client sees its own callback");
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());

    let by_client: Value = app.signed(&client, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    assert_eq!(by_client["callback_url"], callback);
    let read: Value = app.signed(&agent.signer, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    let listed: Value = app.signed(&agent.signer, Method::GET, "/v1/jobs", &Value::Null).await.json().await.unwrap();
    let accepted = app.signed(&agent.signer, Method::POST, &format!("{path}/accept"), &Value::Null).await;
    assert_eq!(accepted.status(), 200);
    let accepted: Value = accepted.json().await.unwrap();
    for seen in [&read, &listed["jobs"][0], &accepted] {
        assert_eq!(seen["id"], job["id"]);
        assert!(seen.get("callback_url").is_none(), "{seen}");
    }
    // Events reach the agent as webhooks: none carries the callback either.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events WHERE type LIKE 'job.%'").fetch_all(&app.db).await.unwrap();
    assert_eq!(events.len(), 2, "created, accepted");
    assert!(events.iter().all(|data| !data.contains("tok_client_secret")), "{events:?}");
}

/// A request of [`create_queued`]: its body, its idempotency key, and
/// whether it comes late, once the others wait.
struct Queued {
    body: Value,
    key: Option<&'static str>,
    late: bool,
}

fn queued(body: Value) -> Queued {
    Queued { body, key: None, late: false }
}

/// Creates a job for each request at once while writes to `jobs` wait
/// behind a held lock, so the requests queue behind the first statements;
/// then lets them go. Each answer's status and body, in order.
async fn create_queued(app: &TestApp, client: &RequestSigner, requests: &[Queued]) -> Vec<(u16, Value)> {
    let mut hold = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE jobs IN SHARE MODE").execute(&mut *hold).await.unwrap();
    let requests = requests.iter().map(|request| async {
        if request.late {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let answer = create(app, client, &request.body, request.key).await;
        (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
    });
    let (answers, ()) = tokio::join!(futures_util::future::join_all(requests), async {
        let waiting = tests::a_lock_is_awaited(&app.db, Some("jobs")).await;
        assert!(waiting, "a creation waits for the held table");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        hold.commit().await.unwrap();
    });
    answers
}

/// The created jobs' ids, from their answers.
fn created_ids(answers: &[(u16, Value)]) -> Vec<uuid::Uuid> {
    answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, job)| uuid::Uuid::parse_str(job["id"].as_str().unwrap().split_once('_').unwrap().1).unwrap())
        .collect()
}

/// (jobs, their events, their deliveries, the transactions that wrote the jobs).
async fn written(app: &TestApp, ids: &[uuid::Uuid]) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT count(*), (SELECT count(*) FROM events WHERE aggregate_id = ANY($1)),
                (SELECT count(*) FROM webhook_deliveries WHERE job_id = ANY($1)), count(DISTINCT xmin::text)
         FROM jobs WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Concurrent requests' jobs are written in shared statements
/// (`jobs::store::Creations`), and each request still gets its own answer:
/// its job, or its own refusal, whether the refusal comes back as a row
/// (the agent's terms) or fails the statement (a used idempotency key,
/// after which the statement's halves run apart, down to that job alone).
#[tokio::test]
async fn concurrent_creations_share_statements_and_each_gets_its_own_answer() {
    const JOBS: usize = 12;
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let cheap = app.register_agent(json!({"price": "2"})).await;
    let client = client(&app).await;

    let mut requests: Vec<Queued> = (0..JOBS).map(|_| queued(job_body(&agent, "5"))).collect();
    requests.insert(JOBS / 2, queued(job_body(&cheap, "5")));
    let answers = create_queued(&app, &client, &requests).await;
    let (refused, body) = &answers[JOBS / 2];
    assert_eq!((*refused, &body["errors"][0]["field"]), (422, &json!("price")), "over its agent's price: {body}");
    let created = created_ids(&answers);
    assert_eq!(created.len(), JOBS, "{answers:?}");
    let (jobs, events, deliveries, transactions) = written(&app, &created).await;
    assert_eq!((jobs, events, deliveries), (JOBS as i64, JOBS as i64, JOBS as i64), "each with its event and delivery");
    assert!(transactions < JOBS as i64 / 2, "{JOBS} queued jobs are written in a few statements: {transactions}");

    // A retry of a created job, queued among new ones once they wait, and
    // an input Postgres could not store (refused before it is queued).
    let first: Value = create(&app, &client, &job_body(&agent, "5"), Some("first")).await.json().await.unwrap();
    let mut requests: Vec<Queued> = (0..JOBS).map(|_| queued(job_body(&agent, "5"))).collect();
    requests.push(Queued { body: job_body(&agent, "5"), key: Some("first"), late: true });
    requests.push(queued(json!({"agent_id": agent.registered["id"], "input": {"text": "a\u{0}b"}, "price": "5"})));
    let answers = create_queued(&app, &client, &requests).await;
    let (replayed, job) = &answers[JOBS];
    assert_eq!((*replayed, &job["id"]), (201, &first["id"]), "the retry gets the first answer: {job}");
    let (refused, body) = &answers[JOBS + 1];
    assert_eq!((*refused, &body["errors"][0]["field"]), (422, &json!("body")), "NUL in its input: {body}");
    let created: Vec<uuid::Uuid> = created_ids(&answers[..JOBS]);
    assert_eq!(created.len(), JOBS, "the others are created: {answers:?}");
    let (jobs, events, deliveries, _) = written(&app, &created).await;
    assert_eq!((jobs, events, deliveries), (JOBS as i64, JOBS as i64, JOBS as i64));
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&app.db).await.unwrap();
    assert_eq!(all, 2 * JOBS as i64 + 1, "nothing else was written");
}
