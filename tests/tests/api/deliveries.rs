//! Deliveries as their recipients see them: resend caps, listings (newest
//! attempts, pages, filters), recover, and the retention of attempts. No
//! Cloud Tasks here: deliveries stay pending, and the tests end rounds (and
//! let minutes pass) through the database, as the worker and the clock would.

use std::collections::HashSet;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};
use tests::{Method, RequestSigner, TestAgent, TestApp, spawn_app, spawn_app_with};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CALLBACK: &str = "https://client.example.com/callbacks";

/// The API with a Cloud Tasks that refuses every call at once (404), so the
/// relay lets go of a pending delivery at once: while Cloud Tasks is
/// unreachable the client retries, and the relay holds the row (which the
/// tests update) for up to its 10 s timeout.
async fn spawn_app_refused_by_cloud_tasks() -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let refusing = axum::Router::new().fallback(|| async { axum::http::StatusCode::NOT_FOUND });
    tokio::spawn(async move { axum::serve(listener, refusing).await });
    spawn_app_with(|source, _| source.set("CLOUD_TASKS_ENDPOINT", &endpoint)).await
}

/// Status, headers and JSON body of an answer.
async fn answer(response: reqwest::Response) -> (u16, HeaderMap, Value) {
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

async fn expect(response: reqwest::Response, status: u16) -> Value {
    let (actual, _, body) = answer(response).await;
    assert_eq!(actual, status, "{body}");
    body
}

/// A job from `client` to `agent`, with a callback; its `job.created` delivery goes to the agent.
async fn create_job(app: &TestApp, client: &RequestSigner, agent: &TestAgent) -> Value {
    let body =
        json!({"agent_id": agent.registered["id"], "input": {"pages": 3}, "price": "10", "callback_url": CALLBACK});
    expect(app.signed(client, Method::POST, "/v1/jobs", &body).await, 201).await
}

/// The deliveries of `job` to `party`, as it lists them.
async fn job_deliveries(app: &TestApp, party: &RequestSigner, job: &Value) -> Vec<Value> {
    let path = format!("/v1/jobs/{}/deliveries", job["id"].as_str().unwrap());
    let listed = expect(app.signed(party, Method::GET, &path, &Value::Null).await, 200).await;
    listed.as_array().unwrap().clone()
}

async fn agent_delivery(app: &TestApp, agent: &TestAgent, job: &Value) -> String {
    job_deliveries(app, &agent.signer, job).await[0]["id"].as_str().unwrap().to_owned()
}

fn uuid_of(id: &str) -> Uuid {
    Uuid::try_parse(id.split_once('_').unwrap().1).unwrap()
}

fn dlv(id: Uuid) -> String {
    format!("dlv_{}", id.simple())
}

fn id_of(party: &Value) -> &str {
    party["id"].as_str().unwrap()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// What the worker does at the end of a round.
async fn end_round(db: &PgPool, id: &str, status: &str) {
    sqlx::query("UPDATE webhook_deliveries SET status = $2, finished_at = now() WHERE id = $1")
        .bind(uuid_of(id))
        .bind(status)
        .execute(db)
        .await
        .unwrap();
}

/// As if the last resend was a minute earlier.
async fn a_minute_passes(db: &PgPool, id: &str) {
    sqlx::query("UPDATE webhook_deliveries SET resent_at = resent_at - interval '1 minute' WHERE id = $1")
        .bind(uuid_of(id))
        .execute(db)
        .await
        .unwrap();
}

/// The delivery died `minutes` ago.
async fn died(db: &PgPool, id: &str, minutes: i32) {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'dead', finished_at = now() - make_interval(mins => $2),
                last_error = 'the endpoint answered 503' WHERE id = $1",
    )
    .bind(uuid_of(id))
    .bind(minutes)
    .execute(db)
    .await
    .unwrap();
}

async fn round_of(db: &PgPool, id: &str) -> (String, i32, i32) {
    sqlx::query_as("SELECT status, generation, resends FROM webhook_deliveries WHERE id = $1")
        .bind(uuid_of(id))
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_delivery_is_resent_at_most_once_a_minute_and_twenty_times_in_all() {
    let app = spawn_app_refused_by_cloud_tasks().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let job = create_job(&app, &client, &agent).await;
    let id = agent_delivery(&app, &agent, &job).await;
    let resend = format!("/v1/deliveries/{id}/resend");
    let resend_now = || app.signed(&agent.signer, Method::POST, &resend, &Value::Null);

    let still_sending = expect(resend_now().await, 409).await;
    assert!(still_sending["detail"].as_str().unwrap().contains("still being sent"), "{still_sending}");
    expect(app.signed(&client, Method::POST, &resend, &Value::Null).await, 404).await;

    end_round(&app.db, &id, "dead").await;
    expect(resend_now().await, 202).await;
    assert_eq!(round_of(&app.db, &id).await, ("pending".to_owned(), 1, 1));
    let (status, headers, problem) = answer(resend_now().await).await;
    assert_eq!(status, 429, "a second resend within the minute: {problem}");
    assert_eq!(problem["type"], "urn:agent-registry:problem:too-soon");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry_after), "seconds until the minute is over: {retry_after}");

    for resends in 2..=20 {
        end_round(&app.db, &id, "delivered").await;
        a_minute_passes(&app.db, &id).await;
        expect(resend_now().await, 202).await;
        assert_eq!(round_of(&app.db, &id).await, ("pending".to_owned(), resends, resends));
    }
    end_round(&app.db, &id, "dead").await;
    a_minute_passes(&app.db, &id).await;
    let (status, headers, problem) = answer(resend_now().await).await;
    assert_eq!(status, 429, "the 21st resend: {problem}");
    assert_eq!(problem["type"], "urn:agent-registry:problem:limit-reached");
    assert!(problem["detail"].as_str().unwrap().contains("started over 20 times"), "{problem}");
    assert!(headers.get("retry-after").is_none(), "waiting does not help");
    assert_eq!(round_of(&app.db, &id).await, ("dead".to_owned(), 20, 20), "nothing changed");
    assert_eq!(job_deliveries(&app, &agent.signer, &job).await[0]["resends"], 20);
}

