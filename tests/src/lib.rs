//! Helpers for the end-to-end tests: spawn the API on port 0 against a fresh
//! database (one per test, dropped afterwards) and the real Redis, and a TCP
//! proxy to take a store away and bring it back.

mod proxy;

use std::future::Future;

use api::startup::Application;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde_json::{Value, json};
use shared::settings::{Settings, SettingsSource};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use proxy::TcpProxy;

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
        let name = format!("ar_test_{}", uuid::Uuid::new_v4().simple());
        let mut url = reqwest::Url::parse(&admin_database_url()).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let database = Self { name, url: url.to_string() };
        let settings = settings(&database.url, &redis_url(), |_| {});
        shared::db::migrate(&settings).await.expect("the test database is created and migrated");
        database
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

fn settings(database_url: &str, redis_url: &str, configure: impl FnOnce(&mut SettingsSource)) -> Settings {
    let mut source = SettingsSource::from_pairs([
        ("PORT", "0"),
        ("DATABASE_URL", database_url),
        ("DATABASE_MAX_CONNECTIONS", "4"),
        ("REDIS_URL", redis_url),
        ("REDIS_POOL_SIZE", "1"),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
    ]);
    configure(&mut source);
    Settings::from_source(&source).expect("test settings are valid")
}

/// A running API and what a test needs to talk to it and look behind it.
pub struct TestApp {
    pub base_url: String,
    pub http: reqwest::Client,
    /// Direct access to the test's database, to arrange what the API cannot.
    pub db: PgPool,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Declared last: dropped after the pool above is closed.
    pub database: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// Spawns the API with extra settings, e.g. to route a store through a proxy.
pub async fn spawn_app_with(configure: impl FnOnce(&mut SettingsSource, &TestDatabase)) -> TestApp {
    let database = TestDatabase::create().await;
    let settings = settings(&database.url, &redis_url(), |source| configure(source, &database));
    let app = Application::build(settings).await.expect("the API builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop.await;
    }));
    let db = PgPool::connect(&database.url).await.expect("the test database accepts connections");
    TestApp { base_url, http: reqwest::Client::new(), db, shutdown: Some(shutdown), server: Some(server), database }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("the API answers")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(body).send().await.expect("the API answers")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.patch(self.url(path)).json(body).send().await.expect("the API answers")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).send().await.expect("the API answers")
    }

    /// Registers an agent built from `registration(overrides)`; returns the
    /// 201 answer's body.
    pub async fn register_agent(&self, overrides: Value) -> Value {
        let response = self.post_json("/v1/agents", &registration(overrides)).await;
        assert_eq!(response.status(), 201, "registration succeeds");
        response.json().await.unwrap()
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

/// A valid registration with a fresh key, with `overrides` merged in.
pub fn registration(overrides: Value) -> Value {
    let mut body = json!({
        "name": "Polyglot",
        "description": "Translates documents between forty languages.",
        "capabilities": ["translation"],
        "endpoint_url": "https://polyglot.example.com/webhooks",
        "public_key": new_public_key(),
        "price": "12.50",
    });
    if let (Value::Object(body), Value::Object(overrides)) = (&mut body, overrides) {
        body.extend(overrides);
    }
    body
}

/// Base64 of a fresh Ed25519 public key.
pub fn new_public_key() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    STANDARD.encode(SigningKey::from_bytes(&secret).verifying_key().as_bytes())
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
