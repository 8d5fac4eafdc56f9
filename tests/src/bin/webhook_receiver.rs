//! A local webhook receiver for `cargo xtask dev`: prints every webhook it
//! gets (Standard Webhooks headers and JSON body) and answers 200.
//!
//! Port: `WEBHOOK_RECEIVER_PORT` (default 8090); path: any.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::routing::post;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("WEBHOOK_RECEIVER_PORT") {
        Ok(port) => port.parse().map_err(|_| anyhow::anyhow!("WEBHOOK_RECEIVER_PORT must be a port, got {port:?}"))?,
        Err(_) => 8090,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("webhook receiver: listening on http://127.0.0.1:{port}/");
    axum::serve(listener, Router::new().route("/{*path}", post(print_webhook))).await?;
    Ok(())
}

async fn print_webhook(uri: Uri, headers: HeaderMap, body: Bytes) -> &'static str {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("-").to_owned();
    let body = serde_json::from_slice::<serde_json::Value>(&body)
        .map(|json| json.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    eprintln!(
        "webhook receiver: POST {uri} webhook-id={} webhook-timestamp={} webhook-signature={}\n  {body}",
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    "ok"
}
