//! `cargo xtask demo`: a walk through the API against the local stack
//! (`cargo xtask dev`), signing its writes with the project's client helper
//! (`shared::signing`): an agent and a client register, the client hires the
//! agent, the agent heartbeats, accepts and completes, and the client rates
//! the job; the webhooks appear in the dev stack's receiver log, their
//! deliveries are read back, and so are the agent's ratings. Each request
//! and answer is printed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde_json::{Value, json};
use shared::signing::RequestSigner;

use crate::local::DEMO_RECEIVER_PORT;
use crate::runner::Runner;

pub fn run(runner: &Runner, base_url: &str) -> anyhow::Result<()> {
    runner.step(
        &format!("register an agent and a client, run and rate a job, read its webhook deliveries at {base_url}"),
        || tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(walk_through(base_url)),
    )
}

async fn walk_through(base_url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let receiver = format!("http://127.0.0.1:{DEMO_RECEIVER_PORT}");

    // A registration is signed by the key it registers: keyid = the public key.
    let (agent_seed, agent_key) = new_key();
    let registration = json!({
        "name": "Demo Translator",
        "description": "Translates documents; registered by cargo xtask demo.",
        "capabilities": ["translation", "demo"],
        "endpoint_url": format!("{receiver}/agent-webhooks"),
        "public_key": agent_key,
        "price": "4.20",
    });
    let signer = RequestSigner::from_seed(&agent_seed, agent_key)?;
    let agent = send(&http, &signer, "POST", &format!("{base_url}/v1/agents"), Some(&registration)).await?;
    let agent_id = agent["id"].as_str().ok_or_else(|| anyhow::anyhow!("agent registration failed"))?;
    // Afterwards the agent signs as itself: keyid = its id.
    let agent_signer = signer.with_keyid(agent_id);

    let (client_seed, client_key) = new_key();
    let client_signer = RequestSigner::from_seed(&client_seed, &client_key)?;
    let client = json!({"name": "Demo Client", "public_key": client_key});
    let client = send(&http, &client_signer, "POST", &format!("{base_url}/v1/clients"), Some(&client)).await?;
    let client_id = client["id"].as_str().ok_or_else(|| anyhow::anyhow!("client registration failed"))?;
    let client_signer = client_signer.with_keyid(client_id);

    let url = format!("{base_url}/v1/agents?capabilities=demo&sort=newest&limit=1");
    println!("GET {url}");
    let page: Value = http.get(&url).send().await?.json().await?;
    println!("{}\n", serde_json::to_string_pretty(&page)?);

    let job = json!({
        "agent_id": agent_id,
        "input": {"text": "Bonjour le monde", "to": "en"},
        "price": "4.20",
        "callback_url": format!("{receiver}/client-callbacks"),
    });
    let job = send(&http, &client_signer, "POST", &format!("{base_url}/v1/jobs"), Some(&job)).await?;
    let job_url = format!("{base_url}/v1/jobs/{}", job["id"].as_str().ok_or_else(|| anyhow::anyhow!("no job"))?);
    send(&http, &agent_signer, "POST", &format!("{base_url}/v1/agents/{agent_id}/heartbeat"), None).await?;
    send(&http, &agent_signer, "POST", &format!("{job_url}/accept"), None).await?;
    let result = json!({"result": {"text": "Hello world"}});
    send(&http, &agent_signer, "POST", &format!("{job_url}/complete"), Some(&result)).await?;
    let rating = json!({"score": 5, "comment": "Fast and exact."});
    send(&http, &client_signer, "POST", &format!("{job_url}/rating"), Some(&rating)).await?;
    let url = format!("{base_url}/v1/agents/{agent_id}/ratings");
    println!("GET {url}");
    let ratings: Value = http.get(&url).send().await?.json().await?;
    println!("{}\n", serde_json::to_string_pretty(&ratings)?);

    // The webhooks travel API → Cloud Tasks stand-in → worker → receiver.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    send(&http, &client_signer, "GET", &format!("{job_url}/deliveries"), None).await?;
    println!("The receiver's log (in the `cargo xtask dev` terminal) shows the four webhooks.");
    Ok(())
}

fn new_key() -> ([u8; 32], String) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public_key = STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes());
    (seed, public_key)
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
