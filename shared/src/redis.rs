//! The Redis pool both services use (nonces and rate limits in the API,
//! per-endpoint send slots in the worker).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fred::prelude::{Builder, ClientLike, Config, Pool, ReconnectPolicy, TlsConfig};
use fred::types::config::TlsHostMapping;
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// Builds the pool and starts connecting without waiting: the service starts
/// while Redis is away, and the pool reconnects by itself when it returns.
pub fn connect(settings: &Settings) -> anyhow::Result<Pool> {
    // The parser's message may quote the URL, which can hold a password.
    let mut config = Config::from_url(settings.redis_url.expose_secret())
        .map_err(|_| anyhow::anyhow!("setting REDIS_URL is malformed: not a redis:// or rediss:// URL"))?;
    if let Some(ca) = &settings.redis_ca_cert {
        // Memorystore signs its server certificate with a CA of its own.
        let roots = crate::tls::root_store(ca).map_err(|e| anyhow::anyhow!("setting REDIS_CA_CERT {e}"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("no TLS protocol version for Redis")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.tls = Some(TlsConfig { connector: client.into(), hostnames: TlsHostMapping::None });
    }
    let pool = Builder::from_config(config)
        .with_connection_config(|connection| {
            connection.connection_timeout = Duration::from_secs(2);
            connection.internal_command_timeout = Duration::from_secs(2);
        })
        .with_performance_config(|performance| {
            // fred ignores per-call timeouts for EVALSHA; a global one bounds every call.
            performance.default_command_timeout = Duration::from_secs(2);
        })
        // Retry forever, 50 ms doubling to 2 s: Redis restarts must heal without us.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
        .build_pool(settings.redis_pool_size)
        .context("cannot build the Redis pool")?;
    pool.connect();
    Ok(pool)
}
