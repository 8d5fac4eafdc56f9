//! Checks every console page must pass, at 360 px and on a desktop, in
//! light and in dark: axe-core finds no serious or critical violation, no
//! page is wider than the window, nothing is requested from another origin, the browser logs no error and
//! no Content-Security-Policy violation; a screenshot of each. And the CSP
//! holds: the console works under it, and a script put inline into its page
//! does not run.
//!
//! The pages, and when each has rendered, are those of the console's
//! contract (its routes and the elements that mark them ready).

use serde_json::{Value, json};
use tests::browser::{ColorScheme, ConsoleStack, Profile, Viewport};
use tests::{Method, TestKey, expect_status};

/// An agent and a client with a finished job between them (so the pages
/// have a job, deliveries and a receipt to show), and their keys.
struct Arranged {
    agent_id: String,
    agent_key: TestKey,
    client_id: String,
    client_key: TestKey,
}

async fn arrange(stack: &ConsoleStack) -> Arranged {
    let (app, receiver) = (&stack.pipeline.app, &stack.pipeline.receiver);
    let agent_key = TestKey::generate();
    let registration = agent_key.registration(json!({"endpoint_url": receiver.url("/agent")}));
    let agent = app.signed(&agent_key.registration_signer(), Method::POST, "/v1/agents", &registration).await;
    let agent_id = expect_status(agent, 201).await["id"].as_str().unwrap().to_owned();
    let client_key = TestKey::generate();
    let registration = json!({"name": "Acme Research", "public_key": client_key.public_key});
    let client = app.signed(&client_key.registration_signer(), Method::POST, "/v1/clients", &registration).await;
    let client_id = expect_status(client, 201).await["id"].as_str().unwrap().to_owned();

    let (agent_signer, client_signer) = (agent_key.signer(&agent_id), client_key.signer(&client_id));
    let hire = json!({"agent_id": agent_id, "input": {"text": "Bonjour"}, "price": "10", "callback_url": receiver.url("/client")});
    let job = expect_status(app.signed(&client_signer, Method::POST, "/v1/jobs", &hire).await, 201).await;
    let job_path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    expect_status(app.signed(&agent_signer, Method::POST, &format!("{job_path}/accept"), &Value::Null).await, 200)
        .await;
    let result = json!({"result": {"text": "Hello"}});
    expect_status(app.signed(&agent_signer, Method::POST, &format!("{job_path}/complete"), &result).await, 200).await;
    Arranged { agent_id, agent_key, client_id, client_key }
}

/// Opens `route` and waits until `ready` (a CSS selector) marks it rendered.
async fn open(stack: &ConsoleStack, profile: &Profile, route: &str, ready: &str) {
    profile.goto(&stack.console_url(route)).await;
    profile.by_css(ready).await;
}

/// Takes up an existing identity (`role` is "agent" or "client") with its id
/// and PEM, on the "Use an existing …" form of its page.
async fn use_key(profile: &Profile, role: &str, id: &str, key: &TestKey) {
    let label = if role == "agent" { "Agent id" } else { "Client id" };
    profile.fill(label, id).await;
    profile.fill("Private key (PEM)", &key.pkcs8_pem()).await;
    profile.click("button", "Use this key").await;
}

/// Screenshots `page`; fails on its serious and critical axe violations,
/// and when it is wider than the window (a phone would scroll sideways).
async fn check(profile: &Profile, look: &str, page: &str) {
    profile.screenshot(&format!("{look}-{page}")).await;
    let widths = profile.execute("return [document.documentElement.scrollWidth, innerWidth]", vec![]).await;
    assert!(widths[0].as_u64() <= widths[1].as_u64(), "{page} ({look}) overflows the window: {widths}");
    let violations = profile.axe_violations().await;
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{page} ({look}): axe finds\n{}", listed.join("\n"));
}

/// Every page, as a visitor, then as the agent and the client, laid out at
/// `viewport` in `scheme`.
async fn every_page_passes(test: &str, viewport: Viewport, scheme: ColorScheme) {
    let stack = ConsoleStack::start(test).await;
    let arranged = arrange(&stack).await;
    let profile = stack.profile("user").await;
    profile.set_viewport(viewport).await;
    profile.set_color_scheme(scheme).await;
    let look = format!("{viewport:?}-{scheme:?}").to_lowercase();

    open(&stack, &profile, "#/discover", "#results:not([aria-busy]) li.card.agent").await;
    check(&profile, &look, "discover").await;
    open(
        &stack,
        &profile,
        &format!("#/agents/{}", arranged.agent_id),
        "#receipt-list li.receipt .verdict:is(.ok, .bad)",
    )
    .await;
    check(&profile, &look, "agent").await;
    open(&stack, &profile, "#/me/agent", "form#create-agent").await;
    check(&profile, &look, "my-agent-new").await;
    open(&stack, &profile, "#/me/client", "form#create-client").await;
    check(&profile, &look, "my-client-new").await;

    open(&stack, &profile, "#/me/agent", "form#use-agent").await;
    use_key(&profile, "agent", &arranged.agent_id, &arranged.agent_key).await;
    profile.by_css("#agent-id").await;
    profile.by_css("#delivery-list li.delivery").await;
    check(&profile, &look, "my-agent").await;
    open(&stack, &profile, "#/me/client", "form#use-client").await;
    use_key(&profile, "client", &arranged.client_id, &arranged.client_key).await;
    profile.by_css("#client-id").await;
    profile.by_css("#job-list li.job").await;
    check(&profile, &look, "my-client").await;

    assert_eq!(profile.foreign_requests().await, Vec::<String>::new(), "nothing leaves for another origin");
    let problems: Vec<String> = profile.errors().await.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "the browser logs no error or CSP violation:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn every_page_passes_on_a_phone_in_light() {
    every_page_passes("console_pages_phone_light", Viewport::Phone, ColorScheme::Light).await;
}

#[tokio::test]
async fn every_page_passes_on_a_phone_in_dark() {
    every_page_passes("console_pages_phone_dark", Viewport::Phone, ColorScheme::Dark).await;
}

#[tokio::test]
async fn every_page_passes_on_a_desktop_in_light() {
    every_page_passes("console_pages_desktop_light", Viewport::Desktop, ColorScheme::Light).await;
}

#[tokio::test]
async fn every_page_passes_on_a_desktop_in_dark() {
    every_page_passes("console_pages_desktop_dark", Viewport::Desktop, ColorScheme::Dark).await;
}

#[tokio::test]
async fn the_console_works_under_its_csp_and_an_inline_script_does_not_run() {
    let stack = ConsoleStack::start("console_csp").await;
    let policy =
        stack.pipeline.app.get("/console/").await.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.split(';').any(|part| part.trim() == directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-"), "{policy}");

    let profile = stack.profile("user").await;
    open(&stack, &profile, "#/discover", "#results:not([aria-busy])").await;
    assert_eq!(profile.csp_violations().await.len(), 0, "the console needs nothing its policy refuses");

    // As an injected <script> (or a template's) would: the page's policy decides, not WebDriver's.
    let inject = "const script = document.createElement('script');
        script.textContent = 'window.inlineScriptRan = true';
        document.head.append(script);
        return window.inlineScriptRan === true";
    assert_eq!(profile.execute(inject, vec![]).await, false, "the inline script did not run");
    profile
        .wait_until("the blocked inline script to be reported", || async {
            profile.csp_violations().await.iter().any(|entry| entry.message.contains("inline script"))
        })
        .await;
    profile.click("link", "My agent").await;
    profile.by_css("form#create-agent").await;
}
