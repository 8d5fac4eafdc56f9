//! Helpers for the end-to-end tests: spawn the API on port 0 against a fresh
//! database (one per test, dropped afterwards), the real Redis and Google's
//! Pub/Sub emulator (topics and subscriptions of its own per test), and a TCP
//! proxy to take a store or Pub/Sub away and bring it back.

pub mod browser;
pub mod cloud_tasks;
pub mod fastapi_original;
pub mod kms;
pub mod pipeline;
mod proxy;
pub mod pubsub_emulator;
pub mod pubsub_standin;
pub mod replica;

use std::future::Future;

use api::startup::Application;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde_json::{Value, json};
use shared::settings::{Settings, SettingsSource};
use sqlx::migrate::MigrateDatabase;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use proxy::TcpProxy;
use pubsub_emulator::TestPubSub;
pub use reqwest::Method;
pub use shared::signing::RequestSigner;

/// A port nothing listens on now (the kernel's pick), for a server started
/// as a process of its own.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// Makes the process `command` starts die with the test process (Linux's
/// parent-death signal), so a test that panics or is killed leaves no
/// server behind.
pub fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// The Postgres server tests create their databases on (any database there).
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A database of its own for one test, migrated; dropped when this is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let database = Self::named();
        let settings = settings(&database, &redis_url(), |_| {});
        shared::db::migrate(&settings).await.expect("the test database is created and migrated");
        database
    }

    /// A database with the migrations up to and including `version` only:
    /// the schema a previous release ran on.
    pub async fn create_migrated_through(version: i64) -> Self {
        let database = Self::named();
        sqlx::Postgres::create_database(&database.url).await.expect("the test database is created");
        let mut db = PgConnection::connect(&database.url).await.expect("the test database answers");
        shared::db::MIGRATOR.run_to(version, &mut db).await.expect("the earlier migrations apply");
        database
    }

    fn named() -> Self {
        let name = format!("ar_test_{}", uuid::Uuid::new_v4().simple());
        let mut url = reqwest::Url::parse(&admin_database_url()).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self { name, url: url.to_string() }
    }

    /// The same database through another host and port (e.g. a proxy).
    pub fn url_via(&self, port: u16) -> String {
        let mut url = reqwest::Url::parse(&self.url).unwrap();
        url.set_port(Some(port)).unwrap();
        url.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_database_url()).await?;
                // The name is ours (a uuid), not input.
                let drop = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                admin.execute(sqlx::AssertSqlSafe(drop)).await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// The local key the API and the worker of a test seal webhook secrets with.
pub const TEST_WEBHOOK_SECRET_KEY: &str = "dGVzdHMgb25seTogd2ViaG9vayBzZWNyZXRzIGtleSE=";

/// Test settings: Redis keys prefixed by the database name so tests never
/// share a bucket or a nonce, and rate limits out of the way unless a test
/// sets them.
pub fn settings(database: &TestDatabase, redis_url: &str, configure: impl FnOnce(&mut SettingsSource)) -> Settings {
    settings_for(&database.url, &database.name, redis_url, configure)
}

/// [`settings`] for the database named `name` at `url`.
pub fn settings_for(url: &str, name: &str, redis_url: &str, configure: impl FnOnce(&mut SettingsSource)) -> Settings {
    let prefix = format!("{name}:");
    let signing_key = STANDARD.encode(TestKey::generate().seed);
    let mut source = SettingsSource::from_pairs([
        ("PORT", "0"),
        ("DATABASE_URL", url),
        // Four for the API's requests and background tasks, one for discovery's tag walks.
        ("DATABASE_MAX_CONNECTIONS", "5"),
        ("DISCOVERY_DATABASE_CONNECTIONS", "1"),
        ("REDIS_URL", redis_url),
        ("REDIS_POOL_SIZE", "1"),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
        // Nothing listens there: tests without the Cloud Tasks stand-in leave deliveries pending.
        ("CLOUD_TASKS_ENDPOINT", "http://127.0.0.1:9"),
        ("PUBSUB_ENDPOINT", "http://127.0.0.1:9"),
        // Tests read their own writes; the cache has a test of its own.
        ("PUBLIC_READ_CACHE_MS", "0"),
        ("WEBHOOK_SECRET_KEY", TEST_WEBHOOK_SECRET_KEY),
        // A platform key of its own per test: receipts and cards verify against this test's JWKS only.
        ("PLATFORM_SIGNING_KEY", signing_key.as_str()),
    ]);
    for class in ["DISCOVERY", "READ", "WRITE", "WRITE_IP"] {
        source.set(&format!("RATE_LIMIT_{class}_CAPACITY"), "100000");
    }
    configure(&mut source);
    Settings::from_source(&source).expect("test settings are valid")
}

