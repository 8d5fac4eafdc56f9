//! What a profile's pages did, from chromedriver's logs: every request they
//! made (the performance log's `Network.requestWillBeSent` and
//! `Network.webSocketCreated`: also the ones a Content-Security-Policy then
//! blocked), and every browser log entry (console messages, CSP violations,
//! failed loads). Kept per profile, since chromedriver hands each entry out
//! once.

use std::sync::Mutex;

use fantoccini::Client;
use serde_json::Value;

use super::chromium::{LogEntry, take_log};

#[derive(Default)]
pub(super) struct Observed {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requests: Vec<String>,
    log: Vec<LogEntry>,
}

impl Observed {
    /// Reads what chromedriver has gathered since the last call.
    pub async fn update(&self, client: &Client) {
        let performance = take_log(client, "performance").await;
        let browser = take_log(client, "browser").await;
        let mut state = self.state.lock().unwrap();
        state.requests.extend(performance.iter().filter_map(requested_url));
        state.log.extend(browser);
    }

    /// Forgets everything so far (e.g. what Chromium's new tab page loaded).
    pub async fn reset(&self, client: &Client) {
        self.update(client).await;
        *self.state.lock().unwrap() = State::default();
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.state.lock().unwrap().log.clone()
    }
}

/// The URL a performance log entry says a page requested, if it is a request.
fn requested_url(entry: &LogEntry) -> Option<String> {
    let message: Value = serde_json::from_str(&entry.message).ok()?;
    let event = &message["message"];
    let url = match event["method"].as_str()? {
        "Network.requestWillBeSent" => &event["params"]["request"]["url"],
        "Network.webSocketCreated" => &event["params"]["url"],
        _ => return None,
    };
    url.as_str().map(str::to_owned)
}

/// The requests of `requests` that went (or tried to go) over the network to
/// an origin other than `origin`; `data:`, `blob:` and the browser's own
/// `chrome:` URLs do not leave the browser.
pub fn foreign(requests: &[String], origin: &url::Origin) -> Vec<String> {
    requests
        .iter()
        .filter(|request| match url::Url::parse(request) {
            Ok(url) => matches!(url.scheme(), "http" | "https" | "ws" | "wss") && url.origin() != *origin,
            Err(_) => true,
        })
        .cloned()
        .collect()
}

/// Whether a browser log entry reports a Content-Security-Policy violation.
pub fn is_csp_violation(entry: &LogEntry) -> bool {
    entry.source.as_deref() == Some("security") || entry.message.contains("Content Security Policy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_requests_to_other_origins_are_foreign() {
        let origin = url::Url::parse("http://127.0.0.1:8080/console/").unwrap().origin();
        let requests: Vec<String> = [
            "http://127.0.0.1:8080/console/app.js",
            "data:image/gif;base64,R0lGOD",
            "blob:http://127.0.0.1:8080/0b8e",
            "chrome://resources/js/util.js",
            "http://localhost:8080/v1/agents",
            "https://fonts.example.com/font.woff2",
            "ws://127.0.0.1:9000/",
        ]
        .map(str::to_owned)
        .to_vec();
        let foreign = foreign(&requests, &origin);
        assert_eq!(
            foreign,
            ["http://localhost:8080/v1/agents", "https://fonts.example.com/font.woff2", "ws://127.0.0.1:9000/"]
        );
    }

    #[test]
    fn requests_come_from_network_events_only() {
        let entry = |method: &str, params: &str| LogEntry {
            level: "INFO".into(),
            source: None,
            message: format!(r#"{{"message":{{"method":"{method}","params":{params}}},"webview":"x"}}"#),
        };
        let sent = entry("Network.requestWillBeSent", r#"{"request":{"url":"http://a/"}}"#);
        let socket = entry("Network.webSocketCreated", r#"{"url":"ws://a/"}"#);
        let other = entry("Page.frameNavigated", r#"{"frame":{"url":"http://a/"}}"#);
        assert_eq!(requested_url(&sent).as_deref(), Some("http://a/"));
        assert_eq!(requested_url(&socket).as_deref(), Some("ws://a/"));
        assert_eq!(requested_url(&other), None);
    }
}
