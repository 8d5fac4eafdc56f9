//! `cargo xtask demo`: a walk through the API against a running instance
//! (`cargo xtask dev`), signing its writes with the project's client helper
//! (`shared::signing`). Each request and answer is printed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde_json::{Value, json};
use shared::signing::RequestSigner;

use crate::runner::Runner;

pub fn run(runner: &Runner, base_url: &str) -> anyhow::Result<()> {
    runner.step(&format!("register, update and discover an agent at {base_url}"), || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(walk_through(base_url))
    })
}

async fn walk_through(base_url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public_key = STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes());

    // A registration is signed by the key it registers: keyid = the public key.
    let registration = json!({
        "name": "Demo Translator",
        "description": "Translates documents; registered by cargo xtask demo.",
        "capabilities": ["translation", "demo"],
        "endpoint_url": "https://demo.example.com/webhooks",
        "public_key": public_key,
        "price": "4.20",
    });
    let signer = RequestSigner::from_seed(&seed, public_key)?;
    let agent = send(&http, &signer, "POST", &format!("{base_url}/v1/agents"), Some(&registration)).await?;
    let id = agent["id"].as_str().ok_or_else(|| anyhow::anyhow!("registration failed"))?;

    // Afterwards the agent signs as itself: keyid = its id.
    let signer = signer.with_keyid(id);
    send(&http, &signer, "PATCH", &format!("{base_url}/v1/agents/{id}"), Some(&json!({"price": "3.90"}))).await?;

    let url = format!("{base_url}/v1/agents?capabilities=demo&sort=newest&limit=3");
    println!("GET {url}");
    let page: Value = http.get(&url).send().await?.json().await?;
    println!("{}\n", serde_json::to_string_pretty(&page)?);
    Ok(())
}

async fn send(
    http: &reqwest::Client,
    signer: &RequestSigner,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let body = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
    let mut request = http.request(method.parse()?, url).header("content-type", "application/json");
    println!("{method} {url}");
    for (name, value) in signer.sign(method, url, &body).await? {
        println!("{name}: {value}");
        request = request.header(name, value);
    }
    let response = request.body(body).send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    println!("=> {status}\n{}\n", serde_json::to_string_pretty(&answer)?);
    Ok(answer)
}
