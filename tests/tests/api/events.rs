//! Domain events on Pub/Sub, as a subscriber of Google's emulator receives
//! them (the official client publishes and subscribes), dead letters and
//! redrive, webhook secret rotation, and endpoint health.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use shared::domain::AgentId;
use shared::redrive::{Recipient, Redrive, Redriven};
use standardwebhooks::Webhook;
use tests::pipeline::{Pipeline, PipelineOptions, Received, spawn_pipeline, spawn_pipeline_with};
use tests::pubsub_emulator::{PulledMessage, Subscription, emulator};
use tests::{Method, TcpProxy, TestAgent, TestApp, TestKey, eventually, expect_status, spawn_app, spawn_app_with};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(20);

/// `docs/events.schema.json`, and its dead-letter definition as a schema of its own.
fn validators() -> &'static (jsonschema::Validator, jsonschema::Validator) {
    static VALIDATORS: OnceLock<(jsonschema::Validator, jsonschema::Validator)> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let dead_letter = json!({"$defs": schema["$defs"], "$ref": "#/$defs/dead_letter"});
        (jsonschema::validator_for(&schema).unwrap(), jsonschema::validator_for(&dead_letter).unwrap())
    })
}

fn conforms(validator: &jsonschema::Validator, document: &Value) {
    let errors: Vec<String> = validator.iter_errors(document).map(|error| error.to_string()).collect();
    assert!(errors.is_empty(), "{document:#} breaks the documented schema: {errors:#?}");
}

/// An event as documented: the schema, the attributes and the ordering key.
pub(crate) fn documented_event(message: &PulledMessage) -> Value {
    let event: Value = serde_json::from_slice(&message.data).expect("events are JSON");
    conforms(&validators().0, &event);
    let expected: BTreeMap<String, String> = [
        ("event_id", &event["id"]),
        ("event_type", &event["type"]),
        ("aggregate_id", &event["aggregate_id"]),
        ("schema_version", &json!("1")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.as_str().unwrap().to_owned()))
    .collect();
    assert_eq!(message.attributes, expected);
    assert_eq!(message.ordering_key, documented_ordering_key(event["aggregate_id"].as_str().unwrap()));
    event
}

/// `docs/EVENTS.md`'s rule: the aggregate's type, then its id's 128 bits
/// modulo 16 in two digits (`job_…0a1f` → `job-15`).
fn documented_ordering_key(aggregate_id: &str) -> String {
    let (prefix, hex) = aggregate_id.split_once('_').unwrap();
    let aggregate_type = match prefix {
        "agt" => "agent",
        "job" => "job",
        other => panic!("no aggregate has the prefix {other}"),
    };
    format!("{aggregate_type}-{:02}", u128::from_str_radix(hex, 16).unwrap() % 16)
}

fn documented_dead_letter(message: &PulledMessage) -> Value {
    let letter: Value = serde_json::from_slice(&message.data).expect("dead letters are JSON");
    conforms(&validators().1, &letter);
    assert_eq!(message.attributes["delivery_id"], letter["delivery_id"].as_str().unwrap());
    assert_eq!(message.attributes["recipient_id"], letter["recipient_id"].as_str().unwrap());
    letter
}

/// The first `count` distinct events the subscription received, in arrival
/// order (Pub/Sub delivers at least once: a duplicate is dropped).
pub(crate) async fn distinct_events(
    subscription: &Subscription,
    count: usize,
    timeout: Duration,
) -> Vec<PulledMessage> {
    let distinct = || {
        let mut seen = std::collections::HashSet::new();
        let messages = subscription.received();
        messages.into_iter().filter(|message| seen.insert(message.attributes["event_id"].clone())).collect::<Vec<_>>()
    };
    let arrived = eventually(timeout.as_secs(), || async { distinct().len() >= count }).await;
    assert!(arrived, "{count} distinct events expected, got {:#?}", distinct());
    distinct()
}

