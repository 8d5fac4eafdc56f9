//! `cargo xtask bench`: builds release binaries, measures the box's ceiling
//! with `pgbench` ([`ceiling`]), seeds a fresh
//! database (`agent_registry_bench`, `--agents`, 100k by default, then
//! `VACUUM ANALYZE`), starts the services as processes on ports of their own,
//! drives each scenario from a separate load generator process
//! (`tests/src/bin/load/`), and prints one table of the figures against
//! the targets and as a ratio of the ceiling (also written to
//! `target/bench/latest.md`).
//!
//! Three runs of the API, all publishing their events to the Pub/Sub
//! stand-in: the first (start-up, discovery, get-agent, create-job) points
//! its relay at a closed port, so the load scenarios measure the API alone
//! (the outbox rows are still written); the second is the same with the page
//! cache off (`PUBLIC_READ_CACHE_MS=0`) and drives each discovery query shape
//! of `UNCACHED_SHAPES` on its own; the third runs the whole webhook pipeline
//! (Cloud Tasks stand-in, worker, receiver) for the deliveries scenario,
//! after the first run's undelivered rows are set aside, and then for the
//! [`soak`] (`--minutes`; the first two runs drive its traffic briefly with
//! the cache on and off, to compare). Before them, the [`replica`] run
//! drives discovery on a throwaway primary and its streaming replica, with a
//! table of its own; beside the second run, the FastAPI service the API
//! replaces serves the same traffics from the same database
//! ([`side_by_side`], `--only original`). Every process started is stopped
//! on exit, also on error.

mod ceiling;
mod cpu;
mod database;
mod replica;
mod report;
mod rounds;
mod side_by_side;
mod soak;
mod stack;
mod wal;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::cmd;

use crate::runner::Runner;
use ceiling::{drop_ceiling_database, measure_ceilings, measure_create_statement};
use cpu::Group;
use database::{database_url_named, recreate_database, seed, set_aside_deliveries, wait_for_events_published};
use report::{Results, Scenario, is_uncached};
use stack::Stack;

const API_PORT: u16 = 18080;
const WORKER_PORT: u16 = 18081;
const STANDIN_PORT: u16 = 18123;
const RECEIVER_PORT: u16 = 18090;
const PUBSUB_PORT: u16 = 18085;
const WORKER_SECRET: &str = "bench-worker-secret";
/// Where the API's relay points when a run measures the API alone: a closed port.
const NO_CLOUD_TASKS: &str = "http://127.0.0.1:9";
/// Seals the webhook secrets of the bench's API and worker (32 bytes, base64);
/// the seeded agents' plaintext ones are sealed with it right after seeding.
const WEBHOOK_SECRET_KEY: &str = "YmVuY2ggb25seTogd2ViaG9vayBzZWNyZXRzIGtleSE=";
/// The API's signing key in the benchmark (base64 of 32 bytes of 0x42): public, signs nothing that leaves it.
const BENCH_SIGNING_KEY: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
/// Seconds of unmeasured load before each scenario held to a ceiling.
const WARM_UP_SECONDS: &str = "3";
const CEILING_DATABASE: &str = "agent_registry_bench_ceiling";
const CEILING_INSERT: &str = "INSERT INTO ceiling_insert (payload) VALUES ('x');";
/// The three API runs, as the report names them.
const RUNS: [&str; 3] = ["1: the API alone, cache on", "2: the API alone, cache off", "3: whole pipeline, cache on"];

/// Discovery query shapes driven with the page cache off, one scenario each
/// (`&limit=20` is added to each); the tags are the ones the seed makes.
const UNCACHED_SHAPES: [&str; 7] = [
    "capabilities=translation",
    "capabilities=code-review&min_rating=4",
    "capabilities=translation,legal&sort=rating",
    "capabilities=skill-42", // a rare tag: 1 agent in 500
    "q=invoices&capabilities=finance",
    "capabilities=summarization&sort=price",
    "capabilities=image-captioning&sort=newest",
];

