//! Browser tests of the console: headless Chromium driven through
//! chromedriver (WebDriver, with the `fantoccini` client), against the real
//! stack.
//!
//! ```ignore
//! let stack = ConsoleStack::start("my_test").await;      // API, worker, Cloud Tasks stand-in, receiver, chromedriver
//! let alice = stack.profile("agent").await;              // a Chromium with a user-data-dir (IndexedDB) of its own
//! let bob = stack.profile("client").await;               // another user, another browser
//! alice.goto(&stack.console_url("#/discover")).await;
//! alice.fill("Name", "Polyglot").await;                  // the control labelled "Name"
//! alice.click("button", "Create agent").await;           // by role and accessible name
//! alice.wait_for_text("Agent created").await;            // waits on the page, up to WAIT
//! alice.wait_until("the job is listed", || async { /* any check */ true }).await;
//! alice.screenshot("agent-created").await;               // target/console-screenshots/my_test/agent-agent-created.png
//! alice.set_viewport(Viewport::Phone).await;             // 360 px wide, mobile
//! alice.set_color_scheme(ColorScheme::Dark).await;       // prefers-color-scheme: dark
//! assert!(alice.axe_violations().await.is_empty());      // serious and critical ones
//! assert!(alice.foreign_requests().await.is_empty());    // nothing left for another origin
//! assert!(alice.csp_violations().await.is_empty());
//! ```
//!
//! Everything that looks for something waits for it (up to [`WAIT`]) and
//! panics with a clear message and a screenshot path when it does not come:
//! tests read as steps, with no sleeps. Each test runs one chromedriver
//! ([`Browser`]); each [`Profile`] is a Chromium of its own on it. Dropping
//! the browser (also when a test panics) kills chromedriver and every
//! Chromium and removes their user-data-dirs.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `chromium`,
//! `chromium-driver`), and for [`Profile::axe_violations`] the env var
//! [`AXE_CORE_JS`], which `cargo xtask test` sets.

mod axe;
mod chromium;
mod driver;
mod find;
mod observed;
mod stack;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

pub use axe::{AXE_CORE_JS, Violation};
pub use chromium::LogEntry;
pub use fantoccini::elements::Element;
pub use stack::ConsoleStack;

use driver::{Driver, Programs};
use observed::Observed;

/// How long a step waits for what it looks for before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// One chromedriver for one test, and where its screenshots go.
pub struct Browser {
    // Dropped first: kills chromedriver and its browsers before their directories go.
    driver: Driver,
    data_dirs: DataDirs,
    chromium: PathBuf,
    screenshots: PathBuf,
}

impl Browser {
    /// Starts chromedriver for test `test`, whose screenshots go to
    /// [`screenshot_root`]`/<test>/` (emptied first). Panics, saying what to
    /// install, when Chromium or chromedriver is missing.
    pub fn start(test: &str) -> Self {
        let programs = Programs::find();
        let screenshots = screenshot_root().join(test);
        let _ = std::fs::remove_dir_all(&screenshots);
        std::fs::create_dir_all(&screenshots)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", screenshots.display()));
        Self {
            driver: Driver::start(&programs.chromedriver),
            data_dirs: DataDirs::default(),
            chromium: programs.chromium,
            screenshots,
        }
    }

    /// A new browser profile: a headless Chromium with a user-data-dir
    /// (cookies, IndexedDB) of its own, so two profiles are two users.
    /// `name` prefixes its screenshots.
    pub async fn profile(&self, name: &str) -> Profile {
        let data_dir = self.data_dirs.make();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    format!("--user-data-dir={}", data_dir.display()),
                    // Chromium exits when chromedriver does (see driver.rs).
                    "--remote-debugging-pipe",
                    // As root (CI containers) Chromium starts only without its sandbox;
                    // the pages it loads are the project's own.
                    "--no-sandbox",
                    "--lang=en-US",
                    "--window-size=1280,800",
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object") };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.driver.url)
            .await
            .unwrap_or_else(|error| panic!("chromedriver starts Chromium ({}): {error}", self.chromium.display()));
        let profile = Profile {
            name: name.to_owned(),
            client,
            screenshots: self.screenshots.clone(),
            observed: Observed::default(),
            failures: Mutex::new(0),
        };
        // What the new tab page loaded is no page of the test's.
        profile.observed.reset(&profile.client).await;
        profile
    }

    /// Where this test's screenshots go.
    pub fn screenshots(&self) -> &Path {
        &self.screenshots
    }
}

/// The profiles' user-data-dirs, removed when dropped (after chromedriver,
/// declared before them in [`Browser`], has been killed with its browsers).
#[derive(Default)]
struct DataDirs(Mutex<Vec<PathBuf>>);

impl DataDirs {
    fn make(&self) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agent-registry-chromium-{}", uuid::Uuid::new_v4().simple()));
        self.0.lock().unwrap().push(dir.clone());
        dir
    }
}

impl Drop for DataDirs {
    fn drop(&mut self) {
        for dir in self.0.get_mut().map(std::mem::take).unwrap_or_default() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where screenshots go: `console-screenshots/` in `$CARGO_TARGET_DIR`, or
/// in the workspace's `target/`.
pub fn screenshot_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

/// A window width to lay pages out at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// 360 × 740 CSS px, a phone (mobile emulation: touch, `<meta name=viewport>` honoured).
    Phone,
    /// 1280 × 800 CSS px.
    Desktop,
}

/// The `prefers-color-scheme` pages see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorScheme {
    Light,
    Dark,
}

