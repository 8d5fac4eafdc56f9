//! A Cloud KMS stand-in: the two REST methods the official client calls to
//! wrap and unwrap data keys, `POST /v1/{key}:encrypt` and `:decrypt`. As
//! KMS, its ciphertext is opaque, names its key, and opens only with the
//! same key and additional authenticated data (400 otherwise). Counts the
//! calls, so a test sees how often the services ask KMS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

/// What a ciphertext stands for.
struct Sealed {
    key: String,
    plaintext: Vec<u8>,
    additional_data: Vec<u8>,
}

#[derive(Default)]
struct Vault {
    sealed: Mutex<HashMap<Vec<u8>, Sealed>>,
    encrypts: AtomicUsize,
    decrypts: AtomicUsize,
}

pub struct KmsStandIn {
    port: u16,
    vault: Arc<Vault>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    plaintext: Option<String>,
    ciphertext: Option<String>,
    #[serde(default)]
    additional_authenticated_data: String,
}

impl KmsStandIn {
    pub async fn start() -> Self {
        let vault = Arc::new(Vault::default());
        let router = axum::Router::new().route("/v1/{*call}", post(call)).with_state(vault.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the KMS stand-in");
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { port, vault }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn encrypts(&self) -> usize {
        self.vault.encrypts.load(Ordering::SeqCst)
    }

    pub fn decrypts(&self) -> usize {
        self.vault.decrypts.load(Ordering::SeqCst)
    }
}

fn invalid(message: &str) -> Response {
    let body = json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn call(State(vault): State<Arc<Vault>>, Path(call): Path<String>, Json(request): Json<Request>) -> Response {
    let decode = |field: &str| STANDARD.decode(field).unwrap_or_default();
    let aad = decode(&request.additional_authenticated_data);
    if let Some(key) = call.strip_suffix(":encrypt") {
        vault.encrypts.fetch_add(1, Ordering::SeqCst);
        let plaintext = decode(request.plaintext.as_deref().unwrap_or_default());
        let ciphertext = uuid::Uuid::new_v4().as_bytes().to_vec();
        let sealed = Sealed { key: key.to_owned(), plaintext, additional_data: aad };
        vault.sealed.lock().unwrap().insert(ciphertext.clone(), sealed);
        return Json(json!({"name": key, "ciphertext": STANDARD.encode(ciphertext)})).into_response();
    }
    if let Some(key) = call.strip_suffix(":decrypt") {
        vault.decrypts.fetch_add(1, Ordering::SeqCst);
        let ciphertext = decode(request.ciphertext.as_deref().unwrap_or_default());
        return match vault.sealed.lock().unwrap().get(&ciphertext) {
            Some(sealed) if sealed.key == key && sealed.additional_data == aad => {
                Json(json!({"plaintext": STANDARD.encode(&sealed.plaintext)})).into_response()
            }
            _ => invalid("Decryption failed: the ciphertext is invalid."),
        };
    }
    (StatusCode::NOT_FOUND, "not a KMS method this stand-in serves").into_response()
}
