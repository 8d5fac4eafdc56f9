//! `cargo xtask dev` and `cargo xtask migrate`: the local stack, from a fresh
//! clone, in one command: Google's Pub/Sub emulator (the Pub/Sub stand-in when
//! the emulator is not installed), the Cloud Tasks stand-in, the webhook
//! worker, a local webhook receiver and the API, each a process of its own
//! (and a process group of its own, so that stopping one stops what it
//! started: `cargo run`'s program, the emulator's JVM).

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::settings::Settings;
use xshell::cmd;

use crate::local::{DEMO_RECEIVER_PORT, EVENTS_SUBSCRIPTION, PUBSUB_PORT, local_settings, pubsub_endpoint};
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
    let pubsub = if emulator_installed() {
        eprintln!(
            "Pub/Sub: Google's emulator on 127.0.0.1:{PUBSUB_PORT} (topics and the ordered subscription {EVENTS_SUBSCRIPTION} are created; tail it with `cargo xtask events`)"
        );
        PubSub::Emulator
    } else {
        eprintln!(
            "Pub/Sub: Google's emulator is not installed (`gcloud beta emulators pubsub`, Java; Debian: \
             apt-get install google-cloud-cli-pubsub-emulator default-jre-headless), so the Pub/Sub \
             stand-in runs on 127.0.0.1:{PUBSUB_PORT} instead: it accepts Publish and prints every \
             message, but has no subscriptions (`cargo xtask events` needs the emulator)"
        );
        PubSub::StandIn
    };
    let processes = local_processes(&settings, pubsub)?;
    eprintln!("the web console will be at {}", console_url(settings.port));
    if runner.dry_run {
        for process in &processes {
            println!("{process}");
        }
        if pubsub == PubSub::Emulator {
            for step in topology_steps(&settings) {
                println!("# {step}");
            }
        }
        return Ok(());
    }
    run_together(processes, &settings, pubsub)
}

/// Where the API serves the web console (`api::features::console`).
fn console_url(api_port: u16) -> String {
    format!("http://127.0.0.1:{api_port}/console/")
}

/// What serves Pub/Sub locally.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PubSub {
    /// Google's emulator: Publish, subscriptions, ordering keys.
    Emulator,
    /// `tests::pubsub_standin`: Publish only, printing each message.
    StandIn,
}

/// Whether `gcloud beta emulators pubsub` can run here (gcloud, the
/// component, Java).
fn emulator_installed() -> bool {
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    on_path("java")
        && on_path("gcloud")
        && Command::new("gcloud")
            .args(["beta", "emulators", "pubsub", "--help"])
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// One process of the local stack: a program (`cargo run …`, or gcloud for
/// the emulator) with extra environment.
struct Process {
    name: &'static str,
    command: Vec<String>,
    /// Name, value, and whether the value is a secret (never printed).
    env: Vec<(&'static str, String, bool)>,
}

impl Process {
    fn cargo_run(name: &'static str, args: &[&str], env: Vec<(&'static str, String, bool)>) -> Self {
        let command = ["cargo", "run", "--quiet"].iter().chain(args).map(|arg| (*arg).to_owned()).collect();
        Self { name, command, env }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, value, secret) in &self.env {
            let value = if *secret { "[redacted]" } else { value };
            write!(f, "{name}={value:?} ")?;
        }
        write!(f, "{}", self.command.join(" "))
    }
}

/// Ports come from the settings: the Cloud Tasks stand-in's from
/// `CLOUD_TASKS_ENDPOINT`, the worker's from `WEBHOOK_WORKER_URL`; that
/// stand-in presents `WORKER_SHARED_SECRET` as the worker expects. The Pub/Sub
/// emulator (or stand-in) listens on [`PUBSUB_PORT`], and the worker and the
/// API are pointed at it through `PUBSUB_ENDPOINT` whatever `.env` says, so
/// that nothing is published to Google from a laptop.
fn local_processes(settings: &Settings, pubsub: PubSub) -> anyhow::Result<Vec<Process>> {
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
    let pubsub_endpoint = ("PUBSUB_ENDPOINT", pubsub_endpoint(), false);
    let pubsub = match pubsub {
        PubSub::Emulator => Process {
            name: "pub/sub emulator",
            command: ["gcloud", "beta", "emulators", "pubsub", "start"]
                .into_iter()
                .map(String::from)
                .chain([
                    format!("--host-port=127.0.0.1:{PUBSUB_PORT}"),
                    format!("--project={}", emulator_project(settings)?),
                ])
                .collect(),
            env: vec![("CLOUDSDK_CORE_DISABLE_PROMPTS", "1".into(), false)],
        },
        PubSub::StandIn => Process::cargo_run(
            "pub/sub stand-in",
            &["--package", "tests", "--bin", "pubsub_standin"],
            vec![("PUBSUB_STANDIN_PORT", PUBSUB_PORT.to_string(), false)],
        ),
    };
    Ok(vec![
        // First: the API publishes to topics that must exist by then.
        pubsub,
        Process::cargo_run(
            "cloud tasks stand-in",
            &["--package", "tests", "--bin", "cloud_tasks_standin"],
            standin_env,
        ),
        Process::cargo_run(
            "webhook worker",
            &["--package", "webhook-worker"],
            vec![
                ("PORT", port_of("WEBHOOK_WORKER_URL", &settings.cloud_tasks.worker_url)?, false),
                pubsub_endpoint.clone(),
            ],
        ),
        Process::cargo_run(
            "webhook receiver",
            &["--package", "tests", "--bin", "webhook_receiver"],
            vec![("WEBHOOK_RECEIVER_PORT", DEMO_RECEIVER_PORT.to_string(), false)],
        ),
        Process::cargo_run("api", &["--package", "api", "--", "serve"], vec![pubsub_endpoint]),
    ])
}

