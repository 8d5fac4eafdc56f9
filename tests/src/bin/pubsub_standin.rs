//! Runs the Pub/Sub stand-in (see `tests::pubsub_standin`) on 127.0.0.1 until Ctrl-C,
//! for `cargo xtask dev`, printing one line per message it accepts (topic, id,
//! ordering key, attributes, data as UTF-8). Point the publisher at the printed
//! endpoint (`PUBSUB_ENDPOINT`) with anonymous credentials.
//!
//! Environment (optional):
//! - `PUBSUB_STANDIN_PORT`: port to listen on (8085, the Pub/Sub emulator's usual port).

use tests::pubsub_standin::PubSubStandIn;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = match std::env::var("PUBSUB_STANDIN_PORT") {
        Ok(port) => port.parse().map_err(|_| anyhow::anyhow!("PUBSUB_STANDIN_PORT must be a port, got {port:?}"))?,
        Err(_) => 8085,
    };
    let standin = PubSubStandIn::start_on(port).await?;
    eprintln!("pubsub_standin: listening on {} (gRPC, google.pubsub.v1.Publisher/Publish)", standin.endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
