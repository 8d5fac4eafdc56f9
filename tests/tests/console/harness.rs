//! The browser harness itself (`tests::browser`), on a page of the test's
//! own, served with a strict CSP like the console's: each check the console
//! tests rely on must catch what it is there to catch, and a failed step must
//! leave no browser behind.

use axum::Router;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use tests::browser::{Browser, ColorScheme, Profile, Viewport, screenshot_root};

/// A page with what the checks must see: an inline script (that the CSP
/// blocks), an image from another origin, an unlabelled input (a critical
/// axe violation), labelled controls a script of its own origin brings to
/// life, and a dark colour scheme.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Harness page</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/page.css">
  <script type="module" src="/page.js"></script>
  <script>document.title = 'inline script ran';</script>
</head>
<body>
  <main>
    <h1>Harness</h1>
    <label for="name">Agent name</label>
    <input id="name">
    <label>Price <select id="price"><option>10</option><option>20</option></select></label>
    <button type="button">Greet</button>
    <button type="button" aria-label="Greet twice">Again</button>
    <p id="greeting"></p>
    <input id="unlabelled">
    <img src="FOREIGN/pixel.png" alt="from elsewhere">
  </main>
</body>
</html>"#;

const SCRIPT: &str = r#"
const button = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Greet');
button.addEventListener('click', () => {
  const name = document.getElementById('name').value;
  const price = document.getElementById('price').value;
  setTimeout(() => { document.getElementById('greeting').textContent = `Hello ${name} at ${price}`; }, 200);
});
"#;