#[tokio::test]
async fn of_two_racing_resends_exactly_one_wins() {
    let app = spawn_app_refused_by_cloud_tasks().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let id = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    let resend = format!("/v1/deliveries/{id}/resend");
    for round in 1..=5 {
        end_round(&app.db, &id, "dead").await;
        a_minute_passes(&app.db, &id).await;
        let (first, second) = tokio::join!(
            app.signed(&agent.signer, Method::POST, &resend, &Value::Null),
            app.signed(&agent.signer, Method::POST, &resend, &Value::Null),
        );
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [202, 429], "round {round}: one resend, the other too soon");
        assert_eq!(round_of(&app.db, &id).await, ("pending".to_owned(), round, round), "one new round each time");
    }
}

#[tokio::test]
async fn a_listed_delivery_shows_its_newest_twenty_attempts_and_how_many_it_had() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let job = create_job(&app, &client, &agent).await;
    let id = agent_delivery(&app, &agent, &job).await;
    let quiet = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    // 25 attempts: 10 in the first round, 15 after a resend.
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, generation, started_at, latency_ms, response_status, error, outcome)
         SELECT $1, CASE WHEN n <= 10 THEN n ELSE n - 10 END, CASE WHEN n <= 10 THEN 0 ELSE 1 END,
                now() - make_interval(mins => 30 - n), 12, 503, 'the endpoint answered 503', 'retry'
         FROM generate_series(1, 25) AS n",
    )
    .bind(uuid_of(&id))
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'dispatched', dispatched_at = now(),
                next_attempt_at = '2030-01-01T00:00:00Z' WHERE id = $1",
    )
    .bind(uuid_of(&id))
    .execute(&app.db)
    .await
    .unwrap();

    let expected: Vec<(i64, i64)> = (6..=10).map(|n| (n, 0)).chain((1..=15).map(|n| (n, 1))).collect();
    let page = expect(
        app.signed(&agent.signer, Method::GET, &format!("{}/deliveries", agent.path()), &Value::Null).await,
        200,
    )
    .await;
    let from_job = job_deliveries(&app, &agent.signer, &job).await.remove(0);
    for listed in [page["deliveries"].as_array().unwrap().iter().find(|d| d["id"] == id.as_str()).unwrap(), &from_job] {
        assert_eq!(listed["attempt_count"], 25);
        let shown: Vec<(i64, i64)> = listed["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|attempt| (attempt["attempt"].as_i64().unwrap(), attempt["generation"].as_i64().unwrap()))
            .collect();
        assert_eq!(shown, expected, "the newest 20, oldest first");
        assert_eq!(listed["next_attempt_at"], "2030-01-01T00:00:00Z");
        assert_eq!(listed["resends"], 0);
    }
    let without = page["deliveries"].as_array().unwrap().iter().find(|d| d["id"] == quiet.as_str()).unwrap();
    assert_eq!((&without["attempt_count"], &without["attempts"]), (&json!(0), &json!([])));

    end_round(&app.db, &id, "dead").await;
    let finished = job_deliveries(&app, &agent.signer, &job).await.remove(0);
    assert!(finished["next_attempt_at"].is_null(), "no next attempt once finished: {finished}");
}