/// A running API and what a test needs to talk to it and look behind it.
pub struct TestApp {
    pub base_url: String,
    settings: Settings,
    pub http: reqwest::Client,
    /// Direct access to the test's database, to arrange what the API cannot.
    pub db: PgPool,
    /// The test's topics on the Pub/Sub emulator, where the API publishes
    /// events and dead letters (unless the test pointed `PUBSUB_ENDPOINT`
    /// elsewhere), and a subscriber on each.
    pub pubsub: TestPubSub,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<Server>,
    // Declared last: dropped after the pool above is closed.
    pub database: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// Spawns the API with extra settings, e.g. to route a store through a proxy.
pub async fn spawn_app_with(configure: impl FnOnce(&mut SettingsSource, &TestDatabase)) -> TestApp {
    spawn_app_on(TestDatabase::create().await, configure).await
}

/// Spawns the API reaching Redis through a proxy the test can cut.
pub async fn spawn_app_behind_redis_proxy() -> (TcpProxy, TestApp) {
    let redis = reqwest::Url::parse(&redis_url()).expect("TEST_REDIS_URL is a URL");
    let target = format!("{}:{}", redis.host_str().unwrap_or("127.0.0.1"), redis.port().unwrap_or(6379));
    let proxy = TcpProxy::start(target).await;
    let proxied = format!("redis://127.0.0.1:{}/0", proxy.port());
    let app = spawn_app_with(|source, _| source.set("REDIS_URL", proxied)).await;
    (proxy, app)
}

/// Spawns the API on an existing test database.
pub async fn spawn_app_on(
    database: TestDatabase,
    configure: impl FnOnce(&mut SettingsSource, &TestDatabase),
) -> TestApp {
    let pubsub = TestPubSub::create().await;
    let settings = settings(&database, &redis_url(), |source| {
        source.set("PUBSUB_ENDPOINT", pubsub.endpoint());
        source.set("PUBSUB_EVENTS_TOPIC", &pubsub.events_topic);
        source.set("PUBSUB_DEAD_LETTER_TOPIC", &pubsub.dead_letter_topic);
        configure(source, &database);
    });
    let (base_url, shutdown, server) = launch(&settings).await;
    let db = PgPool::connect(&database.url).await.expect("the test database accepts connections");
    TestApp {
        base_url,
        settings,
        http: reqwest::Client::new(),
        db,
        pubsub,
        shutdown: Some(shutdown),
        server: Some(server),
        database,
    }
}

type Server = JoinHandle<std::io::Result<()>>;

/// Builds and starts an API process; returns its URL, its stop switch and its task.
async fn launch(settings: &Settings) -> (String, oneshot::Sender<()>, Server) {
    let app = Application::build(settings.clone()).await.expect("the API builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop.await;
    }));
    (base_url, shutdown, server)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("the API answers")
    }

    /// Every Redis key this app wrote (under its key prefix) with its time
    /// to live in milliseconds (-1: none).
    pub async fn redis_keys(&self) -> Vec<(String, i64)> {
        use fred::prelude::{ClientLike, KeysInterface};
        use fred::types::CustomCommand;
        let redis = shared::redis::connect(&self.settings).expect("the Redis pool builds");
        redis.wait_for_connect().await.expect("Redis answers");
        let pattern = format!("{}*", self.settings.redis_key_prefix);
        let keys: Vec<String> =
            redis.custom(CustomCommand::new_static("KEYS", None::<u16>, false), vec![pattern]).await.unwrap();
        let mut ttls = Vec::new();
        for key in keys {
            let ttl: i64 = redis.pttl(&key).await.unwrap();
            ttls.push((key, ttl));
        }
        let _ = redis.quit().await;
        ttls
    }

    /// Sends `body` signed by `signer`, with the given content type.
    pub async fn send_signed(
        &self,
        signer: &RequestSigner,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        send_signed_to(&self.http, &self.url(path), signer, method, content_type, body).await
    }

    /// Sends `body` as JSON (or no body for `Value::Null`), signed by `signer`.
    pub async fn signed(&self, signer: &RequestSigner, method: Method, path: &str, body: &Value) -> reqwest::Response {
        send_signed_to(&self.http, &self.url(path), signer, method, "application/json", json_bytes(body)).await
    }

    /// Starts another API process on this one's database and settings (so
    /// the same Redis keys), as Cloud Run runs several instances.
    pub async fn spawn_instance(&self) -> Instance {
        let (base_url, shutdown, server) = launch(&self.settings).await;
        Instance { base_url, shutdown: Some(shutdown), server }
    }

    /// Registers an agent with a fresh key and `registration` merged with
    /// `overrides`; panics unless it answers 201.
    pub async fn register_agent(&self, overrides: Value) -> TestAgent {
        let key = TestKey::generate();
        let response =
            self.signed(&key.registration_signer(), Method::POST, "/v1/agents", &key.registration(overrides)).await;
        assert_eq!(response.status(), 201, "registration succeeds");
        let registered: Value = response.json().await.unwrap();
        let signer = key.signer(registered["id"].as_str().unwrap());
        TestAgent { registered, signer }
    }

    /// Registers a client with a fresh key; returns its signer and its
    /// registration answer (with `webhook_secret`).
    pub async fn register_client(&self) -> (RequestSigner, Value) {
        let key = TestKey::generate();
        let body = json!({"name": "Acme Research", "public_key": key.public_key});
        let response = self.signed(&key.registration_signer(), Method::POST, "/v1/clients", &body).await;
        assert_eq!(response.status(), 201, "client registration succeeds");
        let client: Value = response.json().await.unwrap();
        (key.signer(client["id"].as_str().unwrap()), client)
    }

    /// Stops this API process and starts a new one on the same database and
    /// settings, as after a crash or a deploy.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// [`TestApp::restart`] with changed settings, as a deploy that changes
    /// them (e.g. rotates the platform key).
    pub async fn restart_with(mut self, change: impl FnOnce(&mut Settings)) -> TestApp {
        self.stop().await.expect("the server stops");
        change(&mut self.settings);
        let (base_url, shutdown, server) = launch(&self.settings).await;
        (self.base_url, self.shutdown, self.server) = (base_url, Some(shutdown), Some(server));
        self
    }

    /// Sends the shutdown signal and waits for the server to stop.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("the server task does not panic"),
            None => Ok(()),
        }
    }
}

