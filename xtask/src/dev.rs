//! `cargo xtask dev` and `cargo xtask migrate`: the local stack, from a fresh
//! clone, in one command: Google's Pub/Sub emulator (the Pub/Sub stand-in when
//! the emulator is not installed), the Cloud Tasks stand-in, the webhook
//! worker, a local webhook receiver and the API, each a process of its own
//! (and a process group of its own, so that stopping one stops what it
//! started: the emulator's JVM). Every binary is built by one `cargo build`
//! ([`binaries`]) and then run as built; the emulator starts before the
//! build, so its JVM warms up meanwhile.

mod binaries;

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::settings::Settings;

use crate::local::{DEMO_RECEIVER_PORT, EVENTS_SUBSCRIPTION, PUBSUB_PORT, local_settings, pubsub_endpoint};
use crate::runner::Runner;
use crate::tools::emulator_installed;
use binaries::Binaries;

/// The packages whose binaries the stack runs.
const PACKAGES: &[&str] = &["api", "webhook-worker", "tests"];

/// Starts the emulator first (its JVM takes seconds), checks the stores,
/// migrates, builds, runs the built processes, then creates the emulator's
/// topics: the slow steps overlap. Runs until Ctrl-C.
pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = prepare_environment(runner)?;
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
    eprintln!("the web console will be at {}", console_url(settings.port));
    let stop = stop_requested()?;
    let mut stack = Stack::default();
    if pubsub == PubSub::Emulator {
        let emulator = emulator_process(&settings)?;
        if runner.dry_run {
            println!("{emulator}");
        } else {
            stack.spawn(emulator)?;
        }
    }
    runner.step("check that Redis answers at REDIS_URL", || {
        check_reachable("Redis", settings.redis_url.expose_secret(), 6379, REDIS_REMEDY)
    })?;
    apply_migrations(runner, &settings)?;
    let built = match binaries::build(runner, PACKAGES, &binaries_run(pubsub), &stop) {
        // Stopped while building: no failure.
        Err(_) if stop.load(Ordering::SeqCst) => return Ok(()),
        built => built?,
    };
    for process in built_processes(&settings, pubsub, &built)? {
        if runner.dry_run {
            println!("{process}");
        } else {
            stack.spawn(process)?;
        }
    }
    // Until the topics exist, a publish fails and the event waits in the
    // outbox for the next round: nothing is lost to the API starting first.
    if runner.dry_run {
        if pubsub == PubSub::Emulator {
            topology_steps(&settings).iter().for_each(|step| println!("# {step}"));
        }
        return Ok(());
    }
    if let Some((_, emulator)) = stack.children.first_mut().filter(|_| pubsub == PubSub::Emulator) {
        create_topology(&settings, emulator)?;
    }
    stack.run(&stop, &format!("http://127.0.0.1:{}", settings.port), started)
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

/// One process of the local stack: a program (a built binary, or gcloud
/// for the emulator) with extra environment.
struct Process {
    name: &'static str,
    command: Vec<String>,
    /// Name, value, and whether the value is a secret (never printed).
    env: Vec<(&'static str, String, bool)>,
}

impl Process {
    fn built(
        name: &'static str,
        built: &Binaries,
        bin: &str,
        args: &[&str],
        env: Vec<(&'static str, String, bool)>,
    ) -> anyhow::Result<Self> {
        let command = std::iter::once(built.path(bin)?).chain(args.iter().map(|arg| (*arg).to_owned())).collect();
        Ok(Self { name, command, env })
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

/// The binaries [`built_processes`] runs.
fn binaries_run(pubsub: PubSub) -> Vec<&'static str> {
    let mut bins = vec!["cloud_tasks_standin", "webhook-worker", "webhook_receiver", "api"];
    if pubsub == PubSub::StandIn {
        bins.insert(0, "pubsub_standin");
    }
    bins
}

/// Google's emulator on [`PUBSUB_PORT`], in the project of the topics.
fn emulator_process(settings: &Settings) -> anyhow::Result<Process> {
    Ok(Process {
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
    })
}

/// Ports come from the settings: the Cloud Tasks stand-in's from
/// `CLOUD_TASKS_ENDPOINT`, the worker's from `WEBHOOK_WORKER_URL`; that
/// stand-in presents `WORKER_SHARED_SECRET` as the worker expects. The Pub/Sub
/// emulator (or stand-in) listens on [`PUBSUB_PORT`], and the worker and the
/// API are pointed at it through `PUBSUB_ENDPOINT` whatever `.env` says, so
/// that nothing is published to Google from a laptop. The API comes last:
/// what it calls runs by then.
fn built_processes(settings: &Settings, pubsub: PubSub, built: &Binaries) -> anyhow::Result<Vec<Process>> {
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
    let mut processes = Vec::new();
    if pubsub == PubSub::StandIn {
        let env = vec![("PUBSUB_STANDIN_PORT", PUBSUB_PORT.to_string(), false)];
        processes.push(Process::built("pub/sub stand-in", built, "pubsub_standin", &[], env)?);
    }
    let worker_env = vec![
        ("PORT", port_of("WEBHOOK_WORKER_URL", &settings.cloud_tasks.worker_url)?, false),
        pubsub_endpoint.clone(),
    ];
    let receiver_env = vec![("WEBHOOK_RECEIVER_PORT", DEMO_RECEIVER_PORT.to_string(), false)];
    processes.extend([
        Process::built("cloud tasks stand-in", built, "cloud_tasks_standin", &[], standin_env)?,
        Process::built("webhook worker", built, "webhook-worker", &[], worker_env)?,
        Process::built("webhook receiver", built, "webhook_receiver", &[], receiver_env)?,
        Process::built("api", built, "api", &["serve"], vec![pubsub_endpoint])?,
    ]);
    Ok(processes)
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
        Err(error) => vec![shared::error_chain::render(&*error)],
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

/// The running processes, each in a process group of its own, which is
/// signalled as a whole (gcloud does not pass signals on to the emulator's
/// JVM); dropping the stack stops them all.
#[derive(Default)]
struct Stack {
    children: Vec<(&'static str, Child)>,
}

impl Stack {
    fn spawn(&mut self, process: Process) -> anyhow::Result<()> {
        eprintln!("$ {process}");
        let env = process.env.into_iter().map(|(name, value, _)| (name, value));
        let child = Command::new(&process.command[0])
            .args(&process.command[1..])
            .envs(env)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start the {}", process.name))?;
        self.children.push((process.name, child));
        Ok(())
    }

    /// Until one process stops, Ctrl-C or SIGTERM; says when the API at
    /// `api` answers `/readyz`, and until then every few seconds that it waits.
    fn run(&mut self, stop: &AtomicBool, api: &str, started: Instant) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let answers_ready = || {
            runtime.block_on(async {
                let answer = http.get(format!("{api}/readyz")).send().await;
                answer.is_ok_and(|answer| answer.status().is_success())
            })
        };
        let waiting = Instant::now();
        let mut ready = false;
        let mut told = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                eprintln!("stopping the local stack");
                return Ok(());
            }
            for (name, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("the {name} stopped ({status}); the others were stopped too");
                }
            }
            if !ready && answers_ready() {
                ready = true;
                eprintln!(
                    "the local stack is ready: the API answers at {api} ({:.1} s after `cargo xtask dev` began); Ctrl-C stops it",
                    started.elapsed().as_secs_f64()
                );
            } else if !ready && told.elapsed() >= Duration::from_secs(3) {
                told = Instant::now();
                eprintln!("waiting for the API to answer {api}/readyz ({:.0} s)", waiting.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        stop_all(&mut self.children);
    }
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
