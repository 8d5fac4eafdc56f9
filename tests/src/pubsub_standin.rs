//! A local stand-in for Google Cloud Pub/Sub's Publisher (gRPC), so the
//! production publisher — the official `google-cloud-pubsub` client with an
//! endpoint override and anonymous credentials — runs unchanged in tests and in
//! `cargo xtask dev`. It lives in the `tests` crate so that it can never be
//! linked into a production binary.
//!
//! What it models: `google.pubsub.v1.Publisher/Publish` over real gRPC
//! (HTTP/2 without TLS), with the checks and limits Pub/Sub applies to a
//! request, message ids and publish times assigned by the server, and an outage
//! switch. Every well-formed topic exists. Every other gRPC method answers
//! UNIMPLEMENTED; the crate's admin clients (`TopicAdmin`, …) speak HTTP/JSON,
//! which the stand-in does not serve at all. There are no subscriptions:
//! tests read what was published from the stand-in, and it prints one line per
//! message it accepts (or Publish it refuses) to stderr.
//!
//! The wire messages are written by hand (there is no protoc here), with the
//! field numbers of `google/pubsub/v1/pubsub.proto`; fields Publish does not
//! use are skipped when decoding, as protobuf does with unknown fields.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::ready;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use prost::Message;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tonic::Status;
use tonic::body::Body;
use tonic::server::Grpc;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_prost::ProstCodec;

/// `google.pubsub.v1.PublishRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PublishRequest {
    /// `projects/{project}/topics/{topic}`.
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(message, repeated, tag = "2")]
    pub messages: Vec<PubsubMessage>,
}

/// `google.pubsub.v1.PubsubMessage`. `message_id` and `publish_time` are the
/// server's to set: what a publisher puts there is ignored.
#[derive(Clone, PartialEq, Message)]
pub struct PubsubMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(btree_map = "string, string", tag = "2")]
    pub attributes: BTreeMap<String, String>,
    #[prost(string, tag = "3")]
    pub message_id: String,
    #[prost(message, optional, tag = "4")]
    pub publish_time: Option<prost_types::Timestamp>,
    #[prost(string, tag = "5")]
    pub ordering_key: String,
}

/// `google.pubsub.v1.PublishResponse`: one id per message, in request order.
#[derive(Clone, PartialEq, Message)]
pub struct PublishResponse {
    #[prost(string, repeated, tag = "1")]
    pub message_ids: Vec<String>,
}

/// The gRPC path of the one method the stand-in implements.
pub const PUBLISH_PATH: &str = "/google.pubsub.v1.Publisher/Publish";

/// Pub/Sub's limits on a Publish request (docs: "Quotas and limits").
const MAX_REQUEST_BYTES: usize = 10 * 1000 * 1000;
const MAX_MESSAGES: usize = 1000;
const MAX_ORDERING_KEY_BYTES: usize = 1024;
const MAX_ATTRIBUTES: usize = 100;
const MAX_ATTRIBUTE_KEY_BYTES: usize = 256;
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;

/// Bigger than any request Pub/Sub takes, so the size check below (with
/// Pub/Sub's INVALID_ARGUMENT) runs before tonic's own limit would answer
/// OUT_OF_RANGE.
const MAX_DECODED_BYTES: usize = 2 * MAX_REQUEST_BYTES;

/// A message as Publish accepted it.
#[derive(Clone, PartialEq)]
pub struct ReceivedMessage {
    /// Full name: `projects/P/topics/T`.
    pub topic: String,
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    /// Empty when the message has none, as in Pub/Sub.
    pub ordering_key: String,
    /// Assigned by the stand-in, unique across topics: what the publisher's
    /// `publish(…).await` returned.
    pub message_id: String,
    /// When the Publish call that carried it was accepted.
    pub publish_time: OffsetDateTime,
}

/// Shows the data as text (what the project publishes is JSON), so that a
/// failed test says what arrived.
impl std::fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = match std::str::from_utf8(&self.data) {
            Ok(text) => shown(text),
            Err(_) => format!("{} bytes, not UTF-8", self.data.len()),
        };
        f.debug_struct("ReceivedMessage")
            .field("topic", &self.topic)
            .field("data", &data)
            .field("attributes", &self.attributes)
            .field("ordering_key", &self.ordering_key)
            .field("message_id", &self.message_id)
            .field("publish_time", &self.publish_time)
            .finish()
    }
}

