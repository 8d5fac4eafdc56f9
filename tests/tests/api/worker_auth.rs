//! The worker in its cloud configuration: it admits a push only with an
//! OIDC token Google signed for the tasks-invoker account and the worker's
//! URL. Google's keys come from a JWKS server the test runs; tokens are
//! signed with RSA keys the test makes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tests::TestDatabase;
use tests::pipeline::bind_reusable;
use webhook_worker::startup::Worker;

const INVOKER: &str = "agent-registry-tasks-invoker@project.iam.gserviceaccount.com";

/// An RSA key: its private half (PKCS#8 PEM) signs, its public half is a JWK.
struct RsaKey {
    pem: String,
    jwk: Value,
}

impl RsaKey {
    fn generate(kid: &str) -> Self {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pem = tests::private_key_pem(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap().as_ref());
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        Self { pem, jwk }
    }
}

/// Google's current key, the one it rotates to, and one it never published.
struct Keys {
    google: RsaKey,
    rotated: RsaKey,
    forger: RsaKey,
}

/// Google's JWKS endpoint as the worker sees it: the keys published, and
/// how many times they were fetched.
#[derive(Clone, Default)]
struct Jwks {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(State(jwks): State<Jwks>) -> ([(&'static str, &'static str); 1], axum::Json<Value>) {
    jwks.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = jwks.keys.lock().unwrap().clone();
    // What Google sends.
    ([("cache-control", "public, max-age=21600, must-revalidate, no-transform")], axum::Json(json!({"keys": keys})))
}

struct CloudWorker {
    url: String,
    jwks: Jwks,
    keys: Keys,
    http: reqwest::Client,
    _database: TestDatabase,
}

async fn spawn_cloud_worker() -> CloudWorker {
    let keys = Keys {
        google: RsaKey::generate("google-key-1"),
        rotated: RsaKey::generate("google-key-2"),
        forger: RsaKey::generate("google-key-1"),
    };
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(keys.google.jwk.clone());
    let jwks_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/oauth2/v3/certs", jwks_listener.local_addr().unwrap());
    let router = Router::new().route("/oauth2/v3/certs", get(serve_jwks)).with_state(jwks.clone());
    tokio::spawn(async move { axum::serve(jwks_listener, router).await });

    let database = TestDatabase::create().await;
    let listener = bind_reusable(0).await;
    let url = format!("http://127.0.0.1:{}/tasks/deliver", listener.local_addr().unwrap().port());
    let settings = tests::settings(&database, &tests::redis_url(), |source| {
        source.set("CLOUD_TASKS_INVOKER_SA", INVOKER);
        source.set("WEBHOOK_WORKER_URL", &url);
        source.set("GOOGLE_OIDC_JWKS_URL", &jwks_url);
    });
    let worker = Worker::build_on(listener, settings).await.expect("the worker builds");
    tokio::spawn(worker.run_until_stopped(std::future::pending()));
    CloudWorker { url, jwks, keys, http: reqwest::Client::new(), _database: database }
}

impl CloudWorker {
    /// A push of an unknown delivery: admitted, it is dropped with a 200.
    async fn push(&self, authorization: Option<String>) -> u16 {
        let mut request = self
            .http
            .post(&self.url)
            .header("x-cloudtasks-queuename", "webhook-delivery")
            .header("x-cloudtasks-taskretrycount", "0")
            .json(&json!({"delivery_id": "dlv_0123456789abcdef0123456789abcdef", "generation": 0, "attempt": 1}));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await.expect("the worker answers").status().as_u16()
    }

    async fn push_token(&self, token: String) -> u16 {
        self.push(Some(format!("Bearer {token}"))).await
    }

    /// The claims of a token Cloud Tasks would present.
    fn claims(&self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": "https://accounts.google.com",
            "aud": self.url,
            "azp": "101234567890",
            "sub": "101234567890",
            "email": INVOKER,
            "email_verified": true,
            "iat": now,
            "exp": now + 3600,
        })
    }
}