/// Every page of `path?query` with `limit`, following `next_cursor`: the ids in order.
async fn walk(app: &TestApp, signer: &RequestSigner, path: &str, query: &str, limit: usize) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let after = cursor.map(|cursor| format!("&cursor={cursor}")).unwrap_or_default();
        let url = format!("{path}?{query}&limit={limit}{after}");
        let page = expect(app.signed(signer, Method::GET, &url, &Value::Null).await, 200).await;
        let deliveries = page["deliveries"].as_array().unwrap();
        assert!(deliveries.len() <= limit, "{url}");
        ids.extend(deliveries.iter().map(|delivery| delivery["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// The ids `recipient_column` = `recipient` that `filter` keeps, newest first, from the database.
async fn newest_first(db: &PgPool, recipient: &str, filter: &str) -> Vec<String> {
    let sql = format!(
        "SELECT d.id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE (d.agent_id = $1 OR d.client_id = $1) AND {filter} ORDER BY d.created_at DESC, d.id DESC"
    );
    let ids: Vec<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(uuid_of(recipient)).fetch_all(db).await.unwrap();
    ids.into_iter().map(dlv).collect()
}

#[tokio::test]
async fn an_agents_deliveries_page_newest_first_and_filter() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let mut jobs = Vec::new();
    for _ in 0..7 {
        jobs.push(create_job(&app, &client, &agent).await);
    }
    for job in &jobs[..2] {
        let cancel = format!("/v1/jobs/{}/cancel", job["id"].as_str().unwrap());
        expect(app.signed(&client, Method::POST, &cancel, &Value::Null).await, 200).await;
    }
    // Creation an hour apart, two at a time: ties are broken by id.
    sqlx::query(
        "WITH ranked AS (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM webhook_deliveries)
         UPDATE webhook_deliveries d SET created_at = '2026-11-01T00:00:00Z'::timestamptz + make_interval(hours => (n / 2)::int)
         FROM ranked WHERE d.id = ranked.id",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let agent_id = id_of(&agent.registered);
    let path = format!("{}/deliveries", agent.path());

    let all = newest_first(&app.db, agent_id, "true").await;
    assert_eq!(all.len(), 9, "7 job.created and 2 job.cancelled");
    for limit in [1, 2, 4, 100] {
        assert_eq!(walk(&app, &agent.signer, &path, "", limit).await, all, "limit {limit}");
    }
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 9, "no duplicates");

    let dead = vec![all[1].clone(), all[4].clone(), all[8].clone()];
    for id in &dead {
        end_round(&app.db, id, "dead").await;
    }
    assert_eq!(walk(&app, &agent.signer, &path, "status=dead", 2).await, dead);
    // Unfiltered, the page is merged from every status's own walk.
    for limit in [1, 2, 4, 100] {
        assert_eq!(walk(&app, &agent.signer, &path, "", limit).await, all, "two statuses, limit {limit}");
    }
    assert_eq!(walk(&app, &agent.signer, &path, "status=pending", 2).await.len(), 6);
    let cancelled = newest_first(&app.db, agent_id, "e.type = 'job.cancelled'").await;
    assert_eq!(cancelled.len(), 2);
    assert_eq!(walk(&app, &agent.signer, &path, "event_type=job.cancelled", 1).await, cancelled);
    let dead_created = newest_first(&app.db, agent_id, "e.type = 'job.created' AND d.status = 'dead'").await;
    assert_eq!(walk(&app, &agent.signer, &path, "event_type=job.created&status=dead", 1).await, dead_created);

    // since is inclusive, until exclusive: 02:00 and 03:00, two deliveries each.
    let window = "since=2026-11-01T02:00:00Z&until=2026-11-01T04:00:00Z";
    let expected = newest_first(
        &app.db,
        agent_id,
        "d.created_at >= '2026-11-01T02:00:00Z' AND d.created_at < '2026-11-01T04:00:00Z'",
    )
    .await;
    assert_eq!(expected.len(), 4);
    assert_eq!(walk(&app, &agent.signer, &path, window, 3).await, expected);
    assert_eq!(walk(&app, &agent.signer, &path, "since=2026-11-01T04:00:00Z", 3).await, all[..2]);
    assert_eq!(walk(&app, &agent.signer, &path, "until=2026-11-01T01:00:00Z", 3).await, all[8..]);

    for (query, field) in [
        ("status=lost", "status"),
        ("event_type=Job%20Created", "event_type"),
        ("since=yesterday", "since"),
        ("since=2026-11-01T04:00:00Z&until=2026-11-01T04:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage", "cursor"),
        ("colour=red", "colour"),
    ] {
        let url = format!("{path}?{query}");
        let problem = expect(app.signed(&agent.signer, Method::GET, &url, &Value::Null).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    let other = app.register_agent(json!({})).await;
    expect(app.signed(&other.signer, Method::GET, &path, &Value::Null).await, 403).await;
    expect(app.signed(&client, Method::GET, &path, &Value::Null).await, 403).await;
    assert_eq!(app.get(&path).await.status(), 401, "signed reads only");
}

#[tokio::test]
async fn a_clients_callbacks_page_apart_from_its_agents_deliveries() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    for _ in 0..3 {
        let job = create_job(&app, &client, &agent).await;
        let accept = format!("/v1/jobs/{}/accept", job["id"].as_str().unwrap());
        expect(app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await, 200).await;
    }
    let path = format!("/v1/clients/{}/deliveries", id_of(&registered));
    let callbacks = walk(&app, &client, &path, "", 2).await;
    assert_eq!(callbacks, newest_first(&app.db, id_of(&registered), "true").await);
    assert_eq!(callbacks.len(), 3);
    let page = expect(app.signed(&client, Method::GET, &path, &Value::Null).await, 200).await;
    for callback in page["deliveries"].as_array().unwrap() {
        assert_eq!((&callback["event_type"], &callback["target_url"]), (&json!("job.accepted"), &json!(CALLBACK)));
    }
    let to_agent = walk(&app, &agent.signer, &format!("{}/deliveries", agent.path()), "", 100).await;
    assert_eq!(to_agent.len(), 3, "the agent's own: job.created");
    assert!(to_agent.iter().all(|id| !callbacks.contains(id)), "neither sees the other's");
    expect(app.signed(&agent.signer, Method::GET, &path, &Value::Null).await, 403).await;
}

async fn recover(app: &TestApp, signer: &RequestSigner, path: &str, since: OffsetDateTime) -> reqwest::Response {
    app.signed(signer, Method::POST, &format!("{path}/deliveries/recover"), &json!({"since": rfc3339(since)})).await
}

#[tokio::test]
async fn recover_queues_a_recipients_dead_deliveries_since_a_time_once_a_minute() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let neighbour = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let job = create_job(&app, &client, &agent).await;
        mine.push(agent_delivery(&app, &agent, &job).await);
        let accept = format!("/v1/jobs/{}/accept", job["id"].as_str().unwrap());
        expect(app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await, 200).await;
    }
    let theirs = agent_delivery(&app, &neighbour, &create_job(&app, &client, &neighbour).await).await;
    let callback = walk(&app, &client, &format!("/v1/clients/{}/deliveries", id_of(&registered)), "", 100).await;
    let (three_days, hour, ten_minutes) = (3 * 24 * 60, 60, 10);
    for (id, minutes) in [(&mine[0], three_days), (&mine[1], hour), (&mine[2], ten_minutes), (&theirs, ten_minutes)] {
        died(&app.db, id, minutes).await;
    }
    died(&app.db, &callback[0], 30).await;
    let now = OffsetDateTime::now_utc();

    let too_far = expect(recover(&app, &agent.signer, &agent.path(), now - Duration::days(15)).await, 422).await;
    assert_eq!(too_far["errors"][0]["field"], "since", "{too_far}");
    let future = expect(recover(&app, &agent.signer, &agent.path(), now + Duration::hours(1)).await, 422).await;
    assert_eq!(future["errors"][0]["field"], "since", "{future}");
    expect(recover(&app, &neighbour.signer, &agent.path(), now - Duration::hours(2)).await, 403).await;

    let recovered = expect(recover(&app, &agent.signer, &agent.path(), now - Duration::hours(2)).await, 202).await;
    assert_eq!(recovered, json!({"queued": 2, "more": false, "at_cap": 0, "refused": 0}));
    assert_eq!(round_of(&app.db, &mine[0]).await.0, "dead", "died before the time");
    for id in &mine[1..] {
        assert_eq!(round_of(&app.db, id).await, ("pending".to_owned(), 1, 1), "a new round, counted like a resend");
    }
    assert_eq!(round_of(&app.db, &theirs).await.0, "dead", "another agent's are untouched");
    assert_eq!(round_of(&app.db, &callback[0]).await.0, "dead", "so are the client's");

    let (status, headers, problem) =
        answer(recover(&app, &agent.signer, &agent.path(), now - Duration::days(4)).await).await;
    assert_eq!(status, 429, "once a minute: {problem}");
    assert_eq!(problem["type"], "urn:agent-registry:problem:too-soon");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(round_of(&app.db, &mine[0]).await.0, "dead", "and queues nothing");

    let client_path = format!("/v1/clients/{}", id_of(&registered));
    let recovered = expect(recover(&app, &client, &client_path, now - Duration::hours(1)).await, 202).await;
    assert_eq!(
        recovered,
        json!({"queued": 1, "more": false, "at_cap": 0, "refused": 0}),
        "each recipient has its own minute"
    );
    assert_eq!(round_of(&app.db, &callback[0]).await.0, "pending");
    assert_eq!(round_of(&app.db, &theirs).await.0, "dead");
}

/// Sets how many new rounds the delivery has had.
async fn had_rounds(db: &PgPool, id: &str, rounds: i32) {
    sqlx::query("UPDATE webhook_deliveries SET resends = $2 WHERE id = $1")
        .bind(uuid_of(id))
        .bind(rounds)
        .execute(db)
        .await
        .unwrap();
}

#[tokio::test]
async fn recoveries_and_resends_share_one_cap_of_twenty_rounds() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let below = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    let at_cap = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    for (id, rounds) in [(&below, 19), (&at_cap, 20)] {
        died(&app.db, id, 5).await;
        had_rounds(&app.db, id, rounds).await;
    }

    let since = OffsetDateTime::now_utc() - Duration::hours(1);
    let recovered = expect(recover(&app, &agent.signer, &agent.path(), since).await, 202).await;
    assert_eq!(recovered, json!({"queued": 1, "more": false, "at_cap": 1, "refused": 0}), "the capped one stays dead");
    assert_eq!(round_of(&app.db, &below).await, ("pending".to_owned(), 1, 20), "the 20th round");
    assert_eq!(round_of(&app.db, &at_cap).await, ("dead".to_owned(), 0, 20));

    // The recovered round counted: a resend after it is refused, naming the delivery.
    died(&app.db, &below, 0).await;
    let (status, _, problem) =
        answer(app.signed(&agent.signer, Method::POST, &format!("/v1/deliveries/{below}/resend"), &Value::Null).await)
            .await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["type"], "urn:agent-registry:problem:limit-reached");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&below) && detail.contains("started over 20 times"), "{problem}");
    assert_eq!(round_of(&app.db, &below).await, ("dead".to_owned(), 1, 20), "nothing changed");
}