/// Another API process on a [`TestApp`]'s database; stops when dropped.
pub struct Instance {
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Server,
}

/// As [`TestApp::signed`], to the instance at `base_url`.
pub async fn signed_at(
    base_url: &str,
    signer: &RequestSigner,
    method: Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let url = format!("{base_url}{path}");
    send_signed_to(&reqwest::Client::new(), &url, signer, method, "application/json", json_bytes(body)).await
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.abort();
    }
}

fn json_bytes(body: &Value) -> Vec<u8> {
    if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() }
}

async fn send_signed_to(
    http: &reqwest::Client,
    url: &str,
    signer: &RequestSigner,
    method: Method,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let headers = signer.sign(method.as_str(), url, &body).await.expect("the request can be signed");
    let mut request = http.request(method, url).header("content-type", content_type);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(body).send().await.expect("the API answers")
}

/// The body of `response` (null when it has none), after checking its status.
pub async fn expect_status(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{body}");
    body
}

impl TestApp {
    /// A job of `agent` for `client` at a price of 10, pending.
    pub async fn hire(&self, client: &RequestSigner, agent: &TestAgent) -> Value {
        let body = json!({"agent_id": agent.registered["id"], "input": {"text": "Bonjour"}, "price": "10"});
        expect_status(self.signed(client, Method::POST, "/v1/jobs", &body).await, 201).await
    }

    /// A job of `agent` for `client`, accepted and completed with `result`.
    pub async fn completed_job(&self, client: &RequestSigner, agent: &TestAgent, result: &Value) -> Value {
        let job = self.hire(client, agent).await;
        let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
        let accept = self.signed(&agent.signer, Method::POST, &format!("{path}/accept"), &Value::Null).await;
        expect_status(accept, 200).await;
        let body = json!({ "result": result });
        let complete = self.signed(&agent.signer, Method::POST, &format!("{path}/complete"), &body).await;
        expect_status(complete, 200).await
    }
}