pub struct Options {
    pub seconds: u64,
    pub connections: usize,
    pub jobs: usize,
    pub agents: u32,
    /// How long the soak runs (fractions too: `--minutes 2.5`).
    pub minutes: f64,
    /// Scenarios to run (`--only`, comma-separated; `uncached` names every
    /// uncached shape); empty: all. The ceiling always runs; start-up and RSS
    /// unless `replica` is the only one.
    pub only: Vec<String>,
    /// An `api` binary to run instead of the one built (`--api PATH`): build
    /// another commit's and compare the two back to back, on the same box in
    /// the same minutes, everything else the same.
    pub api: Option<std::path::PathBuf>,
    /// A `webhook-worker` binary to run instead of the one built (`--worker
    /// PATH`), as `--api` does for the API.
    pub worker: Option<std::path::PathBuf>,
    /// Rounds of each scenario held to a ceiling (`--repeat`), each after
    /// its own ceiling; the table shows the median round and judges by most.
    pub repeat: usize,
}

/// The scenarios of the three runs on the system Postgres (`replica` runs apart).
const SCENARIOS: [&str; 7] = ["discovery", "get-agent", "create-job", "uncached", "deliveries", "soak", "original"];

impl Options {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|only| only == scenario || (only == "uncached" && is_uncached(scenario)))
    }
}

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 10,
        connections: 32,
        jobs: 2000,
        agents: 100_000,
        minutes: 10.0,
        only: Vec::new(),
        api: None,
        worker: None,
        repeat: 1,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value()?.parse().context("--seconds needs a whole number")?,
            "--connections" => options.connections = value()?.parse().context("--connections needs a whole number")?,
            "--jobs" => options.jobs = value()?.parse().context("--jobs needs a whole number")?,
            "--agents" => options.agents = value()?.parse().context("--agents needs a whole number")?,
            "--minutes" => options.minutes = value()?.parse().context("--minutes needs a number")?,
            "--only" => options.only = value()?.split(',').map(str::to_owned).collect(),
            "--api" => options.api = Some(value()?.into()),
            "--worker" => options.worker = Some(value()?.into()),
            "--repeat" => options.repeat = value()?.parse().context("--repeat needs a whole number")?,
            other => bail!(
                "unknown option {other} for bench (--seconds S, --connections N, --jobs K, --agents A, --minutes M, --only S1,S2, --api PATH, --worker PATH, --repeat R)"
            ),
        }
    }
    if [options.seconds, options.connections as u64, options.jobs as u64, options.agents.into(), options.repeat as u64]
        .contains(&0)
    {
        bail!("--seconds, --connections, --jobs, --agents and --repeat must be at least 1");
    }
    if !options.minutes.is_finite() || options.minutes * 60.0 < 1.0 {
        bail!("--minutes must be at least 1/60 (one second)");
    }
    if let Some(unknown) = options.only.iter().find(|only| *only != "replica" && !SCENARIOS.contains(&only.as_str())) {
        bail!("--only: no scenario {unknown} (one of {}, replica)", SCENARIOS.join(", "));
    }
    Ok(options)
}