#[tokio::test]
async fn a_delivery_the_egress_policy_refused_starts_over_only_once_the_endpoint_changes() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let id = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    // As the worker records it when the endpoint's host resolves to a private address.
    died(&app.db, &id, 5).await;
    sqlx::query("UPDATE webhook_deliveries SET last_outcome = 'refused' WHERE id = $1")
        .bind(uuid_of(&id))
        .execute(&app.db)
        .await
        .unwrap();
    let resend = format!("/v1/deliveries/{id}/resend");

    let refused = expect(app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 409).await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains(&id) && detail.contains("egress policy refused"), "{refused}");
    let since = OffsetDateTime::now_utc() - Duration::hours(1);
    let recovered = expect(recover(&app, &agent.signer, &agent.path(), since).await, 202).await;
    assert_eq!(recovered, json!({"queued": 0, "more": false, "at_cap": 0, "refused": 1}));
    assert_eq!(round_of(&app.db, &id).await, ("dead".to_owned(), 0, 0), "not started over");

    let moved = json!({"endpoint_url": "https://elsewhere.example.com/hooks"});
    expect(app.signed(&agent.signer, Method::PATCH, &agent.path(), &moved).await, 200).await;
    expect(app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 202).await;
    assert_eq!(round_of(&app.db, &id).await, ("pending".to_owned(), 1, 1), "to the new endpoint");
    let target: String = sqlx::query_scalar("SELECT target_url FROM webhook_deliveries WHERE id = $1")
        .bind(uuid_of(&id))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(target, "https://elsewhere.example.com/hooks");
}

