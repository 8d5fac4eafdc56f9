//! Job expiry: accept windows and deadlines set at creation, transitions
//! refused once their window passed, and the expiry task (event, webhooks to
//! both parties, racing accepts, an API restart).

use std::time::Duration;

use serde_json::{Value, json};
use shared::domain::JobId;
use shared::signing::{IDEMPOTENCY_KEY, SignOptions};
use tests::pipeline::{PipelineOptions, spawn_pipeline_with};
use tests::{Method, RequestSigner, TestAgent, TestApp, eventually, spawn_app, spawn_app_with};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::events::{distinct_events, documented_event};

const WAIT_SECONDS: u64 = 20;

fn uuid_of(job: &Value) -> Uuid {
    job["id"].as_str().unwrap().parse::<JobId>().unwrap().as_uuid()
}

/// The uuid behind a prefixed id (`agt_…`, `cli_…`), as stored.
fn stored_id(resource: &Value) -> Uuid {
    let (_, hex) = resource["id"].as_str().unwrap().split_once('_').unwrap();
    hex.parse().unwrap()
}

fn time(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a time"), &Rfc3339).unwrap()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// A job request for `agent` with `extra` fields merged in.
fn job_body(agent: &TestAgent, extra: Value) -> Value {
    let mut body = json!({"agent_id": agent.registered["id"], "input": {"pages": 3}, "price": "5"});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

async fn create(app: &TestApp, client: &RequestSigner, agent: &TestAgent, extra: Value) -> Value {
    let response = app.signed(client, Method::POST, "/v1/jobs", &job_body(agent, extra)).await;
    let status = response.status();
    let job: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{job}");
    job
}

async fn post(app: &TestApp, signer: &RequestSigner, job: &Value, action: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/jobs/{}/{action}", job["id"].as_str().unwrap());
    let response = app.signed(signer, Method::POST, &path, &body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn stored_status(app: &TestApp, id: Uuid) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, expired_because FROM jobs WHERE id = $1").bind(id).fetch_one(&app.db).await.unwrap()
}

/// The job's event types, in outbox order.
async fn event_types(app: &TestApp, id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT type FROM events WHERE aggregate_id = $1 ORDER BY position")
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn count_pending(app: &TestApp, ids: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = ANY($1) AND status IN ('pending', 'accepted')")
        .bind(ids)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn list(app: &TestApp, signer: &RequestSigner, query: &str) -> Vec<Value> {
    let response = app.signed(signer, Method::GET, &format!("/v1/jobs?{query}"), &Value::Null).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["jobs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_job_not_accepted_in_time_expires_with_an_event_and_webhooks_to_agent_and_client() {
    let pipeline = spawn_pipeline_with(PipelineOptions {
        api_settings: vec![("JOB_ACCEPT_TIMEOUT_SECONDS", "1")],
        ..Default::default()
    })
    .await;
    let app = &pipeline.app;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    assert_eq!(time(&job["accept_by"]) - time(&job["created_at"]), time::Duration::seconds(1), "the setting's window");
    assert_eq!(job["deadline"], Value::Null);
    assert_eq!(job["expired_because"], Value::Null);

    // job.created to the agent, then job.expired to the agent and to the callback.
    let expired_webhooks = || {
        let received = pipeline.receiver.received();
        received
            .into_iter()
            .map(|webhook| (webhook.path.clone(), webhook.json()))
            .filter(|(_, body)| body["type"] == "job.expired")
            .collect::<Vec<_>>()
    };
    let both = eventually(WAIT_SECONDS, || async { expired_webhooks().len() >= 2 }).await;
    assert!(both, "both parties hear of the expiry: {:?}", pipeline.receiver.received());
    let mut paths: Vec<String> = expired_webhooks().iter().map(|(path, _)| path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/agent", "/client"]);
    for (_, body) in expired_webhooks() {
        assert_eq!(body["data"]["id"], job["id"]);
        assert_eq!(body["data"]["status"], "expired");
        assert_eq!(body["data"]["expired_because"], "accept_window");
    }

    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let read: Value = app.signed(&client, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    assert_eq!((&read["status"], &read["expired_because"]), (&json!("expired"), &json!("accept_window")));
    let (status, problem) = post(app, &agent.signer, &job, "accept", Value::Null).await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("accept window passed"), "{problem}");
    assert_eq!(event_types(app, uuid_of(&job)).await, ["job.created", "job.expired"]);

    // Published as documented (the schema), after job.created.
    let messages = distinct_events(&app.pubsub.events, 3, Duration::from_secs(WAIT_SECONDS)).await;
    let events: Vec<Value> =
        messages.iter().map(documented_event).filter(|event| event["aggregate_id"] == job["id"]).collect();
    let types: Vec<&Value> = events.iter().map(|event| &event["type"]).collect();
    assert_eq!(types, [&json!("job.created"), &json!("job.expired")]);
    let read_by_agent: Value = app.signed(&agent.signer, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    assert_eq!(events[1]["data"], read_by_agent, "the event carries the job as expired, as its agent reads it");
    assert!(read_by_agent.get("callback_url").is_none() && read["callback_url"].is_string());

    // Listed under its status, by either party.
    let other = pipeline.create_job(&client, &agent).await;
    assert_eq!(post(app, &agent.signer, &other, "accept", Value::Null).await.0, 200, "accepted in time");
    let expired = list(app, &client, "status=expired").await;
    assert_eq!(expired.iter().map(|job| &job["id"]).collect::<Vec<_>>(), [&job["id"]]);
    assert_eq!(list(app, &agent.signer, "role=agent&status=expired").await.len(), 1);
    assert_eq!(list(app, &client, "status=accepted").await[0]["id"], other["id"]);
}

/// Accepts fired around the instant 30 jobs fall due, while the expiry task
/// runs: each job is accepted (and its accept answered 200) or expired (and
/// its accept answered 409), never both, with exactly one event saying which.
#[tokio::test]
async fn an_accept_racing_expiry_either_wins_or_is_refused_never_both() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let mut jobs = Vec::new();
    for _ in 0..30 {
        jobs.push(create(&app, &client, &agent, json!({})).await);
    }
    let ids: Vec<Uuid> = jobs.iter().map(uuid_of).collect();

    // Every job falls due at one instant, a moment from now (the database's clock is this machine's).
    let lead = Duration::from_millis(1500);
    let (due_at, due) = (tokio::time::Instant::now() + lead, OffsetDateTime::now_utc() + lead);
    sqlx::query("UPDATE jobs SET accept_by = $1 WHERE id = ANY($2)")
        .bind(due)
        .bind(&ids)
        .execute(&app.db)
        .await
        .unwrap();

    // The first five well before it, the last five well after, the rest within ±50 ms of it.
    let offset = |i: usize| -> i64 {
        match i {
            0..5 => -1000,
            25.. => 500,
            _ => (i as i64 - 15) * 5,
        }
    };
    let accepts = jobs.iter().enumerate().map(|(i, job)| {
        let (app, agent, offset) = (&app, &agent, offset(i));
        async move {
            let at = if offset < 0 {
                due_at - Duration::from_millis(offset.unsigned_abs())
            } else {
                due_at + Duration::from_millis(offset as u64)
            };
            tokio::time::sleep_until(at).await;
            post(app, &agent.signer, job, "accept", Value::Null).await
        }
    });
    let answers = futures_util::future::join_all(accepts).await;

    let settled = eventually(WAIT_SECONDS, || async { count_pending_only(&app, &ids).await == 0 }).await;
    assert!(settled, "every job not accepted in time is expired");
    let (mut accepted, mut expired) = (0, 0);
    for ((job, id), (status, body)) in jobs.iter().zip(&ids).zip(&answers) {
        let stored = stored_status(&app, *id).await;
        let types = event_types(&app, *id).await;
        match status {
            200 => {
                accepted += 1;
                assert_eq!(stored, ("accepted".to_owned(), None), "{} was accepted: {body}", job["id"]);
                assert_eq!(types, ["job.created", "job.accepted"], "{}", job["id"]);
            }
            409 => {
                expired += 1;
                assert_eq!(stored, ("expired".to_owned(), Some("accept_window".to_owned())), "{}", job["id"]);
                assert_eq!(types, ["job.created", "job.expired"], "{}", job["id"]);
                assert!(body["detail"].as_str().unwrap().contains("accept window passed"), "{body}");
            }
            other => panic!("accept answered {other}: {body}"),
        }
    }
    assert!(accepted >= 5 && expired >= 5, "both outcomes happen: {accepted} accepted, {expired} expired");
}

async fn count_pending_only(app: &TestApp, ids: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = ANY($1) AND status = 'pending'")
        .bind(ids)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_accepted_job_past_its_deadline_expires_and_cannot_complete() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let deadline = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let job = create(&app, &client, &agent, json!({"deadline": rfc3339(deadline)})).await;
    assert_eq!(time(&job["deadline"]), deadline.replace_nanosecond(deadline.nanosecond() / 1000 * 1000).unwrap());
    assert_eq!(job["accept_by"], job["deadline"], "a job that cannot be done in time cannot be accepted");
    assert_eq!(post(&app, &agent.signer, &job, "accept", Value::Null).await.0, 200);

    let id = uuid_of(&job);
    let expired = eventually(WAIT_SECONDS, || async { stored_status(&app, id).await.0 == "expired" }).await;
    assert!(expired, "the accepted job expires at its deadline");
    assert_eq!(stored_status(&app, id).await.1.as_deref(), Some("deadline"));
    let (status, problem) = post(&app, &agent.signer, &job, "complete", json!({"result": "late"})).await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("deadline passed"), "{problem}");
    assert_eq!(event_types(&app, id).await, ["job.created", "job.accepted", "job.expired"]);
    let deliveries: Vec<(Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "SELECT d.agent_id, d.client_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.job_id = $1 AND e.type = 'job.expired'",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(deliveries.len(), 1, "to the agent; the job has no callback: {deliveries:?}");
    assert!(deliveries[0].0.is_some());
}

#[tokio::test]
async fn a_move_whose_window_passed_is_refused_even_before_the_job_expires() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    // Another instance holds the expiry lease (and does nothing), so only
    // the transitions' own conditions refuse; a round in flight ends first.
    sqlx::query(
        "INSERT INTO publisher_lease (name, holder, until) VALUES ('expiry', gen_random_uuid(), now() + interval '1 hour')
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until",
    )
    .execute(&app.db)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pending = create(&app, &client, &agent, json!({})).await;
    let accepted = create(&app, &client, &agent, json!({})).await;
    assert_eq!(post(&app, &agent.signer, &accepted, "accept", Value::Null).await.0, 200);
    sqlx::query(
        "UPDATE jobs SET accept_by = now() - interval '1 second', deadline = CASE WHEN status = 'accepted'
         THEN now() - interval '1 second' END WHERE id = ANY($1)",
    )
    .bind([uuid_of(&pending), uuid_of(&accepted)])
    .execute(&app.db)
    .await
    .unwrap();
    let (status, problem) = post(&app, &agent.signer, &pending, "accept", Value::Null).await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("accept window passed"), "{problem}");
    let (status, problem) = post(&app, &agent.signer, &accepted, "complete", json!({"result": 1})).await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("deadline passed"), "{problem}");
    assert_eq!(stored_status(&app, uuid_of(&pending)).await.0, "pending", "refused, not expired");
    // Cancelling ends the job anyway, so it is not held to a window.
    assert_eq!(post(&app, &client, &pending, "cancel", Value::Null).await.0, 200);

    // Once an instance runs expiry again, the overdue accepted job expires; the cancelled one stays so.
    sqlx::query("DELETE FROM publisher_lease WHERE name = 'expiry'").execute(&app.db).await.unwrap();
    let id = uuid_of(&accepted);
    assert!(eventually(WAIT_SECONDS, || async { stored_status(&app, id).await.0 == "expired" }).await);
    assert_eq!(stored_status(&app, id).await.1.as_deref(), Some("deadline"));
    assert_eq!(stored_status(&app, uuid_of(&pending)).await.0, "cancelled");
    assert_eq!(event_types(&app, uuid_of(&pending)).await, ["job.created", "job.cancelled"]);
}

#[tokio::test]
async fn jobs_due_while_the_api_is_down_all_expire_when_it_is_back() {
    let mut app = spawn_app_with(|source, _| source.set("JOB_ACCEPT_TIMEOUT_SECONDS", "2")).await;
    let agent = app.register_agent(json!({})).await;
    let (client, registered) = app.register_client().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(uuid_of(&create(&app, &client, &agent, json!({})).await));
    }
    let deadline = rfc3339(OffsetDateTime::now_utc() + time::Duration::seconds(3));
    for _ in 0..2 {
        let job = create(&app, &client, &agent, json!({"deadline": deadline})).await;
        assert_eq!(post(&app, &agent.signer, &job, "accept", Value::Null).await.0, 200);
        ids.push(uuid_of(&job));
    }
    // More than two batches' worth, written directly: the task must loop.
    let (agent_id, client_id) = (stored_id(&agent.registered), stored_id(&registered));
    let bulk: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, client_id, agent_id, input, price, fee, accept_by)
         SELECT gen_random_uuid(), $1, $2, '{}', 1, 0, now() + interval '2 seconds' FROM generate_series(1, 450)
         RETURNING id",
    )
    .bind(client_id)
    .bind(agent_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    ids.extend(&bulk);

    app.stop().await.unwrap();
    let leases: Vec<String> = sqlx::query_scalar("SELECT name FROM publisher_lease").fetch_all(&app.db).await.unwrap();
    assert_eq!(leases, Vec::<String>::new(), "a stopped API hands its leases back; the next need not wait");
    let all_due = eventually(WAIT_SECONDS, || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT bool_and(COALESCE(deadline, accept_by) < now()) FROM jobs WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&app.db)
        .await
        .unwrap()
    })
    .await;
    assert!(all_due);
    assert_eq!(count_pending(&app, &ids).await, ids.len() as i64, "nothing expires while no API runs");

    let app = app.restart().await;
    let all_expired = eventually(WAIT_SECONDS, || async { count_pending(&app, &ids).await == 0 }).await;
    assert!(all_expired, "{} jobs left unexpired", count_pending(&app, &ids).await);
    let reasons: Vec<(String, i64)> =
        sqlx::query_as("SELECT expired_because, count(*) FROM jobs WHERE id = ANY($1) GROUP BY 1 ORDER BY 1")
            .bind(&ids)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(reasons, [("accept_window".to_owned(), 453), ("deadline".to_owned(), 2)]);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE type = 'job.expired' AND aggregate_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'job.expired'").fetch_one(&app.db).await.unwrap();
    assert_eq!((events, total), (ids.len() as i64, ids.len() as i64), "one job.expired per job");
    let listed = list(&app, &client, "status=expired&limit=100").await;
    assert_eq!(listed.len(), 100, "the expired jobs are listed");
    assert!(listed.iter().all(|job| job["status"] == "expired"));
}