pub fn run(runner: &Runner, args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let sh = &runner.sh;
    runner.step("check that pgbench is installed", || {
        let found = cmd!(sh, "pgbench --version").quiet().ignore_stdout().ignore_stderr().run().is_ok();
        if !found {
            bail!("pgbench is not installed (not found on PATH): install the Debian package postgresql-client");
        }
        Ok(())
    })?;
    let original_venv =
        if options.wants("original") { Some(crate::venv::FASTAPI_ORIGINAL.provide(runner)?) } else { None };
    runner.run(cmd!(sh, "cargo build --release --package api --package webhook-worker --package tests --bins"))?;

    let release = target_dir(&runner.root).join("release");
    let bench_dir = runner.path("target/bench");
    let api = options.api.clone().unwrap_or_else(|| release.join("api"));
    let worker = options.worker.clone().unwrap_or_else(|| release.join("webhook-worker"));
    let (load, standin, receiver) =
        (release.join("load"), release.join("cloud_tasks_standin"), release.join("webhook_receiver"));
    let pubsub = release.join("pubsub_standin");
    let database_url = std::env::var("BENCH_DATABASE_URL")
        // No TLS on loopback, as over Cloud SQL's Unix socket in production
        // (the connector encrypts); TLS would cost both sides CPU here.
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/agent_registry_bench?sslmode=disable".into());
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut results = Results::default();

    let ceiling_url = database_url_named(&database_url, CEILING_DATABASE)?;
    results.ceilings = measure_ceilings(runner, &runtime, &ceiling_url, &options, &bench_dir)?;

    let rounds = rounds::Rounds {
        runner,
        runtime: &runtime,
        options: &options,
        database_url: &database_url,
        ceiling_url: &ceiling_url,
        bench_dir: &bench_dir,
    };
    let prefix = format!("bench:{}:", std::process::id());
    let api_env = |database_url: &str, cloud_tasks: &str| -> Vec<(String, String)> {
        let mut env = vec![
            ("PORT", API_PORT.to_string()),
            ("DATABASE_URL", database_url.to_owned()),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("LOG_FORMAT", "json".into()),
            ("RUST_LOG", "warn".into()),
            ("ALLOW_HTTP_ENDPOINTS", "true".into()),
            // The deliveries' agent is the local receiver, on an IP literal.
            ("EGRESS_ALLOW_CIDRS", "127.0.0.0/8".into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", String::new()),
            ("CLOUD_TASKS_ENDPOINT", cloud_tasks.into()),
            ("PUBSUB_ENDPOINT", format!("http://127.0.0.1:{PUBSUB_PORT}")),
            ("WEBHOOK_WORKER_URL", format!("http://127.0.0.1:{WORKER_PORT}/tasks/deliver")),
            ("WORKER_SHARED_SECRET", WORKER_SECRET.into()),
            ("WEBHOOK_SECRET_KEY", WEBHOOK_SECRET_KEY.into()),
            ("PLATFORM_SIGNING_KEY", BENCH_SIGNING_KEY.into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect::<Vec<_>>();
        for class in ["DISCOVERY", "READ", "WRITE", "WRITE_IP"] {
            env.push((format!("RATE_LIMIT_{class}_CAPACITY"), "1000000000".into()));
            env.push((format!("RATE_LIMIT_{class}_REFILL_PER_MIN"), "1000000000".into()));
        }
        env
    };
    let api_url = format!("http://127.0.0.1:{API_PORT}");
    let mut stack = Stack::new(runner.dry_run, bench_dir.join("logs"));

    let pubsub_env = [("PUBSUB_STANDIN_PORT".to_owned(), PUBSUB_PORT.to_string())];
    stack.spawn("pubsub_standin", PUBSUB_PORT, &pubsub, &[], &pubsub_env, &bench_dir)?;
    runner.step("wait for the Pub/Sub stand-in", || stack.wait_listening("pubsub_standin", PUBSUB_PORT))?;

    let replica_run = if options.wants("replica") {
        replica::run(runner, &runtime, &options, &mut stack, &api, &|database_url| {
            api_env(database_url, NO_CLOUD_TASKS)
        })?
    } else {
        None
    };
    let replica_table = replica_run.map(|run| replica::table(&run, results.ceilings)).unwrap_or_default();
    if !SCENARIOS.iter().any(|scenario| options.wants(scenario)) {
        stack.stop_all();
        drop_ceiling_database(runner, &runtime, &ceiling_url)?;
        return report::write(runner, &options, &results, &replica_table);
    }

    runner.step("drop and create the database agent_registry_bench (BENCH_DATABASE_URL)", || {
        runtime.block_on(recreate_database(&database_url))
    })?;
    runner.run(cmd!(sh, "{api} migrate").envs(api_env(&database_url, NO_CLOUD_TASKS)))?;
    let agents = options.agents;
    runner.step(
        &format!("seed {agents} agents with one INSERT … SELECT … generate_series and a history of jobs, seal their webhook secrets, then VACUUM ANALYZE"),
        || runtime.block_on(seed(&database_url, agents)),
    )?;

    // Run 1: the API alone (its relay points at a closed port).
    let started = Instant::now();
    stack.spawn("api", API_PORT, &api, &["serve"], &api_env(&database_url, NO_CLOUD_TASKS), &bench_dir)?;
    runner.step("measure start-up: spawn to the first /readyz 200, polled every 5 ms", || {
        stack.wait_ready("api", API_PORT, "/readyz", Duration::from_millis(5))?;
        results.startup_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    })?;
    let connections = options.connections.to_string();
    for scenario in ["discovery", "get-agent", "create-job"].into_iter().filter(|scenario| options.wants(scenario)) {
        let drive = |seconds: &str| {
            cmd!(sh, "{load} {scenario} --url {api_url} --seconds {seconds} --connections {connections}")
        };
        rounds.measure(&stack, scenario, true, drive, &mut results)?;
    }
    let mut sampled = vec![soak::comparisons(runner, &stack, &options, &api_url, true, &mut results)?];
    if options.wants("create-job") {
        // Publishing is part of a job's cost: the next scenarios must not
        // pay for create-job's backlog, and how long it lasted is reported.
        runner.step("wait until the API has published create-job's events (at most 5 minutes)", || {
            results.publish_lag_s = Some(runtime.block_on(wait_for_events_published(&database_url))?);
            Ok(())
        })?;
    }
    runner.step("read the API's peak RSS (VmHWM in /proc/<pid>/status), stop it", || {
        results.rss_mb.push((RUNS[0], stack.peak_rss_then_stop("api")?));
        Ok(())
    })?;
    if options.wants("create-job") {
        results.create_statement = measure_create_statement(runner, &runtime, &database_url, &options)?;
    }

    // Run 2: the same API with the page cache off, one discovery query shape at a time.
    let mut uncached_env = api_env(&database_url, NO_CLOUD_TASKS);
    uncached_env.push(("PUBLIC_READ_CACHE_MS".into(), "0".into()));
    stack.spawn("api-uncached", API_PORT, &api, &["serve"], &uncached_env, &bench_dir)?;
    runner.step("wait for the API without the page cache", || {
        stack.wait_ready("api-uncached", API_PORT, "/readyz", Duration::from_millis(20))
    })?;
    for shape in UNCACHED_SHAPES.into_iter().filter(|_| options.wants("uncached")) {
        let query = format!("{shape}&limit=20");
        let drive = |seconds: &str| {
            cmd!(sh, "{load} discovery --url {api_url} --seconds {seconds} --connections {connections} --query {query}")
        };
        rounds.measure(&stack, &format!("uncached: {shape}"), true, drive, &mut results)?;
    }
    sampled.push(soak::comparisons(runner, &stack, &options, &api_url, false, &mut results)?);
    let side_by_side = match &original_venv {
        Some(venv) => {
            let setup = side_by_side::Setup {
                api_url: &api_url,
                venv,
                database_url: &database_url,
                redis_url: &redis_url,
                redis_key_prefix: &prefix,
            };
            side_by_side::run(runner, &mut stack, &options, &setup, &bench_dir, &mut results.scenarios)?
        }
        None => Vec::new(),
    };
    runner.step("read that API's peak RSS, stop it", || {
        results.rss_mb.push((RUNS[1], stack.peak_rss_then_stop("api-uncached")?));
        Ok(())
    })?;

    // Run 3: the whole webhook pipeline.
    runner.step(
        "set aside the deliveries left by create-job (dead, dead-lettered), so run 3 sends only its own",
        || runtime.block_on(set_aside_deliveries(&database_url)),
    )?;
    let standin_env = [
        ("CLOUD_TASKS_STANDIN_PORT".to_owned(), STANDIN_PORT.to_string()),
        ("CLOUD_TASKS_STANDIN_MAX_DISPATCHES_PER_SECOND".to_owned(), "100000".into()),
        // The queue's in-flight cap (Terraform: 100 by default, 5,000 at most);
        // without one, a backlog of thousands is pushed at once and each push
        // beyond the worker's send slots is only deferred.
        ("CLOUD_TASKS_STANDIN_MAX_CONCURRENT_DISPATCHES".to_owned(), "200".into()),
        ("CLOUD_TASKS_STANDIN_AUTHORIZATION".to_owned(), format!("Bearer {WORKER_SECRET}")),
    ];
    stack.spawn("cloud_tasks_standin", STANDIN_PORT, &standin, &[], &standin_env, &bench_dir)?;
    let receiver_env = [("WEBHOOK_RECEIVER_PORT".to_owned(), RECEIVER_PORT.to_string())];
    stack.spawn("webhook_receiver", RECEIVER_PORT, &receiver, &[], &receiver_env, &bench_dir)?;
    let worker_env: Vec<(String, String)> = [
        ("PORT", WORKER_PORT.to_string()),
        ("DATABASE_URL", database_url.clone()),
        ("REDIS_URL", redis_url.clone()),
        ("REDIS_KEY_PREFIX", prefix.clone()),
        ("WORKER_SHARED_SECRET", WORKER_SECRET.into()),
        ("WEBHOOK_SECRET_KEY", WEBHOOK_SECRET_KEY.into()),
        // The worker creates retries' tasks itself.
        ("CLOUD_TASKS_ENDPOINT", format!("http://127.0.0.1:{STANDIN_PORT}")),
        ("WEBHOOK_WORKER_URL", format!("http://127.0.0.1:{WORKER_PORT}/tasks/deliver")),
        // Every bench webhook goes to one receiver host; the per-host and
        // per-recipient limits (10 and 20 by default) would measure those
        // limits, not the pipeline.
        ("WEBHOOK_ENDPOINT_CONCURRENCY", "1000".into()),
        ("WEBHOOK_RECIPIENT_CONCURRENCY", "1000".into()),
        ("EGRESS_ALLOW_CIDRS", "127.0.0.0/8".into()),
        ("ALLOW_HTTP_ENDPOINTS", "true".into()),
        ("LOG_FORMAT", "json".into()),
        ("RUST_LOG", "warn".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", String::new()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    stack.spawn("webhook-worker", WORKER_PORT, &worker, &[], &worker_env, &bench_dir)?;
    stack.spawn(
        "api",
        API_PORT,
        &api,
        &["serve"],
        &api_env(&database_url, &format!("http://127.0.0.1:{STANDIN_PORT}")),
        &bench_dir,
    )?;
    runner.step("wait for the stand-in, the receiver, the worker and the API", || {
        stack.wait_listening("cloud_tasks_standin", STANDIN_PORT)?;
        stack.wait_listening("webhook_receiver", RECEIVER_PORT)?;
        stack.wait_ready("webhook-worker", WORKER_PORT, "/readyz", Duration::from_millis(20))?;
        stack.wait_ready("api", API_PORT, "/readyz", Duration::from_millis(20))
    })?;
    let jobs = options.jobs.to_string();
    let receiver_url = format!("http://127.0.0.1:{RECEIVER_PORT}");
    let drive = |seconds: &str| {
        cmd!(
            sh,
            "{load} deliveries --url {api_url} --seconds {seconds} --connections {connections} --jobs {jobs} --receiver {receiver_url} --database-url {database_url}"
        )
    };
    if options.wants("deliveries") {
        // No warm-up: a warm-up's jobs would still be delivering when the measured run starts.
        rounds.measure(&stack, "deliveries", false, drive, &mut results)?;
    }
    let mut long_soak = None;
    if options.wants("soak") {
        let memory = soak::Sampler::start(
            stack.pids().into_iter().filter(|(name, _)| ["api", "webhook-worker"].contains(name)).collect(),
        );
        let soak_seconds = ((options.minutes * 60.0).round() as u64).to_string();
        let command = cmd!(sh, "{load} soak --url {api_url} --seconds {soak_seconds} --connections {connections}");
        let minutes = format!("soak: {} minutes, whole pipeline (cache on)", options.minutes);
        let long_run = run_load(runner, &stack, &minutes, command, &[], None)?;
        let memory = memory.finish();
        results.scenarios.extend(long_run);
        if !runner.dry_run {
            std::fs::create_dir_all(&bench_dir)?;
            std::fs::write(bench_dir.join("soak-rss.csv"), memory.csv())?;
        }
        long_soak = Some(memory);
    }
    runner.step("read the API's peak RSS again, stop every process", || {
        results.rss_mb.push((RUNS[2], stack.peak_rss_then_stop("api")?));
        stack.stop_all();
        Ok(())
    })?;
    sampled.push(long_soak);
    let soak_report = match &sampled[2] {
        Some(memory) => {
            let runs: Vec<soak::RunMemory> = results
                .rss_mb
                .iter()
                .zip(&sampled)
                .map(|((run, peak_mb), sampled)| soak::RunMemory { run, peak_mb: *peak_mb, sampled: sampled.as_ref() })
                .collect();
            soak::report(memory, &runs, &results.scenarios)
        }
        None => String::new(),
    };

    drop_ceiling_database(runner, &runtime, &ceiling_url)?;
    report::write(runner, &options, &results, &(replica_table + &side_by_side::table(&side_by_side) + &soak_report))
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir), // an absolute path replaces root
        None => root.join("target"),
    }
}

/// Runs the load generator; parses its JSON line into the scenario `name`,
/// with the CPU it cost the machine, `stack`'s processes and the throwaway
/// cluster's `postmasters` (none outside the replica run). `None` in a dry run.
fn run_load(
    runner: &Runner,
    stack: &Stack,
    name: &str,
    command: xshell::Cmd<'_>,
    postmasters: &[(Group, u32)],
    wal: Option<&wal::Source>,
) -> anyhow::Result<Option<Scenario>> {
    if runner.dry_run {
        println!("{command}");
        return Ok(None);
    }
    eprintln!("$ {command}");
    // From a checkpoint (before the CPU sample, so not counted), so every
    // run pays the full-page images of a fresh checkpoint interval.
    let wal_before = wal.map(|source| source.sample(true)).transpose()?;
    let before = cpu::Sample::take(&stack.pids(), postmasters)?;
    let output = command.read().context("the load generator failed")?;
    let after = cpu::Sample::take(&stack.pids(), postmasters)?;
    let wal_after = wal.map(|source| source.sample(false)).transpose()?;
    let line = output.lines().last().context("the load generator printed nothing")?;
    let report: serde_json::Value = serde_json::from_str(line).context("the load generator's output is not JSON")?;
    let number = |name: &str| report[name].as_f64().with_context(|| format!("no {name} in {line}"));
    let count = number("count")?;
    let scenario = Scenario {
        name: name.to_owned(),
        rate: number("rate")?,
        p50: number("p50_ms")?,
        p99: number("p99_ms")?,
        p999: number("p999_ms")?,
        errors: number("errors")? as u64,
        cost: Some(cpu::Cost::between(&before, &after, count)),
        wal: match (wal, wal_before, wal_after) {
            (Some(source), Some(before), Some(after)) => Some(source.cost(&before, &after, count)?),
            _ => None,
        },
        cache_hit_rate: report["cache_lookups"]
            .as_f64()
            .filter(|lookups| *lookups > 0.0)
            .map(|lookups| report["cache_hits"].as_f64().unwrap_or(0.0) / lookups),
    };
    if let Some(error) = report["first_error"].as_str() {
        eprintln!("{}: {} errors, the first: {error}", scenario.name, scenario.errors);
    }
    eprintln!("{}: {:.0}/s, p99 {:.2} ms", scenario.name, scenario.rate, scenario.p99);
    Ok(Some(scenario))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_defaults_and_reject_unknowns() {
        let options = parse(&[]).unwrap();
        assert_eq!((options.seconds, options.connections, options.jobs, options.agents), (10, 32, 2000, 100_000));
        let options = parse(&["--seconds".into(), "5".into(), "--connections".into(), "8".into()]).unwrap();
        assert_eq!((options.seconds, options.connections), (5, 8));
        assert_eq!(parse(&["--agents".into(), "1000000".into()]).unwrap().agents, 1_000_000);
        assert!(parse(&["--agents".into(), "0".into()]).is_err());
        assert!(parse(&["--agents".into(), "many".into()]).is_err());
        assert!(parse(&["--agents".into()]).is_err());
        assert_eq!(parse(&[]).unwrap().api, None, "the api built, unless named");
        let other = parse(&["--api".into(), "/tmp/api-before".into()]).unwrap().api;
        assert_eq!(other.as_deref(), Some(std::path::Path::new("/tmp/api-before")));
        assert!(parse(&["--api".into()]).is_err());
        assert_eq!(parse(&[]).unwrap().worker, None, "the worker built, unless named");
        let worker = parse(&["--worker".into(), "/tmp/worker-before".into()]).unwrap().worker;
        assert_eq!(worker.as_deref(), Some(std::path::Path::new("/tmp/worker-before")));
        assert!(parse(&["--fast".into()]).is_err());
        assert_eq!(parse(&[]).unwrap().repeat, 1, "one round unless asked");
        assert_eq!(parse(&["--repeat".into(), "3".into()]).unwrap().repeat, 3);
        assert!(parse(&["--repeat".into(), "0".into()]).is_err());
        assert!(parse(&["--seconds".into(), "0".into()]).is_err());
        assert_eq!(parse(&["--minutes".into(), "2.5".into()]).unwrap().minutes, 2.5, "a fraction of a minute");
        for minutes in ["0", "0.001", "NaN", "inf", "soon"] {
            assert!(parse(&["--minutes".into(), minutes.into()]).is_err(), "--minutes {minutes}");
        }
        let only = parse(&["--only".into(), "create-job,uncached".into()]).unwrap();
        assert!(only.wants("create-job") && only.wants("uncached: capabilities=skill-42") && !only.wants("discovery"));
        assert!(parse(&["--only".into(), "create-jobs".into()]).is_err(), "a misspelt scenario is refused");
        let replica = parse(&["--only".into(), "replica".into()]).unwrap();
        assert!(replica.wants("replica"), "{:?}", replica.only);
        assert!(!SCENARIOS.iter().any(|scenario| replica.wants(scenario)), "the replica run alone skips the others");
        assert!(parse(&[]).unwrap().wants("replica"), "a whole bench includes it");
        let original = parse(&["--only".into(), "original".into()]).unwrap();
        assert!(original.wants("original") && !original.wants("uncached: capabilities=skill-42"));
    }
}