/// Each aggregate's event types in arrival order, after checking that its
/// sequence numbers only grow. Takes distinct events (`distinct_events`).
fn types_by_aggregate(messages: &[PulledMessage]) -> BTreeMap<String, Vec<String>> {
    let mut last_sequence: BTreeMap<String, i64> = BTreeMap::new();
    let mut types: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in messages.iter().map(documented_event) {
        let aggregate = event["aggregate_id"].as_str().unwrap().to_owned();
        let sequence = event["sequence"].as_i64().unwrap();
        let previous = last_sequence.insert(aggregate.clone(), sequence).unwrap_or(0);
        assert!(sequence > previous, "{aggregate}: event {sequence} arrived after {previous}");
        types.entry(aggregate).or_default().push(event["type"].as_str().unwrap().to_owned());
    }
    types
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

async fn job_from(app: &TestApp, client: &tests::RequestSigner, agent: &Value, callback: Option<String>) -> Value {
    let body = json!({"agent_id": agent["id"], "input": {"pages": 3}, "price": "10", "callback_url": callback});
    let response = app.signed(client, Method::POST, "/v1/jobs", &body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_event_type_arrives_as_documented_in_order_per_aggregate() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let path = agent.path();
    expect_status(app.signed(&agent.signer, Method::PATCH, &path, &json!({"price": "15"})).await, 200).await;
    let rotate = format!("{path}/webhook-secret");
    expect_status(app.signed(&agent.signer, Method::POST, &rotate, &json!({})).await, 200).await;
    let (client, client_registered) = app.register_client().await;
    // Established (its weight: its age, full, × one paid counterparty of five), so its rating moves the score.
    let client_id = uuid::Uuid::parse_str(&id(&client_registered)[4..]).unwrap();
    sqlx::query("UPDATE clients SET created_at = now() - interval '60 days' WHERE id = $1")
        .bind(client_id)
        .execute(&app.db)
        .await
        .unwrap();

    let finished = job_from(&app, &client, &agent.registered, None).await;
    let jobs = format!("/v1/jobs/{}", id(&finished));
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{jobs}/accept"), &Value::Null).await, 200).await;
    let result = json!({"result": {"pages": ["un", "deux", "trois"]}});
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{jobs}/complete"), &result).await, 200).await;
    let rating = json!({"score": 4, "comment": "Exact."});
    expect_status(app.signed(&client, Method::POST, &format!("{jobs}/rating"), &rating).await, 201).await;
    let cancelled = job_from(&app, &client, &agent.registered, None).await;
    let cancel = format!("/v1/jobs/{}/cancel", id(&cancelled));
    expect_status(app.signed(&client, Method::POST, &cancel, &Value::Null).await, 200).await;
    let failed = job_from(&app, &client, &agent.registered, None).await;
    let fail = format!("/v1/jobs/{}/fail", id(&failed));
    expect_status(app.signed(&agent.signer, Method::POST, &fail, &json!({"reason": "unreadable scan"})).await, 200)
        .await;
    let new_key = TestKey::generate();
    let rotation = new_key.rotation_to(&id(&agent.registered), agent.registered["public_key"].as_str().unwrap());
    expect_status(app.signed(&agent.signer, Method::POST, &format!("{path}/keys"), &rotation).await, 200).await;
    let signer = new_key.signer(&id(&agent.registered));
    expect_status(app.signed(&signer, Method::DELETE, &path, &Value::Null).await, 204).await;
    // Deactivating again is refused (the key no longer signs), so it is no event.
    expect_status(app.signed(&signer, Method::DELETE, &path, &Value::Null).await, 401).await;

    let messages = distinct_events(&app.pubsub.events, 13, WAIT).await;
    let types = types_by_aggregate(&messages);
    let expected: BTreeMap<String, Vec<&str>> = [
        (
            id(&agent.registered),
            vec![
                "agent.registered",
                "agent.updated",
                "agent.webhook_secret_rotated",
                "agent.key_rotated",
                "agent.deactivated",
            ],
        ),
        (id(&finished), vec!["job.created", "job.accepted", "job.completed", "job.rated"]),
        (id(&cancelled), vec!["job.created", "job.cancelled"]),
        (id(&failed), vec!["job.created", "job.failed"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(types, expected.into_iter().map(|(k, v)| (k, v.into_iter().map(String::from).collect())).collect());

    let events: Vec<Value> = messages.iter().map(documented_event).collect();
    let of_type = |kind: &str| events.iter().find(|event| event["type"] == kind).unwrap()["data"].clone();
    assert_eq!(of_type("agent.updated")["price"], "15");
    assert_eq!(of_type("agent.deactivated")["active"], false);
    assert_eq!(of_type("agent.key_rotated")["public_key"], new_key.public_key.as_str());
    assert!(of_type("agent.webhook_secret_rotated")["previous_secret_expires_at"].is_string());
    assert_eq!(of_type("job.completed")["result"], result["result"]);
    assert_eq!(of_type("job.failed")["failure_reason"], "unreadable scan");
    assert_eq!(
        of_type("job.rated")["agent"],
        json!({"rating": "4.00", "rating_count": 1, "uncounted_rating_count": 0, "score": "3.019608"})
    );
    let all_marked = eventually(5, || async {
        let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE published_at IS NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
        unpublished == 0
    })
    .await;
    assert!(all_marked, "every event is marked published once Pub/Sub acknowledged it");
}

#[tokio::test]
async fn requests_succeed_while_pubsub_is_unreachable_and_the_events_follow_when_it_is_back() {
    // The API reaches the emulator through the proxy; the subscriber directly.
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", emulator().await.port())).await;
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let app = spawn_app_with(|source, _| source.set("PUBSUB_ENDPOINT", endpoint)).await;
    proxy.cut();

    let agent = app.register_agent(json!({})).await;
    for price in ["13", "14"] {
        let update = app.signed(&agent.signer, Method::PATCH, &agent.path(), &json!({"price": price})).await;
        expect_status(update, 200).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(app.pubsub.events.received().is_empty(), "nothing can arrive while Pub/Sub is unreachable");
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE published_at IS NULL").fetch_one(&app.db).await.unwrap();
    assert_eq!(unpublished, 3, "the events wait in the outbox");

    proxy.restore();
    let messages = distinct_events(&app.pubsub.events, 3, Duration::from_secs(30)).await;
    let types = types_by_aggregate(&messages);
    assert_eq!(types[&id(&agent.registered)], ["agent.registered", "agent.updated", "agent.updated"]);
    let prices: Vec<Value> =
        messages.iter().map(documented_event).map(|event| event["data"]["price"].clone()).collect();
    assert_eq!(prices[1..], [json!("13"), json!("14")], "in the order they happened");
}

#[tokio::test]
async fn a_dead_delivery_is_dead_lettered_and_can_be_resent_to_success() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![503; 10], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;

    let letters = pipeline.app.pubsub.dead_letters.wait_for(1, WAIT).await;
    let letter = documented_dead_letter(&letters[0]);
    let delivery = &pipeline.deliveries(&agent.signer, &job).await[0];
    assert_eq!(letter["delivery_id"], delivery["id"]);
    assert_eq!(letter["event_type"], "job.created");
    assert_eq!(letter["job_id"], job["id"]);
    assert_eq!(letter["recipient_id"], agent.registered["id"]);
    assert_eq!(letter["target_host"], "127.0.0.1");
    assert_eq!(letter["attempts"], 5);
    assert_eq!(letter["last_error"], "the endpoint answered 503");
    assert_eq!((&letter["generation"], &letters[0].attributes["generation"]), (&json!(0), &"0".to_owned()));

    // Resent, it dies again: a second death, a second letter.
    let resend = format!("/v1/deliveries/{}/resend", delivery["id"].as_str().unwrap());
    expect_status(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 202).await;
    let letters = pipeline.app.pubsub.dead_letters.wait_for(2, WAIT).await;
    assert_eq!(documented_dead_letter(&letters[1])["generation"], 1);

    // A minute later (a delivery is resent at most once a minute), it is resent again.
    sqlx::query("UPDATE webhook_deliveries SET resent_at = resent_at - interval '1 minute'")
        .execute(&pipeline.app.db)
        .await
        .unwrap();
    expect_status(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 202).await;
    let delivered =
        eventually(10, || async { pipeline.deliveries(&agent.signer, &job).await[0]["status"] == "delivered" }).await;
    assert!(delivered, "the resend is delivered: {:?}", pipeline.deliveries(&agent.signer, &job).await);
    assert_eq!(pipeline.receiver.received().len(), 11);
    assert_eq!(pipeline.app.pubsub.dead_letters.received().len(), 2, "delivered is no dead letter");
}

#[tokio::test]
async fn an_operator_redrives_the_dead_deliveries_of_an_endpoint_since_a_time() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![503; 10], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let agent_id: AgentId = id(&agent.registered).parse().unwrap();
    let (client, _) = pipeline.client().await;
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    // One after the other: two deliveries failing at once to one URL would wait on each other's probes.
    let first_job = pipeline.create_job(&client, &agent).await;
    pipeline.app.pubsub.dead_letters.wait_for(1, WAIT).await;
    let jobs = [first_job, pipeline.create_job(&client, &agent).await];
    pipeline.app.pubsub.dead_letters.wait_for(2, WAIT).await;

    let db = &pipeline.app.db;
    let since = |since| Redrive { recipient: Recipient::Agent(agent_id), since, until: None, limit: 1_000 };
    let redrive = |window, dry_run| async move {
        shared::redrive::redrive(&mut db.acquire().await.unwrap(), window, None, dry_run).await.unwrap()
    };
    assert_eq!(
        redrive(since(before), true).await,
        Redriven { queued: 2, more: false, at_cap: 0, refused: 0 },
        "a dry run counts"
    );
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM webhook_deliveries").fetch_all(db).await.unwrap();
    assert_eq!(statuses, ["dead", "dead"], "and changes nothing");
    let later = OffsetDateTime::now_utc();
    assert_eq!(redrive(since(later), false).await.queued, 0, "none since later");
    let first = Redrive { limit: 1, ..since(before) };
    assert_eq!(
        redrive(first, false).await,
        Redriven { queued: 1, more: true, at_cap: 0, refused: 0 },
        "bounded by the limit"
    );
    assert_eq!(
        redrive(since(before), false).await,
        Redriven { queued: 1, more: false, at_cap: 0, refused: 0 },
        "and the rest"
    );

    for job in &jobs {
        let delivered =
            eventually(10, || async { pipeline.deliveries(&agent.signer, job).await[0]["status"] == "delivered" })
                .await;
        assert!(delivered, "{:?}", pipeline.deliveries(&agent.signer, job).await);
    }
    assert_eq!(pipeline.receiver.received().len(), 12);
}

/// Verifies with the published Standard Webhooks library.
fn verifies(secret: &Value, received: &Received) -> bool {
    let webhook = Webhook::new(secret.as_str().unwrap()).expect("a whsec_ secret");
    webhook.verify(&received.body, &received.headers).is_ok()
}

#[tokio::test]
async fn during_a_rotation_receivers_with_the_old_or_the_new_secret_both_verify() {
    let pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let old = agent.registered["webhook_secret"].clone();
    let rotate = format!("{}/webhook-secret", agent.path());

    let too_long = json!({"grace_period_seconds": 604_801});
    let refused = expect_status(pipeline.app.signed(&agent.signer, Method::POST, &rotate, &too_long).await, 422).await;
    assert!(refused.to_string().contains("grace_period_seconds"), "{refused}");
    let rotated = expect_status(pipeline.app.signed(&agent.signer, Method::POST, &rotate, &json!({})).await, 200).await;
    let new = rotated["webhook_secret"].clone();
    assert_ne!(new, old);
    let expires = OffsetDateTime::parse(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let grace = expires - OffsetDateTime::now_utc();
    assert!(grace > time::Duration::hours(23) && grace <= time::Duration::hours(24), "24 h by default: {grace}");

    pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await);
    let during = &pipeline.receiver.received()[0];
    assert_eq!(during.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    assert!(verifies(&old, during), "a receiver still holding the old secret verifies");
    assert!(verifies(&new, during), "a receiver already holding the new secret verifies");

    // Without a grace period the replaced secret stops signing at once.
    let now = json!({"grace_period_seconds": 0});
    let newest = expect_status(pipeline.app.signed(&agent.signer, Method::POST, &rotate, &now).await, 200).await;
    assert!(newest["previous_secret_expires_at"].is_null());
    pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(2, 10).await);
    let after = &pipeline.receiver.received()[1];
    assert!(verifies(&newest["webhook_secret"], after));
    assert!(!verifies(&new, after) && !verifies(&old, after), "replaced secrets no longer verify");
}

/// Longer than the test schedule's first step (50 ms ± 20 %): the endpoint's
/// pacing after a failure is over.
const PACED: std::time::Duration = std::time::Duration::from_millis(200);

async fn failing_since(db: &sqlx::PgPool) -> Option<OffsetDateTime> {
    sqlx::query_scalar("SELECT endpoint_failing_since FROM agents").fetch_one(db).await.unwrap()
}

async fn first_delivery(pipeline: &Pipeline, agent: &TestAgent, job: &Value) -> Value {
    pipeline.deliveries(&agent.signer, job).await.remove(0)
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_a_success_resets_it_and_the_owner_enables_it() {
    // Each attempt is pushed by hand (as Cloud Tasks would), so the test decides their order.
    let pipeline =
        spawn_pipeline_with(PipelineOptions { statuses: vec![500, 200, 500, 500], ..Default::default() }).await;
    pipeline.standin.set_available(false);
    let agent = pipeline.agent().await;
    let agent_id = id(&agent.registered);
    let (client, _) = pipeline.client().await;
    let app = &pipeline.app;
    // A failure starts a run of failures; a success ends it. (Cloud Tasks is
    // down, so the worker cannot schedule the retry itself: its own fault, a 500.)
    let first = first_delivery(&pipeline, &agent, &pipeline.create_job(&client, &agent).await).await;
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(pipeline.push(first_id, 1).await.status(), 500);
    assert!(failing_since(&app.db).await.is_some(), "the failure is counted");
    tokio::time::sleep(PACED).await;
    assert_eq!(pipeline.push(first_id, 2).await.status(), 200);
    assert!(failing_since(&app.db).await.is_none(), "the success resets it");

    // A failure after five days of failing disables the endpoint.
    let second = pipeline.create_job(&client, &agent).await;
    let second_id = first_delivery(&pipeline, &agent, &second).await["id"].as_str().unwrap().to_owned();
    assert_eq!(pipeline.push(&second_id, 1).await.status(), 500, "a failure within the limit is to be retried");
    sqlx::query("UPDATE agents SET endpoint_failing_since = now() - interval '5 days 1 minute'")
        .execute(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(PACED).await;
    assert_eq!(pipeline.push(&second_id, 2).await.status(), 200, "no more retries");
    let dead = first_delivery(&pipeline, &agent, &second).await;
    assert_eq!(dead["status"], "dead");
    assert!(dead["last_error"].as_str().unwrap().contains("disabled"), "{dead}");
    let shown = expect_status(app.get(&agent.path()).await, 200).await;
    assert!(shown["endpoint_disabled_at"].is_string(), "{shown}");

    // While disabled, deliveries die unsent, and resending or redriving waits for the owner.
    let third = first_delivery(&pipeline, &agent, &pipeline.create_job(&client, &agent).await).await;
    assert_eq!(third["status"], "dead");
    assert_eq!(third["last_error"], shared::webhooks::ENDPOINT_DISABLED);
    assert_eq!(pipeline.receiver.received().len(), 4, "nothing was sent to the disabled endpoint");
    let resend = format!("/v1/deliveries/{second_id}/resend");
    expect_status(app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 409).await;
    let window = Redrive {
        recipient: Recipient::Agent(agent_id.parse().unwrap()),
        since: OffsetDateTime::UNIX_EPOCH,
        until: None,
        limit: 1,
    };
    let redrive = shared::redrive::redrive(&mut app.db.acquire().await.unwrap(), window, None, false).await;
    assert!(matches!(redrive, Err(shared::redrive::RedriveError::EndpointDisabled(_))), "{redrive:?}");
    let letters = app.pubsub.dead_letters.wait_for(2, WAIT).await;
    let dead_ids: Vec<Value> =
        letters.iter().map(documented_dead_letter).map(|letter| letter["delivery_id"].clone()).collect();
    assert!(dead_ids.contains(&json!(second_id)) && dead_ids.contains(&third["id"]), "{dead_ids:?}");

    // The owner enables it; resent, the dead delivery goes out.
    let enable = format!("{}/endpoint/enable", agent.path());
    let enabled = expect_status(app.signed(&agent.signer, Method::POST, &enable, &Value::Null).await, 200).await;
    assert!(enabled["endpoint_disabled_at"].is_null());
    assert!(failing_since(&app.db).await.is_none(), "failures are counted afresh");
    pipeline.standin.set_available(true);
    expect_status(app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 202).await;
    assert!(pipeline.receiver.wait_for(5, 10).await, "the resend reaches the endpoint");

    let messages = distinct_events(&app.pubsub.events, 6, WAIT).await;
    let types = types_by_aggregate(&messages);
    assert_eq!(types[&agent_id], ["agent.registered", "endpoint.disabled", "endpoint.enabled"]);
    let events: Vec<Value> = messages.iter().map(documented_event).collect();
    let disabled = &events.iter().find(|event| event["type"] == "endpoint.disabled").unwrap()["data"];
    assert_eq!(disabled["reason"], "failing");
    assert_eq!(disabled["endpoint_url"], pipeline.receiver.url("/agent"));
}

#[tokio::test]
async fn a_delivery_to_a_former_url_says_nothing_of_the_new_endpoint_and_is_resent_to_the_new_one() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![410], ..Default::default() }).await;
    pipeline.standin.set_available(false);
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    let moved = json!({"endpoint_url": pipeline.receiver.url("/agent-v2")});
    expect_status(pipeline.app.signed(&agent.signer, Method::PATCH, &agent.path(), &moved).await, 200).await;

    // The queued delivery still goes where it was addressed; the old server is gone.
    let delivery = first_delivery(&pipeline, &agent, &job).await;
    let id = delivery["id"].as_str().unwrap();
    assert_eq!(pipeline.push(id, 1).await.status(), 200);
    assert_eq!(pipeline.receiver.received()[0].path, "/agent");
    assert_eq!(first_delivery(&pipeline, &agent, &job).await["status"], "dead");
    let shown = expect_status(pipeline.app.get(&agent.path()).await, 200).await;
    assert!(shown["endpoint_disabled_at"].is_null(), "the new endpoint stays enabled: {shown}");
    assert!(failing_since(&pipeline.app.db).await.is_none(), "and no failure is counted against it");

    pipeline.standin.set_available(true);
    let resend = format!("/v1/deliveries/{id}/resend");
    expect_status(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await, 202).await;
    assert!(pipeline.receiver.wait_for(2, 10).await, "the resend goes out");
    assert_eq!(pipeline.receiver.received()[1].path, "/agent-v2", "to the endpoint as it is now");
}
