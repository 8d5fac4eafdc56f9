//! Logging and tracing set-up used by every binary: JSON lines in Cloud
//! Logging's structured format (`severity`, `message`, trace fields, …) in the
//! cloud, human-readable output in a terminal, and OpenTelemetry spans
//! exported over OTLP/HTTP.
//!
//! Every `tracing` span is also an OpenTelemetry span (tracing-opentelemetry),
//! so spans get trace ids even when nothing is exported: log lines always carry
//! them. W3C `traceparent` carries the trace across processes: incoming
//! requests, the Cloud Tasks task (stored with the delivery in between) and
//! outbound webhooks.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, Response};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde_json::{Map, Value};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::settings::{LogFormat, Settings, TraceSettings};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("setting RUST_LOG is malformed: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global logger is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps the tracer provider; [`TelemetryGuard::shutdown`] exports the spans
/// still batched, so call it on exit.
#[must_use = "shut it down on exit, or pending spans are lost"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports what is batched, without stopping. Blocks (up to the export
    /// timeout): call it from a blocking context.
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            eprintln!("cannot export pending spans: {error}");
        }
    }

    /// Exports what is batched and stops exporting. Blocks like [`Self::flush`].
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("cannot export pending spans: {error}");
        }
    }
}

/// Installs the global subscriber (logs and spans). `service` names the
/// process in traces.
pub fn init(service: &'static str, settings: &Settings) -> Result<TelemetryGuard, TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_new(&settings.log_filter)?;
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let provider = tracer_provider(service, &settings.tracing)?;
    let spans = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    if json {
        registry.with(cloud_logging_layer(std::io::stdout, settings.tracing.project.clone())).try_init()?;
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()?;
    }
    Ok(TelemetryGuard { provider })
}

/// Parent-based sampling: a caller's decision (Cloud Run's, or the API's for
/// the worker) is followed, so a trace is kept whole or not at all; new traces
/// are kept at `sample_ratio`. Without an endpoint there is no exporter, but
/// spans still get ids for the logs.
pub fn tracer_provider(service: &'static str, settings: &TraceSettings) -> Result<SdkTracerProvider, TelemetryError> {
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    let resource = Resource::builder().with_service_name(service).build();
    let builder = SdkTracerProvider::builder().with_sampler(sampler).with_resource(resource);
    let builder = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .with_timeout(Duration::from_secs(5))
                .build()?;
            // Batched on the SDK's own thread: requests never wait for the collector.
            builder.with_batch_exporter(exporter)
        }
        None => builder,
    };
    Ok(builder.build())
}

type MakeRequestSpan = fn(&Request) -> Span;
type OnRequestFinished = fn(&Response<axum::body::Body>, Duration, &Span);

/// The `TraceLayer` of both services: one span per request, logged when it
/// ends with its status and latency.
fn http_trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeRequestSpan, (), OnRequestFinished> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeRequestSpan)
        .on_request(())
        .on_response(request_finished as OnRequestFinished)
}

/// One span per request, named by route template (not the raw path, which
/// holds ids) so traces and logs group by endpoint; a child of the caller's
/// trace when the request carries one.
fn request_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        status = tracing::field::Empty,
        principal = tracing::field::Empty,
    );
    if let Some(parent) = remote_parent(request.headers()) {
        // Fails only once the span has started, and it has not yet.
        let _ = span.set_parent(parent);
    }
    span
}

fn request_finished(response: &Response<axum::body::Body>, _latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
}

/// Adds to `router` the request span (with the caller's trace) and one
/// request log line per request in Cloud Logging's `httpRequest` shape.
pub fn traced<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(log_request)).layer(http_trace_layer())
}

/// The request log line: `httpRequest.*` fields, which the formatter nests
/// into the `httpRequest` object Cloud Logging shows as a request.
async fn log_request(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = request.method().clone();
    let url = request.uri().path_and_query().map_or_else(|| request.uri().path().to_owned(), |url| url.to_string());
    let user_agent = request.headers().get(axum::http::header::USER_AGENT).and_then(|agent| agent.to_str().ok());
    let user_agent = user_agent.unwrap_or_default().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        httpRequest.requestMethod = %method,
        httpRequest.requestUrl = url,
        httpRequest.status = response.status().as_u16(),
        httpRequest.latency = format!("{:.6}s", started.elapsed().as_secs_f64()),
        httpRequest.userAgent = user_agent,
        "request finished"
    );
    response
}