#[tokio::test]
async fn recover_queues_at_most_a_thousand_oldest_death_first() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let first = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    // 1,000 more of the same event, dead a second apart, the first the newest death.
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, agent_id, target_url, status, finished_at, last_error)
         SELECT gen_random_uuid(), event_id, agent_id, target_url, 'dead', now() - make_interval(secs => n), 'gone'
         FROM webhook_deliveries, generate_series(2, 1001) AS n WHERE id = $1",
    )
    .bind(uuid_of(&first))
    .execute(&app.db)
    .await
    .unwrap();
    died(&app.db, &first, 0).await;

    let recovered =
        expect(recover(&app, &agent.signer, &agent.path(), OffsetDateTime::now_utc() - Duration::days(1)).await, 202)
            .await;
    assert_eq!(recovered, json!({"queued": 1000, "more": true, "at_cap": 0, "refused": 0}));
    let left: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE status = 'dead'").fetch_all(&app.db).await.unwrap();
    assert_eq!(left, [uuid_of(&first)], "the newest death waits for the next call");
}

#[tokio::test]
async fn recover_waits_for_a_disabled_endpoint_and_a_refusal_costs_no_minute() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let id = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    died(&app.db, &id, 5).await;
    sqlx::query("UPDATE agents SET endpoint_disabled_at = now()").execute(&app.db).await.unwrap();
    let since = OffsetDateTime::now_utc() - Duration::hours(1);

    let refused = expect(recover(&app, &agent.signer, &agent.path(), since).await, 409).await;
    assert!(refused["detail"].as_str().unwrap().contains("endpoint is disabled"), "{refused}");
    assert_eq!(round_of(&app.db, &id).await.0, "dead");
    let enable = format!("{}/endpoint/enable", agent.path());
    expect(app.signed(&agent.signer, Method::POST, &enable, &Value::Null).await, 200).await;
    let recovered = expect(recover(&app, &agent.signer, &agent.path(), since).await, 202).await;
    assert_eq!(recovered, json!({"queued": 1, "more": false, "at_cap": 0, "refused": 0}));
}

