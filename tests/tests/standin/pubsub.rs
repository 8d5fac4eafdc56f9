//! The Pub/Sub stand-in, driven over gRPC by the official `google-cloud-pubsub`
//! publisher as production drives Pub/Sub, and by a raw gRPC client for what
//! the official one never sends.
//!
//! What the publisher does, as these tests show it (google-cloud-pubsub 1.7):
//! - it retries UNAVAILABLE (and the other transient codes, and transport
//!   errors such as a refused connection) for up to 10 minutes, backing off
//!   100 ms × 4ⁿ up to 60 s with full jitter; INVALID_ARGUMENT is final;
//! - when it gives up on a message with an ordering key, that key is paused:
//!   every later message on it fails at once with `OrderingKeyPaused`, without
//!   reaching the server, until `resume_publish(key)`; other keys, and messages
//!   without a key, go on.

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_auth::credentials::anonymous;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_pubsub::builder::publisher::PublisherBuilder;
use google_cloud_pubsub::client::{BasePublisher, Publisher};
use google_cloud_pubsub::error::PublishError;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;
use tests::eventually;
use tests::pubsub_standin::{
    PUBLISH_PATH, PubSubStandIn, PublishRequest, PublishResponse, PubsubMessage, ReceivedMessage,
};
use time::OffsetDateTime;
use tonic_prost::ProstCodec;

const EVENTS: &str = "projects/local/topics/registry-events";
const DEAD_LETTERS: &str = "projects/local/topics/webhook-dead-letter";
const WAIT: Duration = Duration::from_secs(10);
/// Long enough for the default backoff to come round again after an outage:
/// its third wait alone may be up to 1.6 s, and the client also skips some
/// retries itself (its adaptive throttler) while every attempt fails.
const RECOVERY: Duration = Duration::from_secs(60);

/// A publisher configured as production configures it, but for the endpoint
/// and credentials: plain-text gRPC to the stand-in, no token.
fn publisher_to(endpoint: &str, topic: &str) -> PublisherBuilder {
    Publisher::builder(topic).with_endpoint(endpoint).with_credentials(anonymous::Builder::new().build())
}

async fn publisher(standin: &PubSubStandIn, topic: &str) -> Publisher {
    publisher_to(&standin.endpoint(), topic).build().await.expect("the publisher builds")
}

/// A domain event as the API would publish it: ordered per aggregate.
fn event(ordering_key: &str, event_type: &str, data: &str) -> Message {
    Message::new()
        .set_data(data.to_owned())
        .set_attributes([("event_type", event_type), ("aggregate_id", ordering_key)])
        .set_ordering_key(ordering_key)
}

/// The gRPC code of a failed publish; `None` if it failed otherwise.
fn rpc_code(error: &PublishError) -> Option<Code> {
    match error {
        PublishError::Rpc(error) => error.status().map(|status| status.code),
        _ => None,
    }
}

fn data_of(messages: &[ReceivedMessage]) -> Vec<String> {
    messages.iter().map(|message| String::from_utf8(message.data.clone()).unwrap()).collect()
}

