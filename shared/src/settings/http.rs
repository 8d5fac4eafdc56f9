//! Every service's HTTP server, logs and traces.

use std::str::FromStr;
use std::time::Duration;

use super::declare::{Refusal, default, from_str, in_range, optional, positive, text, variables};
use super::source::{SettingsError, SettingsSource};

variables! {
    /// TCP port the service listens on (Cloud Run sets it).
    PORT: u16 = default("8080").parse(from_str);
    /// Comma-separated origins (scheme://host[:port]) of browser apps allowed to call the API (CORS);
    /// empty: none.
    CORS_ALLOWED_ORIGINS: Vec<String> = default("").parse(origins);
    /// Largest accepted request body.
    REQUEST_BODY_LIMIT_BYTES: usize = default("65536").parse(positive);
    /// After SIGTERM, how long in-flight requests may take (Cloud Run kills after 10 s).
    SHUTDOWN_GRACE_SECONDS: Duration = default("8").parse(|raw| from_str(raw).map(Duration::from_secs));
    /// `json` (Cloud Logging), `pretty`, or `auto`: pretty in a terminal, JSON otherwise.
    LOG_FORMAT: LogFormat = default("auto").parse(from_str);
    /// Log filter (tracing EnvFilter syntax).
    RUST_LOG: String = default("info").parse(text);
    /// OTLP/HTTP collector base URL (`/v1/traces` is appended), e.g. http://127.0.0.1:4318; empty: traces
    /// are not exported.
    OTEL_EXPORTER_OTLP_ENDPOINT: Option<String> = default("").parse(optional);
    /// Share of new traces sampled, 0 to 1 (0.1 in production); a caller's sampling decision is followed.
    TRACE_SAMPLE_RATIO: f64 = default("1.0").parse(|raw| in_range(raw, 0.0, 1.0));
    /// Project id for the `logging.googleapis.com/trace` log field; empty: the field holds the bare
    /// trace id.
    GOOGLE_CLOUD_PROJECT: Option<String> = default("").parse(optional);
}

/// Comma-separated web origins, as a browser sends them in `Origin`:
/// `http(s)://host[:port]`, no path, no trailing slash.
fn origins(raw: &str) -> Result<Vec<String>, Refusal> {
    raw.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let malformed = |why: &str| {
                Refusal::Invalid(format!("{origin:?} is not an origin ({why}); expected e.g. https://app.example.com"))
            };
            let url = url::Url::parse(origin).map_err(|e| malformed(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(malformed("the scheme must be http or https"));
            }
            // A browser's `Origin` is exactly the serialized origin: no path,
            // query, user or trailing slash, a lowercase host, no default port.
            let serialized = url.origin().ascii_serialization();
            if serialized != origin {
                return Err(malformed(&format!("a browser would send {serialized:?}")));
            }
            Ok(serialized)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected auto, json or pretty, got {other:?}")),
        }
    }
}

/// Where traces go and how many are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// OTLP/HTTP base URL; `None`: spans exist (for log correlation) but are not exported.
    pub otlp_endpoint: Option<String>,
    /// Between 0 and 1.
    pub sample_ratio: f64,
    pub project: Option<String>,
}

pub(super) fn tracing(source: &SettingsSource) -> Result<TraceSettings, SettingsError> {
    Ok(TraceSettings {
        otlp_endpoint: OTEL_EXPORTER_OTLP_ENDPOINT.read(source)?,
        sample_ratio: TRACE_SAMPLE_RATIO.read(source)?,
        project: GOOGLE_CLOUD_PROJECT.read(source)?,
    })
}