/// A registered agent: its registration answer and a signer for its key.
pub struct TestAgent {
    pub registered: Value,
    pub signer: RequestSigner,
}

impl TestAgent {
    pub fn path(&self) -> String {
        format!("/v1/agents/{}", self.registered["id"].as_str().unwrap())
    }
}

/// An Ed25519 key pair for a test principal.
pub struct TestKey {
    pub seed: [u8; 32],
    /// Base64 of the public key, as the API takes it.
    pub public_key: String,
}

impl TestKey {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let public_key = STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes());
        Self { seed, public_key }
    }

    /// Signs as `keyid`.
    pub fn signer(&self, keyid: &str) -> RequestSigner {
        RequestSigner::from_seed(&self.seed, keyid).unwrap()
    }

    /// Signs its own registration: keyid = the public key.
    pub fn registration_signer(&self) -> RequestSigner {
        self.signer(&self.public_key)
    }

    /// The private key as a PKCS#8 v1 PEM (RFC 8410 §7: the seed only), as
    /// `openssl genpkey -algorithm ed25519` writes it and the console imports it.
    pub fn pkcs8_pem(&self) -> String {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
        let pair = KeypairBytes { secret_key: self.seed, public_key: None };
        private_key_pem(pair.to_pkcs8_der().expect("an Ed25519 key encodes as PKCS#8").as_bytes())
    }

    /// The body of a key rotation of principal `id` from `current_public_key`
    /// to this key, with its proof of possession (the message docs/API.md specifies).
    pub fn rotation_to(&self, id: &str, current_public_key: &str) -> Value {
        let message = format!("agent-registry key rotation:{id}:{current_public_key}:{}", self.public_key);
        let proof = SigningKey::from_bytes(&self.seed).sign(message.as_bytes());
        json!({"public_key": self.public_key, "proof": STANDARD.encode(proof.to_bytes())})
    }

    /// A valid agent registration for this key, with `overrides` merged in.
    pub fn registration(&self, overrides: Value) -> Value {
        let mut body = json!({
            "name": "Polyglot",
            "description": "Translates documents between forty languages.",
            "capabilities": ["translation"],
            "endpoint_url": "https://polyglot.example.com/webhooks",
            "public_key": self.public_key,
            "price": "12.50",
        });
        if let (Value::Object(body), Value::Object(overrides)) = (&mut body, overrides) {
            body.extend(overrides);
        }
        body
    }
}
/// Runs a Python script of `tests/scripts` with `input` on stdin: its exit
/// status, stdout and stderr.
fn python_script(script: &str, args: &[&str], input: &Value) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Traceback"), "{script} runs (`cargo xtask test` provides the Python tools): {stderr}");
    output
}

/// Verifies what the platform signed with an independent JOSE library
/// (`tests/scripts/verify_signed.py`, joserfc): `what` is `receipts` (input
/// `{"jwks", "receipt"}`, answers the claims) or `card` (input `{"jwks",
/// "card"}`, answers the `kid`s that signed). `Err` says why it does not verify.
pub fn verify_signed(what: &str, input: &Value) -> Result<Value, String> {
    let output = python_script("verify_signed.py", &[what, "--stdin"], input);
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// What is wrong with `card` as an A2A v1.0 Agent Card (the JSON Schema of
/// `tests/a2a`, validated by the `jsonschema` package, and the proto's
/// required fields); empty when it is valid.
pub fn agent_card_problems(card: &Value) -> Vec<String> {
    let output = python_script("validate_agent_card.py", &[], card);
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

/// A PKCS#8 private key (DER) as PEM: base64 in lines of 64 between the markers.
pub fn private_key_pem(der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let lines: Vec<&str> = base64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// Where `program` is on PATH, if it is.
pub(crate) fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Waits (10 s at most) until a statement waits for a lock: on the table
/// `table`, or on anything when `None`. True once one does.
pub async fn a_lock_is_awaited(db: &PgPool, table: Option<&str>) -> bool {
    eventually(10, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND ($1::text IS NULL OR relation = $1::regclass)",
        )
        .bind(table)
        .fetch_one(db)
        .await
        .unwrap();
        waiting > 0
    })
    .await
}

/// Polls `check` every 100 ms until it returns true or `seconds` pass.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