#[tokio::test]
async fn published_messages_are_recorded_exactly_and_in_order_per_ordering_key() {
    let standin = PubSubStandIn::start().await.unwrap();
    let publisher = publisher(&standin, EVENTS).await;
    let before = OffsetDateTime::now_utc();

    let sent = [
        event("agt_1", "job.created", r#"{"job":"job_1"}"#),
        event("agt_2", "job.created", r#"{"job":"job_2"}"#),
        event("agt_1", "job.accepted", r#"{"job":"job_1"}"#),
        Message::new().set_data("no ordering key").set_attributes([("event_type", "client.registered")]),
        event("agt_1", "job.completed", r#"{"job":"job_1"}"#),
        event("agt_2", "job.cancelled", r#"{"job":"job_2"}"#),
    ];
    // All in flight at once, so the client batches them.
    let pending: Vec<_> = sent.iter().map(|message| publisher.publish(message.clone())).collect();
    let mut ids = Vec::new();
    for publish in pending {
        ids.push(publish.await.expect("the message is published"));
    }

    let received = standin.wait_for_messages(EVENTS, sent.len(), WAIT).await;
    assert_eq!(received.len(), sent.len(), "{received:#?}");
    let after = OffsetDateTime::now_utc();
    for (message, id) in sent.iter().zip(&ids) {
        let [recorded] = &received.iter().filter(|recorded| &recorded.message_id == id).collect::<Vec<_>>()[..] else {
            panic!("one recorded message has id {id}: {received:#?}");
        };
        assert_eq!(recorded.topic, EVENTS);
        assert_eq!(recorded.data, message.data.to_vec());
        assert_eq!(recorded.attributes, message.attributes.clone().into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!(recorded.ordering_key, message.ordering_key);
        assert!((before..=after).contains(&recorded.publish_time), "{recorded:?}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique: {ids:?}");

    for key in ["agt_1", "agt_2"] {
        let published: Vec<_> = sent.iter().filter(|message| message.ordering_key == key).collect();
        let arrived: Vec<_> = received.iter().filter(|message| message.ordering_key == key).collect();
        assert_eq!(
            arrived.iter().map(|message| &message.attributes["event_type"]).collect::<Vec<_>>(),
            published.iter().map(|message| &message.attributes["event_type"]).collect::<Vec<_>>(),
            "{key} arrived in publish order"
        );
    }
    assert!(standin.messages(DEAD_LETTERS).is_empty());
}

#[tokio::test]
async fn one_client_publishes_to_several_topics() {
    let standin = PubSubStandIn::start().await.unwrap();
    let client = BasePublisher::builder()
        .with_endpoint(standin.endpoint())
        .with_credentials(anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let events = client.publisher(EVENTS).build();
    let dead_letters = client.publisher(DEAD_LETTERS).build();

    let event_id = events.publish(event("agt_1", "agent.registered", "{}")).await.unwrap();
    let dead_id = dead_letters.publish(Message::new().set_data("dlv_1").set_ordering_key("agt_1")).await.unwrap();

    let [event] = &standin.messages(EVENTS)[..] else { panic!("one event") };
    let [dead] = &standin.messages(DEAD_LETTERS)[..] else { panic!("one dead letter") };
    assert_eq!((event.message_id.as_str(), event.data.as_slice()), (event_id.as_str(), b"{}".as_slice()));
    assert_eq!((dead.message_id.as_str(), dead.data.as_slice()), (dead_id.as_str(), b"dlv_1".as_slice()));
    assert!(dead.attributes.is_empty());
}

#[tokio::test]
async fn an_outage_is_retried_until_it_ends() {
    let standin = PubSubStandIn::start().await.unwrap();
    let publisher = publisher(&standin, EVENTS).await;

    standin.set_available(false);
    let mut pending = publisher.publish(event("agt_1", "job.created", "during the outage"));
    assert!(
        eventually(10, || async { standin.unavailable_answers() >= 2 }).await,
        "the publisher retries UNAVAILABLE: {} attempts",
        standin.unavailable_answers()
    );
    assert!(tokio::time::timeout(Duration::from_millis(1), &mut pending).await.is_err(), "still retrying");
    assert!(standin.messages(EVENTS).is_empty());

    standin.set_available(true);
    let id = tokio::time::timeout(RECOVERY, pending)
        .await
        .expect("a retry gets through once the outage ends")
        .expect("the message is published");
    let [recorded] = &standin.messages(EVENTS)[..] else { panic!("the message arrives once") };
    assert_eq!(
        (recorded.message_id.as_str(), recorded.data.as_slice()),
        (id.as_str(), b"during the outage".as_slice())
    );
}

#[tokio::test]
async fn a_failed_publish_pauses_its_ordering_key_until_resumed() {
    let standin = PubSubStandIn::start().await.unwrap();
    // Gives up after two attempts instead of retrying for ten minutes.
    let publisher = publisher_to(&standin.endpoint(), EVENTS)
        .with_retry_policy(RetryableErrors.with_attempt_limit(2))
        .build()
        .await
        .unwrap();

    standin.set_available(false);
    let failed = publisher.publish(event("agt_1", "job.created", "1")).await.unwrap_err();
    assert_eq!(rpc_code(&failed), Some(Code::Unavailable), "{failed:?}");
    let unordered = publisher.publish(Message::new().set_data("unordered")).await.unwrap_err();
    assert_eq!(rpc_code(&unordered), Some(Code::Unavailable), "{unordered:?}");
    assert_eq!(standin.unavailable_answers(), 4, "two attempts per message");

    standin.set_available(true);
    // The key stays paused after the outage: refused by the client itself.
    let paused = publisher.publish(event("agt_1", "job.accepted", "2")).await.unwrap_err();
    assert!(matches!(paused, PublishError::OrderingKeyPaused), "{paused:?}");
    assert_eq!(standin.unavailable_answers(), 4);
    // Other keys, and messages without one, are not held back.
    publisher.publish(event("agt_2", "job.created", "3")).await.unwrap();
    publisher.publish(Message::new().set_data("4")).await.unwrap();

    publisher.resume_publish("agt_1");
    let id = publisher.publish(event("agt_1", "job.accepted", "5")).await.unwrap();
    let received = standin.messages(EVENTS);
    assert_eq!(data_of(&received), ["3", "4", "5"]);
    assert_eq!(received[2].message_id, id);
}

#[tokio::test]
async fn a_closed_port_is_retried_until_the_stand_in_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");

    // A publisher that gives up reports a transport error, not a service status.
    let impatient = publisher_to(&endpoint, EVENTS).with_retry_policy(RetryableErrors.with_attempt_limit(2));
    let error = impatient.build().await.unwrap().publish(Message::new().set_data("lost")).await.unwrap_err();
    let PublishError::Rpc(cause) = &error else { panic!("an RPC error: {error:?}") };
    assert!(cause.status().is_none() && cause.is_connect(), "{cause:?}");

    let publisher = publisher_to(&endpoint, EVENTS).build().await.unwrap();
    let mut pending = publisher.publish(Message::new().set_data("kept"));
    assert!(tokio::time::timeout(Duration::from_millis(300), &mut pending).await.is_err(), "still retrying");

    let standin = PubSubStandIn::start_on(port).await.unwrap();
    let id = tokio::time::timeout(RECOVERY, pending).await.expect("a retry reaches the stand-in").unwrap();
    let [recorded] = &standin.messages(EVENTS)[..] else { panic!("one message") };
    assert_eq!((recorded.message_id.as_str(), recorded.data.as_slice()), (id.as_str(), b"kept".as_slice()));
}

#[tokio::test]
async fn a_message_with_neither_data_nor_attributes_is_refused() {
    let standin = PubSubStandIn::start().await.unwrap();
    let publisher = publisher(&standin, EVENTS).await;

    // INVALID_ARGUMENT is final: the default policy does not retry it.
    let error = publisher.publish(Message::new()).await.unwrap_err();
    assert_eq!(rpc_code(&error), Some(Code::InvalidArgument), "{error:?}");
    if let PublishError::Rpc(cause) = &error {
        assert!(cause.status().unwrap().message.contains("non-empty data, or at least one attribute"), "{cause:?}");
    }
    publisher.publish(Message::new().set_data("data only")).await.unwrap();
    publisher.publish(Message::new().set_attributes([("event_type", "attributes.only")])).await.unwrap();
    let received = standin.messages(EVENTS);
    assert_eq!(data_of(&received), ["data only", ""]);
    assert_eq!(received[1].attributes["event_type"], "attributes.only");

    // Pub/Sub refuses the whole request, so an empty message fails its batch.
    let batched = publisher_to(&standin.endpoint(), EVENTS)
        .set_message_count_threshold(2)
        .set_delay_threshold(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let (valid, empty) = (batched.publish(Message::new().set_data("valid")), batched.publish(Message::new()));
    for error in [valid.await.unwrap_err(), empty.await.unwrap_err()] {
        assert_eq!(rpc_code(&error), Some(Code::InvalidArgument), "{error:?}");
    }
    assert_eq!(standin.messages(EVENTS).len(), 2);
}

#[tokio::test]
async fn malformed_topics_long_ordering_keys_and_reserved_attributes_are_refused() {
    let standin = PubSubStandIn::start().await.unwrap();
    for topic in
        ["projects/local/subscriptions/registry-events", "registry-events", "projects/local/topics/goog-events"]
    {
        let error = publisher(&standin, topic).await.publish(Message::new().set_data("x")).await.unwrap_err();
        assert_eq!(rpc_code(&error), Some(Code::InvalidArgument), "{topic}: {error:?}");
    }

    let publisher = publisher(&standin, EVENTS).await;
    let too_long = publisher.publish(Message::new().set_data("x").set_ordering_key("k".repeat(1025))).await;
    assert_eq!(rpc_code(&too_long.unwrap_err()), Some(Code::InvalidArgument));
    let reserved = publisher.publish(Message::new().set_data("x").set_attributes([("googclient_id", "1")])).await;
    assert_eq!(rpc_code(&reserved.unwrap_err()), Some(Code::InvalidArgument));

    publisher.publish(Message::new().set_data("at the limit").set_ordering_key("k".repeat(1024))).await.unwrap();
    assert_eq!(data_of(&standin.messages(EVENTS)), ["at the limit"]);
}

/// Publish with a plain gRPC client, which sends whatever it is given.
async fn raw_publish(
    channel: &tonic::transport::Channel,
    request: PublishRequest,
) -> Result<PublishResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the channel is ready");
    let path = http::uri::PathAndQuery::from_static(PUBLISH_PATH);
    let codec = ProstCodec::<PublishRequest, PublishResponse>::default();
    grpc.unary(tonic::Request::new(request), path, codec).await.map(tonic::Response::into_inner)
}

async fn raw_channel(standin: &PubSubStandIn) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(standin.endpoint()).unwrap().connect().await.unwrap()
}

fn request(messages: Vec<PubsubMessage>) -> PublishRequest {
    PublishRequest { topic: EVENTS.into(), messages }
}

fn message(data: &str) -> PubsubMessage {
    PubsubMessage { data: data.into(), ..PubsubMessage::default() }
}

fn with_attributes(count: usize, key: impl Fn(usize) -> String, value: &str) -> PubsubMessage {
    PubsubMessage { attributes: (0..count).map(|i| (key(i), value.to_owned())).collect(), ..message("x") }
}

#[tokio::test]
async fn requests_beyond_pub_sub_limits_are_invalid_arguments() {
    let standin = PubSubStandIn::start().await.unwrap();
    let channel = raw_channel(&standin).await;
    let cases = [
        ("no messages", request(vec![])),
        ("1001 messages", request(vec![message("x"); 1001])),
        ("over 10 MB", request(vec![message(&"x".repeat(10_000_000))])),
        ("101 attributes", request(vec![with_attributes(101, |i| format!("k{i}"), "v")])),
        ("a 257-byte attribute key", request(vec![with_attributes(1, |_| "k".repeat(257), "v")])),
        ("an empty attribute key", request(vec![with_attributes(1, |_| String::new(), "v")])),
        ("a 1025-byte attribute value", request(vec![with_attributes(1, |i| format!("k{i}"), &"v".repeat(1025))])),
        ("a two-character topic id", PublishRequest { topic: "projects/local/topics/ab".into(), ..request(vec![]) }),
    ];
    for (case, request) in cases {
        let status = raw_publish(&channel, request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{case}: {status:?}");
    }
    assert!(standin.messages(EVENTS).is_empty());

    let at_limits = vec![
        with_attributes(100, |i| format!("{i:0>256}"), &"v".repeat(1024)),
        PubsubMessage { ordering_key: "k".repeat(1024), ..message(&"x".repeat(9_000_000)) },
    ];
    let mut messages = vec![message("x"); 998];
    messages.extend(at_limits);
    let response = raw_publish(&channel, request(messages)).await.expect("a request at every limit is accepted");
    assert_eq!(response.message_ids.len(), 1000);
    let received = standin.messages(EVENTS);
    assert_eq!(
        received.iter().map(|message| &message.message_id).collect::<Vec<_>>(),
        Vec::from_iter(&response.message_ids)
    );
}

#[tokio::test]
#[should_panic(expected = "expected 2 messages on projects/local/topics/registry-events within 200ms, 1 arrived")]
async fn waiting_for_messages_that_do_not_come_panics_showing_what_came() {
    let standin = PubSubStandIn::start().await.unwrap();
    publisher(&standin, EVENTS).await.publish(Message::new().set_data("the only one")).await.unwrap();
    standin.wait_for_messages(EVENTS, 2, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_dropped_stand_in_stops_listening() {
    let standin = PubSubStandIn::start().await.unwrap();
    let address = standin.endpoint().trim_start_matches("http://").to_owned();
    tokio::net::TcpStream::connect(&address).await.expect("it listens");
    drop(standin);
    assert!(eventually(5, || async { tokio::net::TcpStream::connect(&address).await.is_err() }).await);
}

#[tokio::test]
async fn other_publisher_methods_are_unimplemented() {
    let standin = PubSubStandIn::start().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(raw_channel(&standin).await);
    grpc.ready().await.unwrap();
    // A GetTopicRequest has the topic as field 1 too.
    let path = http::uri::PathAndQuery::from_static("/google.pubsub.v1.Publisher/GetTopic");
    let codec = ProstCodec::<PublishRequest, ()>::default();
    let status = grpc.unary(tonic::Request::new(request(vec![])), path, codec).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
}
