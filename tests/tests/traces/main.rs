//! One job is one trace: API request → create_task (relay) → worker request →
//! delivery attempt → the receiver's `traceparent`, exported over OTLP/HTTP to
//! an in-test collector.
//!
//! A test binary of its own, with one test: it installs the process-wide
//! subscriber and tracer provider as `main` does (nextest also runs every test
//! in a process of its own). The API and the worker run in this process, so
//! they share that provider, like two services exporting to one collector.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use shared::settings::{Settings, SettingsSource};
use tests::pipeline::spawn_pipeline;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_from_the_api_request_to_the_receiver() {
    let collector = Collector::start().await;
    let settings = Settings::from_source(&SettingsSource::from_pairs([
        ("DATABASE_URL", "postgres://unused"),
        ("REDIS_URL", "redis://unused"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
        ("TRACE_SAMPLE_RATIO", "1.0"),
    ]))
    .expect("valid settings");
    let telemetry = Arc::new(shared::telemetry::init("tests", &settings).expect("telemetry installs"));

    let pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await, "job.created arrives");
    let received = pipeline.receiver.received()[0].clone();

    // Spans are exported once ended; the worker's end just after the receiver
    // answers, its request span last (after the answer to Cloud Tasks).
    let exported = tests::eventually(10, || {
        let telemetry = telemetry.clone();
        let collector = &collector;
        async move {
            // Blocking: the export goes to the collector served by this runtime.
            tokio::task::spawn_blocking(move || telemetry.flush()).await.unwrap();
            collector.find("delivery attempt", None).is_some()
                && collector.find("request", Some(("route", "/tasks/deliver"))).is_some()
        }
    })
    .await;
    assert!(exported, "the spans reach the collector: {:?}", collector.names());

    let request = collector.find("request", Some(("route", "/v1/jobs"))).expect("the API request span");
    let create_task = collector.find("create_task", None).expect("the create_task span");
    let push = collector.find("request", Some(("route", "/tasks/deliver"))).expect("the worker request span");
    let attempt = collector.find("delivery attempt", None).expect("the delivery attempt span");

    let trace = hex(&request.trace_id);
    for span in [&create_task, &push, &attempt] {
        assert_eq!(hex(&span.trace_id), trace, "{} is in the job's trace", span.name);
    }
    assert!(request.parent_span_id.is_empty(), "the client sent no trace: the request starts it");
    assert_eq!(
        create_task.parent_span_id, request.span_id,
        "create_task continues the request that wrote the delivery"
    );
    assert_eq!(push.parent_span_id, create_task.span_id, "the worker continues the task's trace");
    assert_eq!(attempt.parent_span_id, push.span_id, "the attempt is part of the push");
    assert_eq!(string_attribute(&attempt, "target_host").as_deref(), Some("127.0.0.1"));

    let traceparent = received.headers["traceparent"].to_str().unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace, "the receiver can join the job's trace");
    assert_eq!(parts[2], hex(&attempt.span_id), "as a child of the attempt that reached it");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|attribute| attribute.key == key).and_then(|attribute| {
        match attribute.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(value) => Some(value.clone()),
            _ => None,
        }
    })
}

/// An OTLP/HTTP (protobuf) trace receiver.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().route("/v1/traces", post(export)).with_state(spans.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, spans }
    }

    /// The first span called `name` (with the attribute, if given).
    fn find(&self, name: &str, attribute: Option<(&str, &str)>) -> Option<Span> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .find(|span| {
                span.name == name
                    && attribute.is_none_or(|(key, value)| string_attribute(span, key).as_deref() == Some(value))
            })
            .cloned()
    }

    fn names(&self) -> Vec<String> {
        self.spans.lock().unwrap().iter().map(|span| span.name.clone()).collect()
    }
}

async fn export(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let exported =
        request.resource_spans.into_iter().flat_map(|resource| resource.scope_spans).flat_map(|scope| scope.spans);
    spans.lock().unwrap().extend(exported);
    (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
}
