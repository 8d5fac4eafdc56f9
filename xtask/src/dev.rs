//! `cargo xtask dev` and `cargo xtask migrate`: the local stack, from a fresh
//! clone, in one command: the Cloud Tasks and Pub/Sub stand-ins, the webhook
//! worker, a local webhook receiver and the API, each a process of its own.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Child, Command};
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
    runner.run(cmd!(sh, "cargo build --package api --package webhook-worker --package tests --bins"))?;
    let processes = local_processes(&settings)?;
    for process in &processes {
        if runner.dry_run {
            println!("{process}");
        }
    }
    if runner.dry_run {
        return Ok(());
    }
    run_together(processes)
}

/// One process of the local stack: a `cargo run` with extra environment.
struct Process {
    name: &'static str,
    args: &'static [&'static str],
    /// Name, value, and whether the value is a secret (never printed).
    env: Vec<(&'static str, String, bool)>,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, value, secret) in &self.env {
            let value = if *secret { "[redacted]" } else { value };
            write!(f, "{name}={value:?} ")?;
        }
        write!(f, "cargo run --quiet {}", self.args.join(" "))
    }
}

/// Ports come from the settings: the Cloud Tasks stand-in's from
/// `CLOUD_TASKS_ENDPOINT`, the worker's from `WEBHOOK_WORKER_URL`; that
/// stand-in presents `WORKER_SHARED_SECRET` as the worker expects. The Pub/Sub
/// stand-in listens on [`PUBSUB_STANDIN_PORT`], and the worker and the API are
/// pointed at it through `PUBSUB_ENDPOINT` whatever `.env` says, so that
/// nothing is published to Google from a laptop.
fn local_processes(settings: &Settings) -> anyhow::Result<Vec<Process>> {
    let port_of = |setting: &str, url: &str| -> anyhow::Result<String> {
        let url = url::Url::parse(url).with_context(|| format!("{setting} is not a URL"))?;
        let port = url.port_or_known_default().with_context(|| format!("{setting} has no port"))?;
        Ok(port.to_string())
    };
    let endpoint = settings.cloud_tasks.endpoint.as_deref().context(
        "CLOUD_TASKS_ENDPOINT is empty: locally it must point at the stand-in (http://127.0.0.1:8123); \
         see deploy/.env.example",
    )?;
    let mut standin_env = vec![("CLOUD_TASKS_STANDIN_PORT", port_of("CLOUD_TASKS_ENDPOINT", endpoint)?, false)];
    if let Some(secret) = &settings.worker_shared_secret {
        standin_env.push(("CLOUD_TASKS_STANDIN_AUTHORIZATION", format!("Bearer {}", secret.expose_secret()), true));
    }
    let pubsub_endpoint = ("PUBSUB_ENDPOINT", format!("http://127.0.0.1:{PUBSUB_STANDIN_PORT}"), false);
    Ok(vec![
        Process {
            name: "cloud tasks stand-in",
            args: &["--package", "tests", "--bin", "cloud_tasks_standin"],
            env: standin_env,
        },
        Process {
            name: "pub/sub stand-in",
            args: &["--package", "tests", "--bin", "pubsub_standin"],
            env: vec![("PUBSUB_STANDIN_PORT", PUBSUB_STANDIN_PORT.to_string(), false)],
        },
        Process {
            name: "webhook worker",
            args: &["--package", "webhook-worker"],
            env: vec![
                ("PORT", port_of("WEBHOOK_WORKER_URL", &settings.cloud_tasks.worker_url)?, false),
                pubsub_endpoint.clone(),
            ],
        },
        Process {
            name: "webhook receiver",
            args: &["--package", "tests", "--bin", "webhook_receiver"],
            env: vec![("WEBHOOK_RECEIVER_PORT", DEMO_RECEIVER_PORT.to_string(), false)],
        },
        Process { name: "api", args: &["--package", "api", "--", "serve"], env: vec![pubsub_endpoint] },
    ])
}

/// Where `cargo xtask dev` runs its webhook receiver (and `demo` points agents).
pub const DEMO_RECEIVER_PORT: u16 = 8090;

/// Where `cargo xtask dev` runs the Pub/Sub stand-in: the Pub/Sub emulator's
/// usual port.
const PUBSUB_STANDIN_PORT: u16 = 8085;

/// Runs every process until one stops (or Ctrl-C, which reaches them all),
/// then stops the rest.
fn run_together(processes: Vec<Process>) -> anyhow::Result<()> {
    let mut children: Vec<(&'static str, Child)> = Vec::new();
    for process in processes {
        eprintln!("$ {process}");
        let env = process.env.into_iter().map(|(name, value, _)| (name, value));
        let child = Command::new("cargo").args(["run", "--quiet"]).args(process.args).envs(env).spawn();
        match child {
            Ok(child) => children.push((process.name, child)),
            Err(error) => {
                stop_all(&mut children);
                return Err(error).with_context(|| format!("cannot start the {}", process.name));
            }
        }
    }
    loop {
        for (name, child) in &mut children {
            if let Some(status) = child.try_wait()? {
                let name = *name;
                stop_all(&mut children);
                anyhow::bail!("the {name} stopped ({status}); the others were stopped too");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop_all(children: &mut [(&'static str, Child)]) {
    for (_, child) in children {
        let _ = child.kill();
        let _ = child.wait();
    }
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
    warn_about_missing_settings(runner);
    let settings = Settings::from_source(&local_settings(runner)?)?;
    runner.step("check that Postgres answers at DATABASE_URL", || {
        check_reachable("Postgres", settings.database_url.expose_secret(), 5432, POSTGRES_REMEDY)
    })?;
    Ok(settings)
}

/// An `.env` made before a setting existed silently takes its default;
/// name what it lacks.
fn warn_about_missing_settings(runner: &Runner) {
    let names = |path: &str| -> Vec<String> {
        std::fs::read_to_string(runner.path(path))
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
            .collect()
    };
    let present = names(".env");
    let missing: Vec<String> =
        names("deploy/.env.example").into_iter().filter(|name| !present.contains(name)).collect();
    if !present.is_empty() && !missing.is_empty() {
        eprintln!("warning: .env lacks {} (see deploy/.env.example)", missing.join(", "));
    }
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
