//! What chromedriver offers beyond W3C WebDriver, which fantoccini has no
//! method for: Chrome DevTools Protocol commands (`goog/cdp/execute`) and the
//! browser and performance logs (`se/log`), sent through fantoccini's
//! `issue_cmd`.

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde::Deserialize;
use serde_json::{Value, json};

/// A chromedriver command on the current session: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct SessionCommand {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// Runs a DevTools Protocol command in the session's page, e.g.
/// `Emulation.setEmulatedMedia`; its settings last across navigations.
pub(super) async fn devtools(client: &Client, method: &str, params: Value) -> Value {
    let command = SessionCommand { path: "goog/cdp/execute", body: json!({"cmd": method, "params": params}) };
    client.issue_cmd(command).await.unwrap_or_else(|error| panic!("chromedriver runs {method}: {error}"))
}

/// A PNG of the whole page, also what lies below the window.
pub(super) async fn full_page_screenshot(client: &Client) -> Vec<u8> {
    use base64::Engine;
    let metrics = devtools(client, "Page.getLayoutMetrics", json!({})).await;
    let size = &metrics["cssContentSize"];
    let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
    let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
    let shot = devtools(client, "Page.captureScreenshot", params).await;
    let data = shot["data"].as_str().expect("a screenshot's data");
    base64::engine::general_purpose::STANDARD.decode(data).expect("a screenshot is base64")
}

/// One entry of a chromedriver log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    pub level: String,
    /// `console-api`, `security` (CSP), `network`, `javascript`, …; the
    /// performance log has none.
    #[serde(default)]
    pub source: Option<String>,
    pub message: String,
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} {}] {}", self.level, self.source.as_deref().unwrap_or("-"), self.message)
    }
}

/// The entries of log `kind` (`browser` or `performance`) since the last
/// read: chromedriver hands each entry out once.
pub(super) async fn take_log(client: &Client, kind: &'static str) -> Vec<LogEntry> {
    let command = SessionCommand { path: "se/log", body: json!({"type": kind}) };
    let entries =
        client.issue_cmd(command).await.unwrap_or_else(|error| panic!("chromedriver gives its {kind} log: {error}"));
    serde_json::from_value(entries).unwrap_or_else(|error| panic!("chromedriver's {kind} log reads: {error}"))
}
