//! Logging set-up used by every binary: JSON lines in Cloud Logging's
//! structured format (`severity`, `message`, …) in the cloud, human-readable
//! output in a terminal.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::settings::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("setting RUST_LOG is malformed: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global logger is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax.
pub fn init(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_new(filter)?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(cloud_logging_layer(std::io::stdout)).try_init()?;
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()?;
    }
    Ok(())
}

/// A formatting layer that writes one Cloud Logging JSON object per event.
pub fn cloud_logging_layer<S, W>(make_writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(CloudLoggingFormat)
        .with_writer(make_writer)
}

/// See <https://cloud.google.com/logging/docs/structured-logging> for the
/// special keys Cloud Logging lifts out of a JSON log line.
struct CloudLoggingFormat;

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
                innermost = Some(span.name());
                if let Some(stored) = span.extensions().get::<FormattedFields<N>>()
                    && let Ok(Value::Object(values)) = serde_json::from_str::<Value>(stored)
                {
                    span_fields.extend(values);
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), name.into());
            }
            line.extend(span_fields);
        }
        line.extend(fields);

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
        let subscriber = tracing_subscriber::registry().with(cloud_logging_layer(move || writer.clone()));
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
}
