//! The Postgres schema, shared by both services: migrations live in
//! `shared/migrations` and are embedded here, so the API, the worker,
//! `api migrate` (the Cloud Run migrations job) and `cargo xtask` all apply
//! the same set.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::settings::Settings;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    // sqlx's messages never repeat the URL, so they are safe to show.
    #[error("setting DATABASE_URL is malformed: {0}")]
    Url(sqlx::Error),
    #[error("setting DATABASE_READ_URL is malformed: {0}")]
    ReadUrl(sqlx::Error),
    #[error("cannot reach Postgres at DATABASE_URL: {0}")]
    Unreachable(sqlx::Error),
    #[error("cannot create the database named in DATABASE_URL: {0}")]
    Create(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How Postgres plans the prepared statements of a pool's connections
/// (its `plan_cache_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Postgres's own choice: in practice a custom plan per execution,
    /// fitted to the parameters.
    Chosen,
    /// One plan per statement, made once per connection: for statements
    /// whose plan fits every parameter and costs more to make than to run.
    Generic,
}

/// How long a pooled connection may sit idle before it is pinged again
/// before use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Which Postgres server a pool connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `DATABASE_URL`: every write, and every read that must see one.
    Primary,
    /// `DATABASE_READ_URL`: a streaming replica of the primary, for the
    /// API's public reads.
    Replica,
}

/// A pool of `connections` to the primary that connects lazily, so a service
/// can start (and report not ready) while Postgres is away, and recovers by
/// itself when it returns.
pub fn lazy_pool(settings: &Settings, connections: u32, plans: Plans) -> Result<PgPool, DbError> {
    lazy_pool_to(Server::Primary, &settings.database_url, connections, plans)
}

/// [`lazy_pool`] to `server` at `url`.
pub fn lazy_pool_to(server: Server, url: &SecretString, connections: u32, plans: Plans) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = url.expose_secret().parse().map_err(|error| match server {
        Server::Primary => DbError::Url(error),
        Server::Replica => DbError::ReadUrl(error),
    })?;
    // The application name tells the pools apart in `pg_stat_activity`.
    let (plan_cache_mode, application_name) = match (plans, server) {
        (Plans::Chosen, Server::Primary) => ("auto", "agent-registry"),
        (Plans::Generic, Server::Primary) => ("force_generic_plan", "agent-registry generic plans"),
        (Plans::Chosen, Server::Replica) => ("auto", "agent-registry replica"),
        (Plans::Generic, Server::Replica) => ("force_generic_plan", "agent-registry replica generic plans"),
    };
    // Every statement here is a short OLTP one: starting parallel workers
    // costs more than it saves, and on a small instance they take the cores
    // other requests need (a discovery page went 1 ms → 17 ms with them).
    let options = options
        .options([("max_parallel_workers_per_gather", "0"), ("plan_cache_mode", plan_cache_mode)])
        .application_name(application_name);
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(3))
        // sqlx's default pings a connection before every use, a round trip
        // per statement (13 % of the API's CPU in an uncached discovery
        // profile). A connection used less than `PING_AFTER_IDLE` ago ended
        // its last exchange cleanly (one that did not is pinged on its way
        // back: vendor/README.md), so only older ones are pinged, and one
        // Postgres dropped while idle is still replaced before a request
        // gets it.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// Creates the database when missing and applies every pending migration.
/// Returns how many migrations the schema now has.
pub async fn migrate(settings: &Settings) -> Result<usize, DbError> {
    let url = settings.database_url.expose_secret();
    if !sqlx::Postgres::database_exists(url).await.map_err(DbError::Unreachable)? {
        sqlx::Postgres::create_database(url).await.map_err(DbError::Create)?;
        tracing::info!("created the database");
    }
    let pool = lazy_pool(settings, settings.database_max_connections, Plans::Chosen)?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    let applied = MIGRATOR.iter().count();
    tracing::info!(applied, "database schema is up to date");
    Ok(applied)
}

/// `at`, cut to the microsecond precision Postgres stores, so a time
/// answered and the same time read back later are equal.
pub fn in_microseconds(at: time::OffsetDateTime) -> time::OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000).unwrap_or(at)
}

pub fn now_in_microseconds() -> time::OffsetDateTime {
    in_microseconds(time::OffsetDateTime::now_utc())
}
