//! `cargo xtask dev` and `cargo xtask migrate`: the local stack, from a fresh
//! clone, in one command.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::settings::{Settings, SettingsSource};
use xshell::cmd;

use crate::runner::Runner;

/// Checks the stores, migrates, then runs the API in the foreground.
pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let settings = prepare_environment(runner)?;
    runner.step("check that Redis answers at REDIS_URL", || {
        check_reachable("Redis", settings.redis_url.expose_secret(), 6379, REDIS_REMEDY)
    })?;
    apply_migrations(runner, &settings)?;
    let sh = &runner.sh;
    runner.run(cmd!(sh, "cargo run --package api -- serve"))
}

pub fn migrate(runner: &Runner) -> anyhow::Result<()> {
    let settings = prepare_environment(runner)?;
    apply_migrations(runner, &settings)
}

/// Makes sure `.env` exists (from `deploy/.env.example`) and that Postgres
/// answers; returns the settings the services will read.
fn prepare_environment(runner: &Runner) -> anyhow::Result<Settings> {
    let env_file = runner.path(".env");
    if !env_file.exists() {
        runner.step("create .env from deploy/.env.example (local development settings)", || {
            std::fs::copy(runner.path("deploy/.env.example"), &env_file).context("cannot create .env")?;
            Ok(())
        })?;
    }
    let settings = Settings::from_source(&local_settings(runner)?)?;
    runner.step("check that Postgres answers at DATABASE_URL", || {
        check_reachable("Postgres", settings.database_url.expose_secret(), 5432, POSTGRES_REMEDY)
    })?;
    Ok(settings)
}

/// The environment over `.env`, or over `deploy/.env.example` when there is
/// no `.env` (a fresh clone, or a dry run that wrote nothing).
pub fn local_settings(runner: &Runner) -> anyhow::Result<SettingsSource> {
    let env_file = runner.path(".env");
    let file = if env_file.exists() { env_file } else { runner.path("deploy/.env.example") };
    Ok(SettingsSource::from_env_over_file(&file)?)
}

fn apply_migrations(runner: &Runner, settings: &Settings) -> anyhow::Result<()> {
    runner.step("create the database named in DATABASE_URL if missing, apply migrations", || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let applied = runtime.block_on(shared::db::migrate(settings))?;
        eprintln!("database ready: {applied} migrations applied");
        Ok(())
    })
}

const POSTGRES_REMEDY: &str = "Start Postgres, then run this again:
  with Docker:          docker compose -f deploy/docker-compose.yml up -d postgres
  with Debian packages: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
or point DATABASE_URL in .env at a running server.";

const REDIS_REMEDY: &str = "Start Redis, then run this again:
  with Docker:          docker compose -f deploy/docker-compose.yml up -d redis
  with Debian packages: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
or point REDIS_URL in .env at a running server.";

/// A TCP connect to the URL's host and port; the URL itself is never printed
/// since it may hold a password.
fn check_reachable(store: &str, url: &str, default_port: u16, remedy: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("the {store} URL is malformed"))?;
    let Some(host) = parsed.host_str().filter(|host| !host.is_empty()) else {
        return Ok(()); // A Unix socket: the migration step will tell.
    };
    let port = parsed.port().unwrap_or(default_port);
    let reachable = (host, port)
        .to_socket_addrs()
        .map(|mut addresses| {
            addresses.any(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok())
        })
        .unwrap_or(false);
    if !reachable {
        anyhow::bail!("{store} is not answering at {host}:{port}.\n{remedy}");
    }
    eprintln!("{store} answers at {host}:{port}");
    Ok(())
}