#[tokio::test]
async fn retention_deletes_old_attempts_in_bounded_batches_and_keeps_recent_ones() {
    // The API's own housekeeping keeps ten years, so only this test's call prunes.
    let app = spawn_app_with(|source, _| source.set("DELIVERY_ATTEMPTS_RETENTION_DAYS", "3650")).await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let id = agent_delivery(&app, &agent, &create_job(&app, &client, &agent).await).await;
    let insert_attempts = |count: i32, days_ago: i32| {
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, outcome)
             SELECT $1, n, now() - make_interval(days => $3), 5, 'retry' FROM generate_series(1, $2) AS n",
        )
        .bind(uuid_of(&id))
        .bind(count)
        .bind(days_ago)
        .execute(&app.db)
    };
    let per_call =
        api::background::retention::ATTEMPTS_PER_STATEMENT * api::background::retention::STATEMENTS_PER_CALL as i64;
    insert_attempts(i32::try_from(per_call).unwrap() + 3, 40).await.unwrap();
    insert_attempts(1, 29).await.unwrap();
    insert_attempts(1, 0).await.unwrap();
    sqlx::query(
        "INSERT INTO endpoint_health (url, retry_at) VALUES
             ('https://idle.example.com/', now() - interval '2 days'),
             ('https://recent.example.com/', now() - interval '1 hour'),
             ('https://paced.example.com/', now() + interval '1 hour')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let settings = tests::settings(&app.database, &tests::redis_url(), |source| {
        source.set("DELIVERY_ATTEMPTS_RETENTION_DAYS", "30");
    });

    let first = api::background::retention::prune(&app.db, &settings).await.unwrap();
    assert_eq!(first.attempts as i64, per_call, "a bounded number of statements per call");
    let second = api::background::retention::prune(&app.db, &settings).await.unwrap();
    assert_eq!(second.attempts, 3, "the next call goes on");
    assert_eq!(api::background::retention::prune(&app.db, &settings).await.unwrap().attempts, 0);
    let kept: Vec<i32> = sqlx::query_scalar(
        "SELECT (extract(day FROM now() - started_at))::int FROM delivery_attempts ORDER BY started_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, [29, 0], "attempts within the retention period stay");
    let health: Vec<String> =
        sqlx::query_scalar("SELECT url FROM endpoint_health ORDER BY url").fetch_all(&app.db).await.unwrap();
    assert_eq!(health, ["https://paced.example.com/", "https://recent.example.com/"]);
}

#[tokio::test]
async fn the_delivery_endpoints_are_documented_with_their_refusals() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for listing in ["/v1/agents/{id}/deliveries", "/v1/clients/{id}/deliveries"] {
        let get = &paths[listing]["get"];
        let params: Vec<&str> =
            get["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(params, ["id", "status", "event_type", "since", "until", "limit", "cursor"], "{listing}");
        let page = &get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(page, "#/components/schemas/DeliveryPage", "{listing}");
    }
    let resend = &paths["/v1/deliveries/{id}/resend"]["post"]["responses"];
    for status in ["202", "401", "403", "404", "409", "422", "429", "503"] {
        assert!(resend.get(status).is_some(), "resend documents {status}");
    }
    assert!(resend["429"]["description"].as_str().unwrap().contains("limit-reached"), "{}", resend["429"]);
    for recover in ["/v1/agents/{id}/deliveries/recover", "/v1/clients/{id}/deliveries/recover"] {
        let post = &paths[recover]["post"];
        assert!(post["requestBody"].is_object(), "{recover}");
        assert!(post["responses"]["429"]["description"].as_str().unwrap().contains("too-soon"), "{recover}");
    }
    let delivery = &document["components"]["schemas"]["Delivery"]["properties"];
    for field in ["attempt_count", "next_attempt_at", "resends", "generation", "attempts"] {
        assert!(delivery.get(field).is_some(), "Delivery.{field}");
    }
}

/// Soft-state writes (the worker's lease, the relay's and the publisher's
/// marks) skip the wait for the WAL flush with a `set_config` in their own
/// statement. What that relies on: the CTE runs even when no row matches,
/// and the setting lasts until its transaction ends, commit included, and
/// no longer.
#[tokio::test]
async fn an_async_commit_cte_makes_only_its_own_transaction_asynchronous() {
    let database = tests::TestDatabase::create().await;
    let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let setting = "SELECT current_setting('synchronous_commit')";
    let statement = "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
                     UPDATE webhook_deliveries SET lease_until = NULL
                     WHERE EXISTS (SELECT FROM async_commit) AND id = gen_random_uuid()";

    let mut transaction = connection.begin().await.unwrap();
    let updated = sqlx::query(statement).execute(&mut *transaction).await.unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let during: String = sqlx::query_scalar(setting).fetch_one(&mut *transaction).await.unwrap();
    assert_eq!(during, "off", "the CTE ran although no row matched");
    transaction.commit().await.unwrap();

    let after: String = sqlx::query_scalar(setting).fetch_one(&mut connection).await.unwrap();
    assert_eq!(after, "on", "the next transaction commits synchronously again");
    sqlx::query(statement).execute(&mut connection).await.unwrap();
    let after_one_statement: String = sqlx::query_scalar(setting).fetch_one(&mut connection).await.unwrap();
    assert_eq!(after_one_statement, "on", "a single statement is its own transaction");
}