/// Dotted keys under `httpRequest.` become one nested object.
fn nest_http_request(line: &mut Map<String, Value>) {
    let keys: Vec<String> = line.keys().filter(|key| key.starts_with("httpRequest.")).cloned().collect();
    if keys.is_empty() {
        return;
    }
    let mut http_request = Map::new();
    for key in keys {
        if let Some(value) = line.remove(&key) {
            http_request.insert(key["httpRequest.".len()..].to_owned(), value);
        }
    }
    line.insert("httpRequest".into(), Value::Object(http_request));
}

/// The caller's trace: W3C `traceparent`, else Cloud Run's
/// `X-Cloud-Trace-Context` (`TRACE_ID/SPAN_ID;o=1`, the span id in decimal).
fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if context.span().span_context().is_valid() {
        return Some(context);
    }
    let header = headers.get("x-cloud-trace-context")?.to_str().ok()?;
    let (trace_id, rest) = header.split_once('/')?;
    let (span_id, options) = rest.split_once(';').unwrap_or((rest, ""));
    let span_id = SpanId::from_bytes(span_id.parse::<u64>().ok()?.to_be_bytes());
    let flags = if options == "o=1" { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let parent = SpanContext::new(TraceId::from_hex(trace_id).ok()?, span_id, flags, true, TraceState::default());
    parent.is_valid().then(|| opentelemetry::Context::new().with_remote_span_context(parent))
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The current span as a W3C `traceparent` value, to hand the trace on; `None`
/// outside any span.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of a stored `traceparent`; call it before entering the span.
pub fn set_parent_traceparent(span: &Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Adds the current span's `traceparent` to an outbound request, so its
/// receiver can join the trace.
pub fn inject_traceparent(headers: &mut HeaderMap) {
    if let Some(value) = current_traceparent().and_then(|value| HeaderValue::from_str(&value).ok()) {
        headers.insert("traceparent", value);
    }
}

/// A formatting layer that writes one Cloud Logging JSON object per event.
/// `project` qualifies the trace id as Cloud Logging expects.
pub fn cloud_logging_layer<S, W>(make_writer: W, project: Option<String>) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer;

    let dispatch = Arc::new(OnceLock::new());
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(CloudLoggingFormat { project, dispatch: dispatch.clone() })
        .with_writer(make_writer)
        .and_then(DispatchCapture(dispatch))
}

/// Remembers the subscriber the layers are part of: tracing-opentelemetry
/// hands out a span's trace context through it, and while an event is being
/// formatted `tracing::dispatcher::get_default` cannot reach it (it is already
/// in use).
struct DispatchCapture(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> tracing_subscriber::Layer<S> for DispatchCapture {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// See <https://cloud.google.com/logging/docs/structured-logging> for the
/// special keys Cloud Logging lifts out of a JSON log line.
struct CloudLoggingFormat {
    project: Option<String>,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl CloudLoggingFormat {
    /// `logging.googleapis.com/trace`, `spanId` and `trace_sampled` of a span,
    /// which is how Logs Explorer joins log lines to traces. Without a project
    /// the trace field holds the bare trace id (still greppable locally).
    fn trace_fields(&self, span: &tracing::span::Id, line: &mut Map<String, Value>) {
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else { return };
        let Some(context) = tracing_opentelemetry::get_otel_context(span, &dispatch) else { return };
        let span = context.span();
        let span = span.span_context();
        if !span.is_valid() {
            return;
        }
        let trace = match &self.project {
            Some(project) => format!("projects/{project}/traces/{}", span.trace_id()),
            None => span.trace_id().to_string(),
        };
        line.insert("logging.googleapis.com/trace".into(), trace.into());
        line.insert("logging.googleapis.com/spanId".into(), span.span_id().to_string().into());
        line.insert("logging.googleapis.com/trace_sampled".into(), span.is_sampled().into());
    }
}

impl<S, N> FormatEvent<S, N> for CloudLoggingFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = FieldsToJson::default();
        event.record(&mut fields);
        let mut fields = fields.0;

        let mut line = Map::new();
        line.insert("severity".into(), severity(*event.metadata().level()).into());
        line.insert("message".into(), fields.remove("message").unwrap_or_else(|| "".into()));
        line.insert(
            "time".into(),
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|_| fmt::Error)?
                .into(),
        );
        line.insert("target".into(), event.metadata().target().into());

        // Fields of the enclosing spans, outermost first so inner ones win.
        if let Some(scope) = ctx.event_scope() {
            let mut span_fields = Map::new();
            let mut innermost = None;
            for span in scope.from_root() {
                if let Some(stored) = span.extensions().get::<FormattedFields<N>>()
                    && let Ok(Value::Object(values)) = serde_json::from_str::<Value>(stored)
                {
                    span_fields.extend(values);
                }
                innermost = Some((span.name(), span.id()));
            }
            if let Some((name, id)) = innermost {
                line.insert("span".into(), name.into());
                // After the loop: no span extensions may be borrowed meanwhile.
                self.trace_fields(&id, &mut line);
            }
            line.extend(span_fields);
        }
        line.extend(fields);
        nest_http_request(&mut line);

        writeln!(writer, "{}", Value::Object(line))
    }
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

#[derive(Default)]
struct FieldsToJson(Map<String, Value>);

impl Visit for FieldsToJson {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_logs_take_cloud_loggings_http_request_shape() {
        let mut line = Map::new();
        line.insert("message".into(), "request finished".into());
        line.insert("httpRequest.status".into(), 200.into());
        line.insert("httpRequest.requestMethod".into(), "GET".into());
        nest_http_request(&mut line);
        assert_eq!(line["httpRequest"], serde_json::json!({"status": 200, "requestMethod": "GET"}));
        assert!(!line.contains_key("httpRequest.status"));
    }

    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_cloud_logging_json_with_span_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(cloud_logging_layer(move || writer.clone(), None));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", route = "/v1/agents", attempt = 1);
            let _entered = span.enter();
            tracing::warn!(status = 503, "postgres is unreachable");
        });

        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "postgres is unreachable");
        assert_eq!(line["status"], 503);
        assert_eq!(line["span"], "request");
        assert_eq!(line["route"], "/v1/agents");
        assert_eq!(line["attempt"], 1);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn lines_inside_a_request_carry_its_trace() {
        let captured = Captured::default();
        let writer = captured.clone();
        let settings = TraceSettings { otlp_endpoint: None, sample_ratio: 1.0, project: Some("acme-prod".into()) };
        let provider = tracer_provider("test", &settings).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(cloud_logging_layer(move || writer.clone(), settings.project.clone()));
        let mut headers = HeaderMap::new();
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(caller));
        let request = Request::builder().uri("/v1/jobs").body(axum::body::Body::empty()).unwrap();
        let (mut parts, body) = request.into_parts();
        parts.headers = headers;
        let request = Request::from_parts(parts, body);

        let span_id = tracing::subscriber::with_default(subscriber, || {
            let span = request_span(&request);
            let _entered = span.enter();
            tracing::info!("job created");
            span.context().span().span_context().span_id().to_string()
        });

        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["logging.googleapis.com/trace"], "projects/acme-prod/traces/4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["logging.googleapis.com/spanId"], span_id.as_str());
        assert_ne!(span_id, "00f067aa0ba902b7", "the request span is the caller's child, not the caller");
        assert_eq!(line["logging.googleapis.com/trace_sampled"], true);
    }

    #[test]
    fn cloud_run_trace_headers_are_understood() {
        let mut headers = HeaderMap::new();
        headers.insert("x-cloud-trace-context", HeaderValue::from_static("4bf92f3577b34da6a3ce929d0e0e4736/17;o=1"));
        let parent = remote_parent(&headers).unwrap();
        let parent = parent.span();
        let parent = parent.span_context();
        assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.span_id().to_string(), "0000000000000011");
        assert!(parent.is_sampled());
    }
}
