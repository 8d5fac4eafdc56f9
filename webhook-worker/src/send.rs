//! Sending one webhook: the Standard Webhooks request (the body is the
//! event's type, time and data; `webhook-id` is the delivery id, so a
//! receiver can drop duplicates), signed with each of the recipient's
//! secrets, through the SSRF-safe egress client, and what came back.

use std::time::Duration;

use axum::http::{HeaderValue, header};
use reqwest::Method;
use shared::domain::{DeliveryId, EventId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use shared::egress::{EgressClient, EgressError};

/// How much of a receiver's answer is kept for its owner.
const KEPT_RESPONSE_BYTES: usize = 4096;

/// What one send came to.
pub struct Sent {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
    /// How long the receiver asked us to wait (`Retry-After`, seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// Refused by the SSRF policy (or unsendable): never worth retrying.
    pub refused: bool,
}

impl Sent {
    fn failed(error: String, refused: bool) -> Self {
        Self { status: None, body: None, error: Some(error), retry_after: None, refused }
    }

    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// One webhook to send: a delivery of one event.
pub struct Webhook<'a> {
    pub id: DeliveryId,
    pub event: EventId,
    pub event_type: &'a str,
    pub occurred_at: OffsetDateTime,
    pub data: &'a serde_json::Value,
    pub target: &'a str,
    /// The current secret, then (during a rotation) the replaced one: each signs.
    pub secrets: &'a [&'a str],
}

impl Webhook<'_> {
    /// The Standard Webhooks payload: `{"data", "timestamp", "type"}`.
    fn body(&self) -> Option<Vec<u8>> {
        let timestamp = self.occurred_at.format(&Rfc3339).ok()?;
        let payload = serde_json::json!({ "type": self.event_type, "timestamp": timestamp, "data": self.data });
        serde_json::to_vec(&payload).ok()
    }
}

pub async fn send(egress: &EgressClient, webhook: Webhook<'_>, timeout: Duration) -> Sent {
    let Ok(url) = Url::parse(webhook.target) else {
        return Sent::failed("the target URL is not a URL".into(), true);
    };
    let Some(body) = webhook.body() else {
        return Sent::failed("the event cannot be written as a webhook body".into(), true);
    };
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let message_id = webhook.id.to_string();
    let Ok(signature) = shared::webhooks::sign_with_each(webhook.secrets, &message_id, timestamp, &body) else {
        return Sent::failed("the webhook secret is malformed".into(), true);
    };
    let mut request = reqwest::Request::new(Method::POST, url);
    let headers = request.headers_mut();
    for (name, value) in [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", message_id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
        ("x-agent-registry-event-id", webhook.event.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    // The receiver may join the trace as a child of this attempt.
    shared::telemetry::inject_traceparent(headers);
    *request.body_mut() = Some(body.into());
    *request.timeout_mut() = Some(timeout);

    match egress.send(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().get(header::RETRY_AFTER).and_then(retry_after);
            let body = read_prefix(response).await;
            let error = (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}"));
            Sent { status: Some(status), body: Some(body), error, retry_after, refused: false }
        }
        Err(EgressError::Refused(reason)) => Sent::failed(storable(&reason), true),
        Err(error) => Sent::failed(storable(&error.to_string()), false),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a
/// date in the past is no wait.
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// The first 4 KB of the answer, without reading the rest.
async fn read_prefix(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < KEPT_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(KEPT_RESPONSE_BYTES - kept.len())]),
            _ => break,
        }
    }
    storable(&String::from_utf8_lossy(&kept))
}

/// Postgres text cannot hold NUL; a receiver's answer must not stop the
/// attempt from being recorded.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_events_type_time_and_data() {
        let data = serde_json::json!({ "job_id": "job_1" });
        let webhook = Webhook {
            id: DeliveryId::generate(),
            event: EventId::generate(),
            event_type: "job.created",
            occurred_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            data: &data,
            target: "https://example.com/hook",
            secrets: &[],
        };
        let body = String::from_utf8(webhook.body().unwrap()).unwrap();
        assert_eq!(body, r#"{"data":{"job_id":"job_1"},"timestamp":"2027-01-15T08:00:00Z","type":"job.created"}"#);
    }

    /// What the worker records (and the deliveries API shows) when the
    /// receiver refuses the connection: each cause once.
    #[tokio::test]
    async fn a_refused_connection_is_told_once() {
        // A port that refuses: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let egress = EgressClient::new("127.0.0.0/8".parse().unwrap(), Duration::from_secs(5), "test").unwrap();
        let (data, target) = (serde_json::json!({}), format!("http://127.0.0.1:{port}/hook"));
        let webhook = Webhook {
            id: DeliveryId::generate(),
            event: EventId::generate(),
            event_type: "job.created",
            occurred_at: OffsetDateTime::now_utc(),
            data: &data,
            target: &target,
            secrets: &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        };
        let sent = send(&egress, webhook, Duration::from_secs(5)).await;
        assert!(!sent.refused && sent.status.is_none());
        assert_eq!(
            sent.error.as_deref(),
            Some("error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)")
        );
    }

    #[test]
    fn nul_bytes_cannot_stop_an_attempt_from_being_recorded() {
        assert_eq!(storable("ok\0done"), "ok\u{FFFD}done");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&HeaderValue::from_static("3600")), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let parsed = retry_after(&HeaderValue::from_str(&later).unwrap()).unwrap();
        assert!((100..=120).contains(&parsed.as_secs()), "{parsed:?}");
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
        assert_eq!(retry_after(&HeaderValue::from_static("-5")), None);
    }
}