#[tokio::test]
async fn windows_are_validated_and_part_of_the_idempotent_request() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    let now = OffsetDateTime::now_utc();
    let refused = [
        (json!({"accept_within_seconds": 59}), "accept_within_seconds"),
        (json!({"accept_within_seconds": 604_801}), "accept_within_seconds"),
        (json!({"accept_within_seconds": -1}), "accept_within_seconds"),
        (json!({"accept_within_seconds": "soon"}), "accept_within_seconds"),
        (json!({"deadline": rfc3339(now - time::Duration::seconds(1))}), "deadline"),
        (json!({"deadline": rfc3339(now + time::Duration::days(366))}), "deadline"),
        (json!({"deadline": "tomorrow"}), "deadline"),
    ];
    for (extra, field) in refused {
        let response = app.signed(&client, Method::POST, "/v1/jobs", &job_body(&agent, extra.clone())).await;
        assert_eq!(response.status(), 422, "{extra}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{extra}: {problem}");
    }

    let job = create(&app, &client, &agent, json!({"accept_within_seconds": 3600})).await;
    assert_eq!(time(&job["accept_by"]) - time(&job["created_at"]), time::Duration::hours(1));
    let default = create(&app, &client, &agent, json!({})).await;
    assert_eq!(time(&default["accept_by"]) - time(&default["created_at"]), time::Duration::days(1));
    let deadline = rfc3339(now + time::Duration::minutes(10));
    let soon = create(&app, &client, &agent, json!({"accept_within_seconds": 3600, "deadline": deadline})).await;
    assert_eq!(soon["accept_by"], soon["deadline"], "the deadline ends the accept window");
    let later = create(&app, &client, &agent, json!({"accept_within_seconds": 60, "deadline": deadline})).await;
    assert_eq!(time(&later["accept_by"]) - time(&later["created_at"]), time::Duration::minutes(1));

    let keyed = |extra: Value| {
        let (app, client, body) = (&app, &client, job_body(&agent, extra));
        async move {
            let url = app.url("/v1/jobs");
            let bytes = serde_json::to_vec(&body).unwrap();
            let mut request = app.http.post(&url).header("content-type", "application/json");
            let options = SignOptions { headers: &[(IDEMPOTENCY_KEY, "order-7")], ..SignOptions::default() };
            for (name, value) in client.sign_with("POST", &url, &bytes, &options).await.unwrap() {
                request = request.header(name, value);
            }
            request.body(bytes).send().await.unwrap()
        }
    };
    let first = keyed(json!({"deadline": deadline})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = keyed(json!({"deadline": deadline})).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = keyed(json!({"deadline": rfc3339(now + time::Duration::minutes(11))})).await;
    assert_eq!(other.status(), 422, "another deadline is another request");
    assert_eq!(other.json::<Value>().await.unwrap()["errors"][0]["field"], "Idempotency-Key");
}