/// The stand-in server; dropping it stops listening and closes its
/// connections once their calls are answered.
pub struct PubSubStandIn {
    shared: Arc<Shared>,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
}

impl PubSubStandIn {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let port = listener.local_addr()?.port();
        // Ids look like Pub/Sub's (decimal, about 16 digits) and, starting from
        // the clock, are not reused when `cargo xtask dev` restarts the stand-in.
        let first_id = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros();
        let shared = Arc::new(Shared {
            available: AtomicBool::new(true),
            refused: AtomicUsize::new(0),
            next_id: AtomicU64::new(u64::try_from(first_id).unwrap_or(1)),
            received: watch::Sender::new(Vec::new()),
        });

        let state = shared.clone();
        let router = tower::service_fn(move |request: http::Request<Body>| {
            let shared = state.clone();
            async move {
                if request.uri().path() != PUBLISH_PATH {
                    let method = request.uri().path().trim_start_matches('/');
                    return Ok::<_, Infallible>(
                        Status::unimplemented(format!("Method not found: {method}")).into_http(),
                    );
                }
                let publish = tower::service_fn(move |request: tonic::Request<PublishRequest>| {
                    ready(shared.publish(request.into_inner()).map(tonic::Response::new))
                });
                let mut grpc = Grpc::new(ProstCodec::<PublishResponse, PublishRequest>::default())
                    .max_decoding_message_size(MAX_DECODED_BYTES);
                Ok(grpc.unary(publish, request).await)
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::builder().serve_with_incoming_shutdown(router, TcpIncoming::from(listener), async {
            let _ = stopped.await;
        });
        tokio::spawn(async move {
            if let Err(error) = server.await {
                eprintln!("pubsub_standin: server stopped: {error}");
            }
        });
        Ok(Self { shared, port, stop: Some(stop) })
    }

    /// The value for the publisher's `with_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The messages accepted for `topic` (its full name), in arrival order.
    pub fn messages(&self, topic: &str) -> Vec<ReceivedMessage> {
        self.shared.received.borrow().iter().filter(|message| message.topic == topic).cloned().collect()
    }

    /// Waits until at least `count` messages were accepted for `topic` and
    /// returns all of them, in arrival order.
    ///
    /// # Panics
    /// When they do not arrive within `timeout`, showing what did.
    pub async fn wait_for_messages(&self, topic: &str, count: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let mut received = self.shared.received.subscribe();
        let enough = |all: &Vec<ReceivedMessage>| all.iter().filter(|message| message.topic == topic).count() >= count;
        // The sender lives as long as `self`, so only the timeout can end the wait early.
        let arrived = matches!(tokio::time::timeout(timeout, received.wait_for(enough)).await, Ok(Ok(_)));
        let messages = self.messages(topic);
        if !arrived {
            let mut elsewhere = BTreeMap::<String, usize>::new();
            for message in self.shared.received.borrow().iter().filter(|message| message.topic != topic) {
                *elsewhere.entry(message.topic.clone()).or_default() += 1;
            }
            panic!(
                "expected {count} messages on {topic} within {timeout:?}, {} arrived: {messages:#?}\n\
                 messages on other topics: {elsewhere:?}; Publish calls refused as UNAVAILABLE: {}",
                messages.len(),
                self.unavailable_answers(),
            );
        }
        messages
    }

    /// `false` simulates a Pub/Sub outage: every Publish answers UNAVAILABLE
    /// (which the official publisher retries) until it is switched back.
    pub fn set_available(&self, up: bool) {
        self.shared.available.store(up, Ordering::SeqCst);
    }

    /// How many Publish calls the outage switch has refused: each retry of the
    /// publisher is one more.
    pub fn unavailable_answers(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for PubSubStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Shared {
    available: AtomicBool,
    refused: AtomicUsize,
    next_id: AtomicU64,
    /// Every accepted message in arrival order; a watch channel so that
    /// waiting for messages needs no polling.
    received: watch::Sender<Vec<ReceivedMessage>>,
}

impl Shared {
    fn publish(&self, request: PublishRequest) -> Result<PublishResponse, Status> {
        if !self.available.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            eprintln!("pubsub_standin: {} refused: UNAVAILABLE (outage switch)", request.topic);
            return Err(Status::unavailable("The service was unable to fulfill your request. Please try again."));
        }
        if let Err(status) = validate(&request) {
            eprintln!("pubsub_standin: {} refused: INVALID_ARGUMENT: {}", request.topic, status.message());
            return Err(status);
        }
        let publish_time = OffsetDateTime::now_utc();
        let mut accepted = Vec::with_capacity(request.messages.len());
        // Ids are taken under the channel's lock, so they rise in arrival order.
        self.received.send_modify(|received| {
            for message in request.messages {
                let accepted_message = ReceivedMessage {
                    topic: request.topic.clone(),
                    data: message.data,
                    attributes: message.attributes,
                    ordering_key: message.ordering_key,
                    message_id: self.next_id.fetch_add(1, Ordering::SeqCst).to_string(),
                    publish_time,
                };
                received.push(accepted_message.clone());
                accepted.push(accepted_message);
            }
        });
        for message in &accepted {
            eprintln!(
                "pubsub_standin: {} id={} ordering_key={} attributes={} data={}",
                message.topic,
                message.message_id,
                shown(&format!("{:?}", message.ordering_key)),
                shown(&format!("{:?}", message.attributes)),
                shown(&String::from_utf8_lossy(&message.data)),
            );
        }
        Ok(PublishResponse { message_ids: accepted.into_iter().map(|message| message.message_id).collect() })
    }
}

/// What Pub/Sub checks before it accepts a Publish: the topic's name, then the
/// request's and each message's limits. Refusals are INVALID_ARGUMENT, as
/// Pub/Sub's are, so the publisher does not retry them.
fn validate(request: &PublishRequest) -> Result<(), Status> {
    let invalid = |message: String| Err(Status::invalid_argument(message));
    if !is_topic_name(&request.topic) {
        return invalid(format!(
            "Invalid [topics] name: (name={}); expected projects/{{project}}/topics/{{topic}}",
            request.topic
        ));
    }
    if request.messages.is_empty() {
        return invalid("The request contains no messages.".into());
    }
    if request.messages.len() > MAX_MESSAGES {
        return invalid(format!("The request has {} messages; the limit is {MAX_MESSAGES}.", request.messages.len()));
    }
    if request.encoded_len() > MAX_REQUEST_BYTES {
        return invalid(format!("Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."));
    }
    for message in &request.messages {
        if message.data.is_empty() && message.attributes.is_empty() {
            return invalid(
                "One or more messages in the publish request is empty. \
                 Each message must contain either non-empty data, or at least one attribute."
                    .into(),
            );
        }
        if message.ordering_key.len() > MAX_ORDERING_KEY_BYTES {
            return invalid(format!("An ordering key must be at most {MAX_ORDERING_KEY_BYTES} bytes."));
        }
        if message.attributes.len() > MAX_ATTRIBUTES {
            return invalid(format!("A message may have at most {MAX_ATTRIBUTES} attributes."));
        }
        for (key, value) in &message.attributes {
            if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY_BYTES || key.starts_with("goog") {
                return invalid(format!(
                    "Invalid attribute key {key:?}: 1 to {MAX_ATTRIBUTE_KEY_BYTES} bytes, not starting with \"goog\"."
                ));
            }
            if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
                return invalid(format!(
                    "The value of attribute {key:?} must be at most {MAX_ATTRIBUTE_VALUE_BYTES} bytes."
                ));
            }
        }
    }
    Ok(())
}

/// `projects/{project}/topics/{topic}`, with a topic id as Pub/Sub allows: 3
/// to 255 characters, a letter first, then letters, digits and `-_.~+%`, not
/// starting with `goog`. Any project id without a `/` is taken (`local` is
/// the local default, shorter than a real one).
fn is_topic_name(name: &str) -> bool {
    let Some(("projects", rest)) = name.split_once('/') else { return false };
    let Some((project, rest)) = rest.split_once('/') else { return false };
    let Some(("topics", topic)) = rest.split_once('/') else { return false };
    !project.is_empty()
        && (3..=255).contains(&topic.len())
        && topic.starts_with(|c: char| c.is_ascii_alphabetic())
        && topic.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
        && !topic.starts_with("goog")
}

/// The text on one line (control characters escaped) and at most
/// `LOGGED_CHARS` long, for the log and for failed tests.
fn shown(text: &str) -> String {
    const LOGGED_CHARS: usize = 500;
    let mut shown: String = text
        .chars()
        .take(LOGGED_CHARS)
        .flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] })
        .collect();
    if text.chars().nth(LOGGED_CHARS).is_some() {
        shown.push_str(&format!("… ({} bytes)", text.len()));
    }
    shown
}