fn signed(key: &RsaKey, kid: &str, claims: &Value) -> String {
    let header = Header { kid: Some(kid.to_owned()), ..Header::new(Algorithm::RS256) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap()).unwrap()
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

#[tokio::test]
async fn only_a_token_google_signed_for_the_invoker_and_this_worker_is_admitted() {
    let worker = spawn_cloud_worker().await;
    let claims = worker.claims();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    assert_eq!(worker.push(None).await, 401, "the queue header alone admits nothing");
    assert_eq!(worker.push(Some("Bearer test-worker-secret".into())).await, 401, "nor a shared secret");

    let forged = [
        ("signed by a key Google never published", signed(&worker.keys.forger, "google-key-1", &claims)),
        (
            "another audience",
            signed(
                &worker.keys.google,
                "google-key-1",
                &with(claims.clone(), "aud", json!("https://other.run.app/tasks/deliver")),
            ),
        ),
        (
            "another account",
            signed(
                &worker.keys.google,
                "google-key-1",
                &with(claims.clone(), "email", json!("someone@project.iam.gserviceaccount.com")),
            ),
        ),
        (
            "an unverified email",
            signed(&worker.keys.google, "google-key-1", &with(claims.clone(), "email_verified", json!(false))),
        ),
        ("no email", signed(&worker.keys.google, "google-key-1", &with(claims.clone(), "email", Value::Null))),
        (
            "another issuer",
            signed(
                &worker.keys.google,
                "google-key-1",
                &with(claims.clone(), "iss", json!("https://evil.example.com")),
            ),
        ),
        (
            "expired",
            signed(
                &worker.keys.google,
                "google-key-1",
                &with(with(claims.clone(), "exp", json!(now - 600)), "iat", json!(now - 4200)),
            ),
        ),
        (
            "no expiry",
            signed(&worker.keys.google, "google-key-1", &{
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("a key id Google does not publish", signed(&worker.keys.google, "google-key-9", &claims)),
        ("alg none", unsigned_token(&claims)),
        ("HS256 keyed with Google's public key", hs256_with_public_key(&worker.keys.google, &claims)),
        ("not a JWT", "not.a.token".to_owned()),
    ];
    for (what, token) in forged {
        assert_eq!(worker.push_token(token).await, 401, "a token {what} is refused");
    }

    assert_eq!(
        worker.push_token(signed(&worker.keys.google, "google-key-1", &claims)).await,
        200,
        "a valid token is admitted"
    );
    let legacy_issuer = with(claims.clone(), "iss", json!("accounts.google.com"));
    assert_eq!(worker.push_token(signed(&worker.keys.google, "google-key-1", &legacy_issuer)).await, 200);
}

#[tokio::test]
async fn google_keys_are_cached_and_fetched_again_for_a_new_key_id_at_most_every_few_seconds() {
    let worker = spawn_cloud_worker().await;
    let claims = worker.claims();
    for _ in 0..3 {
        assert_eq!(worker.push_token(signed(&worker.keys.google, "google-key-1", &claims)).await, 200);
    }
    assert_eq!(worker.jwks.fetches.load(Ordering::SeqCst), 1, "fetched once, then cached (max-age)");

    // A flood of made-up key ids fetches at most once per interval.
    for attempt in 0..20 {
        let token = signed(&worker.keys.forger, &format!("made-up-{attempt}"), &claims);
        assert_eq!(worker.push_token(token).await, 401);
    }
    assert!(worker.jwks.fetches.load(Ordering::SeqCst) <= 2, "unknown key ids do not hammer Google");

    // Google rotates: a token signed by its new key is admitted once the
    // set is fetched again.
    worker.jwks.keys.lock().unwrap().push(worker.keys.rotated.jwk.clone());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(worker.push_token(signed(&worker.keys.rotated, "google-key-2", &claims)).await, 200, "a rotated key");
    assert_eq!(worker.push_token(signed(&worker.keys.google, "google-key-1", &claims)).await, 200, "the old key too");
}

/// What the worker keeps of Google's keys is bounded (32 keys, 64 KiB): a
/// larger set is refused whole, so a token naming one of its keys is too.
#[tokio::test]
async fn a_google_key_set_beyond_the_bound_is_not_held() {
    let worker = spawn_cloud_worker().await;
    {
        let mut keys = worker.jwks.keys.lock().unwrap();
        for i in 0..32 {
            keys.push(with(worker.keys.rotated.jwk.clone(), "kid", json!(format!("google-key-{}", i + 3))));
        }
    }
    let claims = worker.claims();
    assert_eq!(worker.push_token(signed(&worker.keys.google, "google-key-1", &claims)).await, 401, "33 keys");
    assert_eq!(worker.jwks.fetches.load(Ordering::SeqCst), 1, "the set was fetched, and refused");

    worker.jwks.keys.lock().unwrap().truncate(32);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(worker.push_token(signed(&worker.keys.google, "google-key-1", &claims)).await, 200, "32 keys");
}

/// `alg: none`, no signature.
fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": "google-key-1"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// The classic confusion: HMAC keyed with the RSA public key the verifier holds.
fn hs256_with_public_key(key: &RsaKey, claims: &Value) -> String {
    let header = Header { kid: Some("google-key-1".into()), ..Header::new(Algorithm::HS256) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.jwk.to_string().as_bytes())).unwrap()
}
