//! axe-core on the current page: its source injected through WebDriver's
//! execute (which runs as DevTools' `Runtime.evaluate`, outside the page's
//! Content-Security-Policy), then `axe.run` on the document.
//!
//! The source is the pinned axe-core of `tests/browser/package-lock.json`,
//! which `cargo xtask test` installs and names in [`AXE_CORE_JS`].

use std::sync::OnceLock;

use fantoccini::Client;
use serde::Deserialize;
use serde_json::Value;

/// The env var that holds the path of `axe.min.js`.
pub const AXE_CORE_JS: &str = "AXE_CORE_JS";

/// What it takes to have axe-core, said when it is missing.
const PROVISION: &str = "`cargo xtask test` installs the axe-core of tests/browser/package-lock.json \
    (with npm) under ~/.cache and sets it; by hand: `npm ci --prefix DIR` with that package.json and \
    package-lock.json, then AXE_CORE_JS=DIR/node_modules/axe-core/axe.min.js";

fn source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var(AXE_CORE_JS).unwrap_or_else(|_| {
            panic!("{AXE_CORE_JS} is not set: the accessibility checks need axe-core. {PROVISION}")
        });
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{AXE_CORE_JS}={path} cannot be read ({error}). {PROVISION}"))
    })
}

/// One rule axe found broken, with where.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<ViolatingNode>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ViolatingNode {
    /// The CSS selectors that reach the element (nested for shadow DOM).
    pub target: Value,
    #[serde(rename = "failureSummary", default)]
    pub failure_summary: Option<String>,
}

impl Violation {
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let impact = self.impact.as_deref().unwrap_or("unrated");
        writeln!(f, "{} ({impact}): {} <{}>", self.id, self.help, self.help_url)?;
        for node in &self.nodes {
            let summary = node.failure_summary.as_deref().unwrap_or_default().replace('\n', " ");
            writeln!(f, "  at {}: {summary}", node.target)?;
        }
        Ok(())
    }
}

const RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then((results) => done({ violations: results.violations }))
  .catch((error) => done({ error: String(error) }));
"#;

/// Every violation axe finds on the current page.
pub(super) async fn violations(client: &Client) -> Vec<Violation> {
    let loaded = client.execute("return typeof window.axe === 'object'", vec![]).await.expect("the page runs a script");
    if loaded != Value::Bool(true) {
        client.execute(source(), vec![]).await.expect("axe-core loads into the page");
    }
    let outcome = client.execute_async(RUN, vec![]).await.expect("axe.run answers");
    if let Some(error) = outcome.get("error") {
        panic!("axe.run failed: {error}");
    }
    serde_json::from_value(outcome["violations"].clone()).expect("axe's violations read")
}
