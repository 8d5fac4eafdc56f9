//! The smoke test after a deploy, against the public API URL: readiness
//! (Postgres and Redis reachable from the new revision), a discovery read,
//! and one signed write — a throwaway client registered with a fresh Ed25519
//! key, signed by `shared::signing` — which proves signature checking, the
//! nonce store and the database write path end to end. (Each deploy leaves
//! one client row named "deploy smoke test"; it owns nothing.)

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use shared::signing::RequestSigner;

use super::{Exec, Polling};

pub fn run(exec: &mut Exec<'_>, base_url: &str, polling: Polling) -> anyhow::Result<()> {
    let base = base_url.trim_end_matches('/');
    if exec.dry_run() {
        exec.note(&format!("GET {base}/readyz: expect 200 (retried while the new revision warms up)"));
        exec.note(&format!("GET {base}/v1/agents?limit=1: expect 200"));
        exec.note(&format!("POST {base}/v1/clients signed by a fresh Ed25519 key (shared::signing): expect 201"));
        return Ok(());
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(checks(exec, base, polling))
}

async fn checks(exec: &mut Exec<'_>, base: &str, polling: Polling) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;

    exec.note(&format!("GET {base}/readyz: expect 200"));
    let mut last = String::new();
    let mut ready = false;
    for attempt in 0..polling.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(polling.interval).await;
        }
        match http.get(format!("{base}/readyz")).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                ready = true;
                break;
            }
            Ok(response) => last = format!("{} {}", response.status(), text(response).await),
            Err(error) => last = error.to_string(),
        }
    }
    if !ready {
        anyhow::bail!("GET {base}/readyz did not answer 200 (last: {last})");
    }

    let url = format!("{base}/v1/agents?limit=1");
    exec.note(&format!("GET {url}: expect 200"));
    let response = http.get(&url).send().await?;
    if response.status() != reqwest::StatusCode::OK {
        anyhow::bail!("GET {url} answered {} {}", response.status(), text(response).await);
    }

    let url = format!("{base}/v1/clients");
    exec.note(&format!("POST {url} signed by a fresh Ed25519 key: expect 201"));
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public_key = STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes());
    // A registration is signed by the key it registers: keyid = the public key.
    let signer = RequestSigner::from_seed(&seed, public_key.clone())?;
    let body = serde_json::to_vec(&serde_json::json!({"name": "deploy smoke test", "public_key": public_key}))?;
    let mut request = http.post(&url).header("content-type", "application/json");
    for (name, value) in signer.sign("POST", &url, &body).await? {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await?;
    if response.status() != reqwest::StatusCode::CREATED {
        anyhow::bail!("signed POST {url} answered {} {}", response.status(), text(response).await);
    }
    Ok(())
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.unwrap_or_default().chars().take(300).collect()
}