/// The project of `PUBSUB_EVENTS_TOPIC` (`projects/P/topics/T`): the
/// emulator's project.
fn emulator_project(settings: &Settings) -> anyhow::Result<&str> {
    crate::local::project_of(&settings.pubsub.events_topic).context("PUBSUB_EVENTS_TOPIC")
}

/// The emulator keeps nothing between runs: once it answers, `dev` creates
/// the two topics of the settings and, as `infra/modules/pubsub` does in the
/// cloud, an ordered subscription for consumers of the events
/// ([`EVENTS_SUBSCRIPTION`]) and one for operators on the dead letters.
/// Each entry: what it does, the REST path and the body of the `PUT`.
fn topology(settings: &Settings) -> anyhow::Result<Vec<(String, String, serde_json::Value)>> {
    let (events, dead_letters) = (&settings.pubsub.events_topic, &settings.pubsub.dead_letter_topic);
    let events_subscription = crate::local::subscription_of(events, EVENTS_SUBSCRIPTION)?;
    let dead_letter_subscription = crate::local::subscription_of(dead_letters, DEAD_LETTER_SUBSCRIPTION)?;
    Ok(vec![
        (format!("create topic {events}"), events.clone(), serde_json::json!({})),
        (format!("create topic {dead_letters}"), dead_letters.clone(), serde_json::json!({})),
        (
            format!("create subscription {events_subscription} on {events}, ordered"),
            events_subscription,
            serde_json::json!({"topic": events, "enableMessageOrdering": true, "ackDeadlineSeconds": 60}),
        ),
        (
            format!("create subscription {dead_letter_subscription} on {dead_letters}"),
            dead_letter_subscription,
            serde_json::json!({"topic": dead_letters, "ackDeadlineSeconds": 60}),
        ),
    ])
}

fn topology_steps(settings: &Settings) -> Vec<String> {
    match topology(settings) {
        Ok(steps) => {
            steps.into_iter().map(|(step, path, _)| format!("{step} (PUT {}/v1/{path})", pubsub_endpoint())).collect()
        }
        Err(error) => vec![format!("{error:#}")],
    }
}

/// Waits for the emulator's REST API, then creates [`topology`].
fn create_topology(settings: &Settings, emulator: &mut Child) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::new();
    let base = pubsub_endpoint();
    let started = Instant::now();
    runtime.block_on(async {
        loop {
            let answer = http.get(format!("{base}/v1/projects/{}/topics", emulator_project(settings)?)).send().await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                break;
            }
            if let Some(status) = emulator.try_wait()? {
                anyhow::bail!("the Pub/Sub emulator stopped ({status}) before answering");
            }
            if started.elapsed() > Duration::from_secs(90) {
                anyhow::bail!("the Pub/Sub emulator did not answer on {base} within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!("Pub/Sub emulator answers at {base} after {:.1} s", started.elapsed().as_secs_f64());
        for (step, path, body) in topology(settings)? {
            let answer = http.put(format!("{base}/v1/{path}")).json(&body).send().await?;
            // 409: it exists (an emulator left running by an earlier `dev`).
            if !answer.status().is_success() && answer.status() != 409 {
                anyhow::bail!("{step}: the emulator answered {}: {}", answer.status(), answer.text().await?);
            }
            eprintln!("{step}");
        }
        Ok(())
    })
}

/// The operators' subscription on the dead-letter topic (as in `infra/`).
const DEAD_LETTER_SUBSCRIPTION: &str = "webhook-dead-letter-ops";

/// Runs every process until one stops, Ctrl-C or SIGTERM, then stops them
/// all. Each runs in a process group of its own, which is signalled as a
/// whole: `cargo run` does not pass signals on to its program, nor gcloud to
/// the emulator's JVM.
fn run_together(processes: Vec<Process>, settings: &Settings, pubsub: PubSub) -> anyhow::Result<()> {
    let stop = stop_requested()?;
    let mut children: Vec<(&'static str, Child)> = Vec::new();
    let result = (|| {
        for process in processes {
            eprintln!("$ {process}");
            let env = process.env.into_iter().map(|(name, value, _)| (name, value));
            let mut child = Command::new(&process.command[0])
                .args(&process.command[1..])
                .envs(env)
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot start the {}", process.name))?;
            if process.name == "pub/sub emulator" && pubsub == PubSub::Emulator {
                let created = create_topology(settings, &mut child);
                children.push((process.name, child));
                created?;
            } else {
                children.push((process.name, child));
            }
        }
        eprintln!("the local stack runs; the console is at {}; Ctrl-C stops it", console_url(settings.port));
        loop {
            if stop.load(Ordering::SeqCst) {
                eprintln!("stopping the local stack");
                return Ok(());
            }
            for (name, child) in &mut children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("the {name} stopped ({status}); the others were stopped too");
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })();
    stop_all(&mut children);
    result
}

/// Set on Ctrl-C or SIGTERM (which no longer reach the children: they are in
/// groups of their own).
fn stop_requested() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let flag = stop.clone();
    std::thread::spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            flag.store(true, Ordering::SeqCst);
        });
    });
    Ok(stop)
}

/// SIGTERM to each child's group, then SIGKILL to what is left after 10 s.
fn stop_all(children: &mut [(&'static str, Child)]) {
    let signal_group = |signal: &str, child: &Child| {
        let _ = Command::new("kill").args([signal, "--", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
    };
    for (_, child) in children.iter() {
        signal_group("-TERM", child);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (_, child) in children.iter_mut() {
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Also what the group leader left behind (a JVM, a program of cargo run).
        signal_group("-KILL", child);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_url_is_on_the_apis_port() {
        assert_eq!(console_url(8123), "http://127.0.0.1:8123/console/");
    }
}