const STYLE: &str = "body { background: #fff; color: #111; }
@media (prefers-color-scheme: dark) { body { background: #111; color: #eee; } }";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'";

/// Serves the page on 127.0.0.1 (port 0); answers its URL. The image's
/// "other origin" is `localhost` on the same port: another origin by
/// scheme-host-port, and nothing leaves the machine.
async fn serve_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = PAGE.replace("FOREIGN", &format!("http://localhost:{port}"));
    let headers = |kind: &'static str| [(CONTENT_TYPE, kind), (CONTENT_SECURITY_POLICY, CSP)];
    let router = Router::new()
        .route("/", get(move || async move { (headers("text/html; charset=utf-8"), page).into_response() }))
        .route("/page.js", get(move || async move { (headers("text/javascript"), SCRIPT).into_response() }))
        .route("/page.css", get(move || async move { (headers("text/css"), STYLE).into_response() }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://127.0.0.1:{port}/")
}

/// The page served, a browser for test `test`, and a profile that opened the page.
async fn open_page(test: &str) -> (String, Browser, Profile) {
    let url = serve_page().await;
    let browser = Browser::start(test);
    let profile = browser.profile("user").await;
    profile.goto(&url).await;
    (url, browser, profile)
}

#[tokio::test]
async fn the_checks_catch_inline_scripts_foreign_requests_and_accessibility_violations() {
    let (url, _browser, profile) = open_page("harness_checks").await;

    assert_eq!(profile.execute("return document.title", vec![]).await, "Harness page", "the inline script did not run");
    let violations = profile.csp_violations().await;
    assert!(
        violations.iter().any(|entry| entry.message.contains("inline script")),
        "the blocked inline script is reported: {violations:?}"
    );
    let foreign = profile.foreign_requests().await;
    assert_eq!(foreign, [url.replace("127.0.0.1", "localhost") + "pixel.png"], "the image for another origin");
    assert!(profile.requests().await.contains(&format!("{url}page.js")), "same-origin requests are seen too");

    let axe = profile.axe_violations().await;
    let rules: Vec<&str> = axe.iter().map(|violation| violation.id.as_str()).collect();
    assert!(rules.contains(&"label"), "the unlabelled input is a critical violation: {rules:?}");
    assert!(axe.iter().all(|violation| violation.is_serious()), "only serious and critical ones are answered");
    assert!(axe.iter().any(|violation| violation.to_string().contains("#unlabelled")), "{}", axe[0]);
}

#[tokio::test]
async fn steps_find_controls_by_label_and_role_and_wait_for_the_page() {
    let (_, _browser, profile) = open_page("harness_steps").await;

    profile.fill("Agent name", "Polyglot").await;
    profile.select("Price", "20").await;
    profile.click("button", "Greet").await;
    // The page answers 200 ms later: the step waits for it.
    profile.wait_for_text("Hello Polyglot at 20").await;
    let greeting = profile.by_id("greeting").await;
    assert_eq!(profile.text(&greeting).await, "Hello Polyglot at 20");
    assert!(profile.has_role("button", "Greet twice").await, "aria-label names a button");
    assert!(!profile.has_role("button", "Again").await, "…instead of its text");
    assert!(profile.has_role("heading", "Harness").await);

    let shot = profile.screenshot("greeted").await;
    assert_eq!(shot, screenshot_root().join("harness_steps/user-greeted.png"));
    assert_eq!(png_width(&shot), 1280, "desktop by default");
}

#[tokio::test]
async fn a_profile_emulates_a_phone_and_dark_mode_across_navigations() {
    let url = serve_page().await;
    let browser = Browser::start("harness_emulation");
    let profile = browser.profile("user").await;
    profile.set_viewport(Viewport::Phone).await;
    profile.set_color_scheme(ColorScheme::Dark).await;
    profile.goto(&url).await;

    let seen = "return [innerWidth, matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor]";
    assert_eq!(profile.execute(seen, vec![]).await, json!([360, true, "rgb(17, 17, 17)"]));
    assert_eq!(png_width(&profile.screenshot("phone-dark").await), 360);

    profile.set_viewport(Viewport::Desktop).await;
    profile.set_color_scheme(ColorScheme::Light).await;
    profile.goto(&url).await;
    assert_eq!(profile.execute(seen, vec![]).await, json!([1280, false, "rgb(255, 255, 255)"]));
}

#[tokio::test]
async fn two_profiles_are_two_users_with_their_own_indexeddb() {
    let url = serve_page().await;
    let browser = Browser::start("harness_profiles");
    let (first, second) = (browser.profile("first").await, browser.profile("second").await);
    first.goto(&url).await;
    second.goto(&url).await;
    const PUT: &str = r#"
        const done = arguments[arguments.length - 1];
        const open = indexedDB.open('keys', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('keys');
        open.onsuccess = () => {
          const tx = open.result.transaction('keys', 'readwrite');
          tx.objectStore('keys').put('secret of the first', 'key');
          tx.oncomplete = () => done(true);
        };
        open.onerror = () => done(String(open.error));
    "#;
    const GET: &str = r#"
        const done = arguments[arguments.length - 1];
        const open = indexedDB.open('keys', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('keys');
        open.onsuccess = () => {
          const get = open.result.transaction('keys').objectStore('keys').get('key');
          get.onsuccess = () => done(get.result ?? null);
        };
    "#;
    assert_eq!(first.client().execute_async(PUT, vec![]).await.unwrap(), true);
    assert_eq!(first.client().execute_async(GET, vec![]).await.unwrap(), "secret of the first");
    assert_eq!(second.client().execute_async(GET, vec![]).await.unwrap(), Value::Null, "the second has its own");
}

#[tokio::test]
#[should_panic(expected = "timed out after")]
async fn a_step_that_never_happens_fails_with_a_screenshot() {
    let (_, _browser, profile) = open_page("harness_failure").await;
    profile.wait_until_within("a miracle", std::time::Duration::from_millis(300), || async { false }).await;
}

#[tokio::test]
async fn dropping_the_browser_leaves_no_chromium_and_no_profile_directory() {
    let (_, browser, profile) = open_page("harness_cleanup").await;
    let capabilities = profile.client().capabilities().cloned().unwrap_or_default();
    let data_dir = capabilities["chrome"]["userDataDir"].as_str().expect("chromedriver names the profile's directory");
    let data_dir = data_dir.to_owned();
    assert!(!processes_mentioning(&data_dir).is_empty(), "Chromium runs with its profile directory");

    drop(profile);
    drop(browser);
    assert_eq!(processes_mentioning(&data_dir), Vec::<String>::new(), "no process is left");
    assert!(!std::path::Path::new(&data_dir).exists(), "the profile directory is gone");
}

/// The command lines of the live processes that mention `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // A zombie (state Z) has exited; only its parent's wait remains.
        let state = status.rsplit(')').next().unwrap_or_default().split_whitespace().next();
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if state != Some("Z") && cmdline.contains(text) {
            found.push(cmdline);
        }
    }
    found
}

/// The width a PNG file declares (its IHDR chunk).
fn png_width(path: &std::path::Path) -> u32 {
    let png = std::fs::read(path).unwrap();
    assert_eq!(&png[1..4], b"PNG", "{} is a PNG", path.display());
    u32::from_be_bytes(png[16..20].try_into().unwrap())
}