/// One user's browser: a Chromium session with its own profile directory.
pub struct Profile {
    name: String,
    client: Client,
    screenshots: PathBuf,
    observed: Observed,
    failures: Mutex<u32>,
}

impl Profile {
    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for its load event.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|error| panic!("{}: cannot open {url}: {error}", self.name));
    }

    /// The page's current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.map(String::from).unwrap_or_else(|error| format!("(no URL: {error})"))
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|error| panic!("{}: script fails: {error}", self.name))
    }

    /// Waits until `check` is true, looking every 50 ms for up to [`WAIT`];
    /// panics naming `what`, with a screenshot, when it never is.
    pub async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        self.wait_until_within(what, WAIT, check).await;
    }

    /// [`Profile::wait_until`] with a timeout of its own.
    pub async fn wait_until_within<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check().await {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the page's visible text contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let script = "return document.body !== null && document.body.innerText.includes(arguments[0])";
        self.wait_until(&format!("the text {text:?}"), || async {
            self.client.execute(script, vec![json!(text)]).await.is_ok_and(|found| found == Value::Bool(true))
        })
        .await;
    }

    /// Saves a screenshot of the whole page (also what lies below the
    /// window) as `<profile>-<step>.png` in the test's screenshot directory;
    /// answers its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let path = self.screenshots.join(format!("{}-{step}.png", self.name));
        let png = chromium::full_page_screenshot(&self.client).await;
        std::fs::write(&path, png).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        path
    }

    /// Panics with `problem`, the page's URL, a screenshot (of what the
    /// window shows, by plain WebDriver: nothing in it may panic) and the
    /// browser log's warnings and errors.
    async fn fail(&self, problem: &str) -> ! {
        let failure = {
            let mut failures = self.failures.lock().unwrap();
            *failures += 1;
            *failures
        };
        let screenshot = match self.client.screenshot().await {
            Ok(png) => {
                let path = self.screenshots.join(format!("{}-failure-{failure}.png", self.name));
                match std::fs::write(&path, png) {
                    Ok(()) => path.display().to_string(),
                    Err(error) => format!("(not saved: {error})"),
                }
            }
            Err(error) => format!("(none: {error})"),
        };
        self.observed.update(&self.client).await;
        let log: Vec<String> =
            self.observed.log().iter().filter(|entry| entry.level != "INFO").map(ToString::to_string).collect();
        panic!(
            "{}: {problem}\n  at: {}\n  screenshot: {screenshot}\n  browser log:\n    {}",
            self.name,
            self.url().await,
            if log.is_empty() { "(nothing)".to_owned() } else { log.join("\n    ") }
        );
    }

    /// Lays the page out at `viewport` (lasts across navigations).
    pub async fn set_viewport(&self, viewport: Viewport) {
        let (width, height, mobile) = match viewport {
            Viewport::Phone => (360, 740, true),
            Viewport::Desktop => (1280, 800, false),
        };
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        chromium::devtools(&self.client, "Emulation.setDeviceMetricsOverride", metrics).await;
        chromium::devtools(&self.client, "Emulation.setTouchEmulationEnabled", json!({"enabled": mobile})).await;
    }

    /// Makes pages see `prefers-color-scheme: <scheme>` (lasts across navigations).
    pub async fn set_color_scheme(&self, scheme: ColorScheme) {
        let value = match scheme {
            ColorScheme::Light => "light",
            ColorScheme::Dark => "dark",
        };
        let features = json!({"features": [{"name": "prefers-color-scheme", "value": value}]});
        chromium::devtools(&self.client, "Emulation.setEmulatedMedia", features).await;
    }

    /// axe-core's serious and critical violations on the current page.
    pub async fn axe_violations(&self) -> Vec<Violation> {
        axe::violations(&self.client).await.into_iter().filter(Violation::is_serious).collect()
    }

    /// Every URL this profile's pages requested so far (also those a
    /// Content-Security-Policy then blocked), in order.
    pub async fn requests(&self) -> Vec<String> {
        self.observed.update(&self.client).await;
        self.observed.requests()
    }

    /// The requests so far that went, or tried to go, to an origin other
    /// than the current page's.
    pub async fn foreign_requests(&self) -> Vec<String> {
        let url = self.url().await;
        let origin =
            url::Url::parse(&url).unwrap_or_else(|error| panic!("{}: the page's URL {url}: {error}", self.name));
        observed::foreign(&self.requests().await, &origin.origin())
    }

    /// Every browser log entry so far: console messages, CSP violations, failed loads.
    pub async fn browser_log(&self) -> Vec<LogEntry> {
        self.observed.update(&self.client).await;
        self.observed.log()
    }

    /// The Content-Security-Policy violations reported so far.
    pub async fn csp_violations(&self) -> Vec<LogEntry> {
        self.browser_log().await.into_iter().filter(observed::is_csp_violation).collect()
    }

    /// The errors reported so far (`console.error`, uncaught exceptions,
    /// failed loads, CSP violations): the log's SEVERE entries.
    pub async fn errors(&self) -> Vec<LogEntry> {
        self.browser_log().await.into_iter().filter(|entry| entry.level == "SEVERE").collect()
    }
}
