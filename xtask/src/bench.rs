//! `cargo xtask bench`: builds release binaries, measures the box's ceiling
//! with `pgbench` (select-only and one-row insert rates, on a database of its
//! own, `agent_registry_bench_ceiling`, dropped afterwards), seeds a fresh
//! database (`agent_registry_bench`, `--agents`, 100k by default, then
//! `VACUUM ANALYZE`), starts the services as processes on ports of their own,
//! drives each scenario from a separate load generator process
//! (`tests/src/bin/load.rs`), and prints one table of the figures against
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
//! after the first run's undelivered rows are set aside. Every process
//! started is stopped on exit, also on error.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};
use xshell::cmd;

use crate::runner::Runner;

const API_PORT: u16 = 18080;
const WORKER_PORT: u16 = 18081;
const STANDIN_PORT: u16 = 18123;
const RECEIVER_PORT: u16 = 18090;
const PUBSUB_PORT: u16 = 18085;
const WORKER_SECRET: &str = "bench-worker-secret";
/// Seals the webhook secrets of the bench's API and worker (32 bytes, base64);
/// the seeded agents' plaintext ones are sealed with it right after seeding.
const WEBHOOK_SECRET_KEY: &str = "YmVuY2ggb25seTogd2ViaG9vayBzZWNyZXRzIGtleSE=";
/// The API's signing key in the benchmark (base64 of 32 bytes of 0x42): public, signs nothing that leaves it.
const BENCH_SIGNING_KEY: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
const CEILING_DATABASE: &str = "agent_registry_bench_ceiling";
const CEILING_INSERT: &str = "INSERT INTO ceiling_insert (payload) VALUES ('x');";

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
    /// Scenarios to run (`--only`, comma-separated; `uncached` names every
    /// uncached shape); empty: all. Start-up, RSS and the ceiling always run.
    pub only: Vec<String>,
}

impl Options {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|only| only == scenario || (only == "uncached" && is_uncached(scenario)))
    }
}

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options { seconds: 10, connections: 32, jobs: 2000, agents: 100_000, only: Vec::new() };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value()?.parse().context("--seconds needs a whole number")?,
            "--connections" => options.connections = value()?.parse().context("--connections needs a whole number")?,
            "--jobs" => options.jobs = value()?.parse().context("--jobs needs a whole number")?,
            "--agents" => options.agents = value()?.parse().context("--agents needs a whole number")?,
            "--only" => options.only = value()?.split(',').map(str::to_owned).collect(),
            other => bail!(
                "unknown option {other} for bench (--seconds S, --connections N, --jobs K, --agents A, --only S1,S2)"
            ),
        }
    }
    if options.seconds == 0 || options.connections == 0 || options.jobs == 0 || options.agents == 0 {
        bail!("--seconds, --connections, --jobs and --agents must be at least 1");
    }
    let known = ["discovery", "get-agent", "create-job", "uncached", "deliveries"];
    if let Some(unknown) = options.only.iter().find(|only| !known.contains(&only.as_str())) {
        bail!("--only: no scenario {unknown} (one of {})", known.join(", "));
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
    runner.run(cmd!(sh, "cargo build --release --package api --package webhook-worker --package tests --bins"))?;

    let release = target_dir(&runner.root).join("release");
    let bench_dir = runner.path("target/bench");
    let (api, worker) = (release.join("api"), release.join("webhook-worker"));
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

    runner.step("drop and create the database agent_registry_bench (BENCH_DATABASE_URL)", || {
        runtime.block_on(recreate_database(&database_url))
    })?;
    runner.run(
        cmd!(sh, "{api} migrate")
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", &redis_url)
            .env("WEBHOOK_SECRET_KEY", WEBHOOK_SECRET_KEY)
            .env("PLATFORM_SIGNING_KEY", BENCH_SIGNING_KEY)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn"),
    )?;
    let agents = options.agents;
    runner.step(
        &format!("seed {agents} agents with one INSERT … SELECT … generate_series and a history of jobs, seal their webhook secrets, then VACUUM ANALYZE"),
        || runtime.block_on(seed(&database_url, agents)),
    )?;

    let prefix = format!("bench:{}:", std::process::id());
    let api_env = |cloud_tasks: &str| -> Vec<(String, String)> {
        let mut env = vec![
            ("PORT", API_PORT.to_string()),
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("LOG_FORMAT", "json".into()),
            ("RUST_LOG", "warn".into()),
            ("ALLOW_HTTP_ENDPOINTS", "true".into()),
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

    // Run 1: the API alone (its relay points at a closed port).
    let started = Instant::now();
    stack.spawn("api", API_PORT, &api, &["serve"], &api_env("http://127.0.0.1:9"), &bench_dir)?;
    runner.step("measure start-up: spawn to the first /readyz 200, polled every 5 ms", || {
        stack.wait_ready("api", API_PORT, "/readyz", Duration::from_millis(5))?;
        results.startup_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    })?;
    let (seconds, connections) = (options.seconds.to_string(), options.connections.to_string());
    for scenario in ["discovery", "get-agent", "create-job"].into_iter().filter(|scenario| options.wants(scenario)) {
        let command = cmd!(sh, "{load} {scenario} --url {api_url} --seconds {seconds} --connections {connections}");
        if let Some(report) = run_load(runner, scenario, command)? {
            results.scenarios.push(report);
        }
    }
    if options.wants("create-job") {
        // Publishing is part of a job's cost: the next scenarios must not
        // pay for create-job's backlog, and how long it lasted is reported.
        runner.step("wait until the API has published create-job's events (at most 5 minutes)", || {
            results.publish_lag_s = Some(runtime.block_on(wait_for_events_published(&database_url))?);
            Ok(())
        })?;
    }
    runner.step("read the API's peak RSS (VmHWM in /proc/<pid>/status), stop it", || {
        results.rss_mb.push(stack.peak_rss_then_stop("api")?);
        Ok(())
    })?;
    if options.wants("create-job") {
        results.create_statement_tps = measure_create_statement(runner, &runtime, &database_url, &options)?;
    }

    // Run 2: the same API with the page cache off, one discovery query shape at a time.
    let mut uncached_env = api_env("http://127.0.0.1:9");
    uncached_env.push(("PUBLIC_READ_CACHE_MS".into(), "0".into()));
    stack.spawn("api-uncached", API_PORT, &api, &["serve"], &uncached_env, &bench_dir)?;
    runner.step("wait for the API without the page cache", || {
        stack.wait_ready("api-uncached", API_PORT, "/readyz", Duration::from_millis(20))
    })?;
    for shape in UNCACHED_SHAPES.into_iter().filter(|_| options.wants("uncached")) {
        let query = format!("{shape}&limit=20");
        let command = cmd!(
            sh,
            "{load} discovery --url {api_url} --seconds {seconds} --connections {connections} --query {query}"
        );
        if let Some(report) = run_load(runner, &format!("uncached: {shape}"), command)? {
            results.scenarios.push(report);
        }
    }
    runner.step("read that API's peak RSS, stop it", || {
        results.rss_mb.push(stack.peak_rss_then_stop("api-uncached")?);
        Ok(())
    })?;

    // Run 3: the whole webhook pipeline.
    runner.step("set aside the deliveries left by create-job (status dead), so run 3 delivers only its own", || {
        runtime.block_on(set_aside_deliveries(&database_url))
    })?;
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
        // Every bench webhook goes to one receiver host; the per-host limit
        // (10 by default) would measure that limit, not the pipeline.
        ("WEBHOOK_ENDPOINT_CONCURRENCY", "1000".into()),
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
        &api_env(&format!("http://127.0.0.1:{STANDIN_PORT}")),
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
    let command = cmd!(
        sh,
        "{load} deliveries --url {api_url} --seconds {seconds} --connections {connections} --jobs {jobs} --receiver {receiver_url} --database-url {database_url}"
    );
    if options.wants("deliveries")
        && let Some(report) = run_load(runner, "deliveries", command)?
    {
        results.scenarios.push(report);
    }
    runner.step("read the API's peak RSS again, stop every process", || {
        results.rss_mb.push(stack.peak_rss_then_stop("api")?);
        stack.stop_all();
        Ok(())
    })?;

    runner.step("print the table, write target/bench/latest.md", || {
        let table = results.table();
        println!("\n{table}");
        std::fs::create_dir_all(&bench_dir)?;
        let note = format!(
            "cargo xtask bench --seconds {} --connections {} --jobs {} --agents {}; load generator and services on the same machine.\n\n",
            options.seconds, options.connections, options.jobs, options.agents
        );
        std::fs::write(bench_dir.join("latest.md"), note + &table)?;
        Ok(())
    })
}

/// The box's ceiling on a database of its own (`ceiling_url`, dropped at
/// the end): `pgbench -S` (select-only) and a one-row `INSERT` script, on as
/// many connections as the scenarios. `None` in a dry run.
fn measure_ceilings(
    runner: &Runner,
    runtime: &tokio::runtime::Runtime,
    ceiling_url: &str,
    options: &Options,
    bench_dir: &Path,
) -> anyhow::Result<Option<Ceilings>> {
    let sh = &runner.sh;
    runner.step(&format!("drop and create the database {CEILING_DATABASE}"), || {
        runtime.block_on(recreate_database(ceiling_url))
    })?;
    runner.run(cmd!(sh, "pgbench -i -s 10 {ceiling_url}"))?;
    let (clients, seconds) = (options.connections.to_string(), options.seconds.to_string());
    let select = run_pgbench(runner, cmd!(sh, "pgbench -S -M prepared -c {clients} -j 2 -T {seconds} {ceiling_url}"))?;
    let script = bench_dir.join("ceiling_insert.sql");
    runner.step(&format!("create the table ceiling_insert; write {}: {CEILING_INSERT}", script.display()), || {
        std::fs::create_dir_all(bench_dir)?;
        std::fs::write(&script, format!("{CEILING_INSERT}\n"))?;
        runtime.block_on(create_ceiling_insert_table(ceiling_url))
    })?;
    let insert = run_pgbench(
        runner,
        cmd!(sh, "pgbench -n -f {script} -M prepared -c {clients} -j 2 -T {seconds} {ceiling_url}"),
    )?;
    runner.step(&format!("drop the database {CEILING_DATABASE}"), || runtime.block_on(drop_database(ceiling_url)))?;
    Ok(select.zip(insert).map(|(select, insert)| Ceilings { select, insert }))
}

/// Runs a pgbench benchmark; its tps. `None` in a dry run.
fn run_pgbench(runner: &Runner, command: xshell::Cmd<'_>) -> anyhow::Result<Option<f64>> {
    if runner.dry_run {
        println!("{command}");
        return Ok(None);
    }
    eprintln!("$ {command}");
    let output = command.read().context("pgbench failed")?;
    let tps = parse_tps(&output)
        .with_context(|| format!("no \"tps = N (without initial connection time)\" in:\n{output}"))?;
    eprintln!("pgbench: {tps:.0} tps");
    Ok(Some(tps))
}

/// The rate in pgbench's `tps = N (without initial connection time)` line.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix("tps = ")?.strip_suffix(" (without initial connection time)"))
        .and_then(|tps| tps.trim().parse().ok())
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir), // an absolute path replaces root
        None => root.join("target"),
    }
}

/// Runs the load generator; parses its JSON line into the scenario `name`.
/// `None` in a dry run.
fn run_load(runner: &Runner, name: &str, command: xshell::Cmd<'_>) -> anyhow::Result<Option<Scenario>> {
    if runner.dry_run {
        println!("{command}");
        return Ok(None);
    }
    eprintln!("$ {command}");
    let output = command.read().context("the load generator failed")?;
    let line = output.lines().last().context("the load generator printed nothing")?;
    let report: serde_json::Value = serde_json::from_str(line).context("the load generator's output is not JSON")?;
    let number = |name: &str| report[name].as_f64().with_context(|| format!("no {name} in {line}"));
    let scenario = Scenario {
        name: name.to_owned(),
        rate: number("rate")?,
        p50: number("p50_ms")?,
        p99: number("p99_ms")?,
        p999: number("p999_ms")?,
        errors: number("errors")? as u64,
    };
    if let Some(error) = report["first_error"].as_str() {
        eprintln!("{}: {} errors, the first: {error}", scenario.name, scenario.errors);
    }
    eprintln!("{}: {:.0}/s, p99 {:.2} ms", scenario.name, scenario.rate, scenario.p99);
    Ok(Some(scenario))
}

/// `database_url` with its database replaced by `name` (same server, user
/// and parameters).
fn database_url_named(database_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(database_url).context("BENCH_DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// A connection to the `postgres` database of `database_url`'s server, and
/// the name of the database `database_url` names.
async fn admin_connection(database_url: &str) -> anyhow::Result<(PgConnection, String)> {
    let url = url::Url::parse(database_url).context("BENCH_DATABASE_URL is not a URL")?;
    let name = url.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("BENCH_DATABASE_URL must name a database of letters, digits and _");
    }
    let admin = database_url_named(database_url, "postgres")?;
    let admin = PgConnection::connect(&admin).await.context("cannot connect to Postgres")?;
    Ok((admin, name))
}

async fn recreate_database(database_url: &str) -> anyhow::Result<()> {
    drop_database(database_url).await?;
    let (mut admin, name) = admin_connection(database_url).await?;
    admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await?;
    Ok(())
}

async fn drop_database(database_url: &str) -> anyhow::Result<()> {
    let (mut admin, name) = admin_connection(database_url).await?;
    admin.execute(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))).await?;
    Ok(())
}

async fn create_ceiling_insert_table(database_url: &str) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "CREATE TABLE ceiling_insert (
             id bigserial PRIMARY KEY,
             payload text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    Ok(())
}

/// `$1` active agents: six primary tags (one each), eight secondary tags
/// (one each), one of 500 rare `skill-N` tags; prices 1.00–100.99, 0–199
/// ratings averaging 1–5 (with the reputation score they give), unique
/// 32-byte keys; created a minute apart.
const SEED: &str = "
INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, rating,
                    rating_count, rating_sum, score, webhook_secret, created_at, updated_at)
SELECT gen_random_uuid(),
       'Agent ' || i,
       (ARRAY['Translates documents between forty languages.', 'Summarises long reports into short briefs.',
              'Reviews code for bugs and style.', 'Extracts tables and fields from invoices.',
              'Writes captions for images.', 'Answers questions about a knowledge base.'])[1 + i % 6]
           || ' Bench agent number ' || i || '.',
       ARRAY[(ARRAY['translation', 'summarization', 'code-review', 'data-extraction', 'image-captioning',
                    'question-answering'])[1 + i % 6],
             (ARRAY['legal', 'finance', 'medical', 'marketing', 'education', 'support', 'research',
                    'gaming'])[1 + (i / 6) % 8],
             'skill-' || (i % 500)],
       'http://127.0.0.1:18090/agents/' || i,
       decode(lpad(to_hex(i), 64, '0'), 'hex'),
       1 + (i::bigint * 7919 % 10000) / 100.0,
       CASE WHEN ratings.count = 0 THEN 0 ELSE round(ratings.sum::numeric / ratings.count, 2) END,
       ratings.count,
       ratings.sum,
       reputation_score(ratings.sum, ratings.count),
       'whsec_' || encode(sha256(int4send(i)), 'base64'),
       now() - make_interval(mins => i),
       now()
FROM generate_series(1, $1) AS i,
     LATERAL (SELECT (i * 31) % 200 AS count) AS counted,
     LATERAL (SELECT counted.count, (counted.count * (100 + i::bigint * 104729 % 401) / 100)::integer AS sum) AS ratings";

/// A history of `$1` completed jobs (one client, the first `$1` agents),
/// each with its published `job.created` event and delivered webhook: a live
/// registry is never empty there. On empty tables, the API's connections
/// would keep the plans they made on their first writes — sequential scans
/// of `jobs` for the foreign key checks — while the scenarios fill them.
const SEED_HISTORY: &str = "
WITH client AS (
    INSERT INTO clients (id, name, public_key, webhook_secret)
    VALUES (gen_random_uuid(), 'Bench history', decode(repeat('ff', 32), 'hex'),
            'whsec_' || encode(sha256('bench history'), 'base64'))
    RETURNING id
), job AS (
    INSERT INTO jobs (id, client_id, agent_id, status, input, result, price, fee, accept_by, created_at, updated_at)
    SELECT gen_random_uuid(), client.id, agent.id, 'completed', '{\"task\": \"history\"}', '{\"done\": true}',
           agent.price, round(agent.price * 0.025, 6), agent.created_at, agent.created_at, agent.created_at
    FROM client, (SELECT id, price, created_at FROM agents ORDER BY id LIMIT $1) AS agent
    RETURNING id, agent_id, created_at
), event AS (
    INSERT INTO events (id, aggregate_type, aggregate_id, type, data, occurred_at, published_at)
    SELECT gen_random_uuid(), 'job', id, 'job.created', '{}', created_at, created_at FROM job
    RETURNING id, aggregate_id, occurred_at
)
INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, status, attempts, created_at,
                                dispatched_at, finished_at)
SELECT gen_random_uuid(), event.id, job.id, job.agent_id, 'http://127.0.0.1:18090/history', 'delivered', 1,
       job.created_at, job.created_at, job.created_at
FROM event JOIN job ON job.id = event.aggregate_id";

/// Seeds `agents` agents and a history of jobs (one per ten agents), then
/// `VACUUM ANALYZE` (an all-visible table for index-only scans, and
/// statistics); prints how long each took.
async fn seed(database_url: &str, agents: u32) -> anyhow::Result<()> {
    let count = i32::try_from(agents).context("--agents must be at most 2147483647")?;
    let mut db = PgConnection::connect(database_url).await?;
    let started = Instant::now();
    sqlx::query(SEED).bind(count).execute(&mut db).await.context("seeding the agents failed")?;
    sqlx::query(SEED_HISTORY).bind(count / 10).execute(&mut db).await.context("seeding the job history failed")?;
    let seeded = started.elapsed();
    // As `api migrate` would have: webhook secrets are sealed at rest, and
    // sealing during the measurements would load the API.
    let source = shared::settings::SettingsSource::from_pairs([
        ("DATABASE_URL", database_url),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("WEBHOOK_SECRET_KEY", WEBHOOK_SECRET_KEY),
    ]);
    let sealer = shared::sealing::Sealer::from_settings(&shared::settings::Settings::from_source(&source)?).await?;
    let pool = sqlx::PgPool::connect(database_url).await?;
    shared::sealing::seal_legacy_secrets(&pool, &sealer, usize::MAX).await?;
    let sealed = started.elapsed();
    db.execute("VACUUM ANALYZE").await?;
    eprintln!(
        "seeded {agents} agents and a history of jobs in {:.1} s, sealed their webhook secrets in {:.1} s, then VACUUM ANALYZE in {:.1} s",
        seeded.as_secs_f64(),
        (sealed - seeded).as_secs_f64(),
        (started.elapsed() - sealed).as_secs_f64()
    );
    Ok(())
}

/// create-job's own statement run by `pgbench` alone (`xtask/bench/create_job.pgbench`,
/// on the bench database, with no service running), for comparison with the
/// create-job scenario; its events are then marked published, so the next
/// runs do not publish them. `None` in a dry run.
fn measure_create_statement(
    runner: &Runner,
    runtime: &tokio::runtime::Runtime,
    database_url: &str,
    options: &Options,
) -> anyhow::Result<Option<f64>> {
    let sh = &runner.sh;
    let (mut agents, mut clients) = (0, 0);
    runner.step("pick 500 agents and the load's clients for pgbench", || {
        (agents, clients) = runtime.block_on(create_pick_tables(database_url))?;
        Ok(())
    })?;
    let script = runner.path("xtask/bench/create_job.pgbench");
    let (connections, seconds) = (options.connections.to_string(), options.seconds.to_string());
    let (agents, clients) = (format!("agents={agents}"), format!("clients={clients}"));
    let tps = run_pgbench(
        runner,
        cmd!(
            sh,
            "pgbench -n -f {script} -D {agents} -D {clients} -M prepared -c {connections} -j 2 -T {seconds} {database_url}"
        ),
    )?;
    runner.step("mark pgbench's job.created events published (nothing to publish)", || {
        runtime.block_on(async {
            let mut db = PgConnection::connect(database_url).await?;
            db.execute("UPDATE events SET published_at = now() WHERE published_at IS NULL").await?;
            anyhow::Ok(())
        })
    })?;
    Ok(tps)
}

/// `bench_pick_agents` and `bench_pick_clients` (n, id), numbered from 1
/// for pgbench's `random()`; returns how many of each.
async fn create_pick_tables(database_url: &str) -> anyhow::Result<(i64, i64)> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "DROP TABLE IF EXISTS bench_pick_agents, bench_pick_clients;
         CREATE TABLE bench_pick_agents AS
             SELECT row_number() OVER () AS n, id FROM (SELECT id FROM agents WHERE active ORDER BY id LIMIT 500) a;
         CREATE TABLE bench_pick_clients AS
             SELECT row_number() OVER () AS n, id FROM (SELECT id FROM clients WHERE active ORDER BY id LIMIT 64) c;
         CREATE UNIQUE INDEX ON bench_pick_agents (n);
         CREATE UNIQUE INDEX ON bench_pick_clients (n);",
    )
    .await?;
    let counts: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM bench_pick_agents), (SELECT count(*) FROM bench_pick_clients)")
            .fetch_one(&mut db)
            .await?;
    if counts.0 == 0 || counts.1 == 0 {
        bail!("no agents or clients to create jobs between");
    }
    Ok(counts)
}

/// Seconds from now until no event is left unpublished; `None` in time
/// given up after five minutes.
async fn wait_for_events_published(database_url: &str) -> anyhow::Result<Option<f64>> {
    let mut db = PgConnection::connect(database_url).await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE published_at IS NULL").fetch_one(&mut db).await?;
        if unpublished == 0 {
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

async fn set_aside_deliveries(database_url: &str) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "UPDATE webhook_deliveries SET status = 'dead', finished_at = now(),
                last_error = 'cargo xtask bench: set aside after the create-job scenario'
         WHERE status IN ('pending', 'dispatched')",
    )
    .await?;
    Ok(())
}

/// `VmHWM` of a process: its peak resident set, in MB.
fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("cannot read /proc/<pid>/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/<pid>/status")?;
    Ok(kb / 1024.0)
}

/// The processes the bench started; all are killed when this is dropped.
struct Stack {
    dry_run: bool,
    logs: PathBuf,
    children: Vec<(&'static str, Child)>,
}

impl Stack {
    fn new(dry_run: bool, logs: PathBuf) -> Self {
        Self { dry_run, logs, children: Vec::new() }
    }

    /// Starts `program` in `dir` (no `.env` there: only this environment
    /// counts), its output to `target/bench/logs/<name>.log`. It will listen
    /// on `port`, which must be free: if another process answered there, the
    /// waits would succeed and the bench would measure that process instead.
    fn spawn(
        &mut self,
        name: &'static str,
        port: u16,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        dir: &Path,
    ) -> anyhow::Result<()> {
        let shown: Vec<String> = env.iter().map(|(name, value)| format!("{name}={value:?}")).collect();
        let line = format!("{} {} {}", shown.join(" "), program.display(), args.join(" "));
        if self.dry_run {
            println!("{} &  # logs: {}", line.trim_end(), self.logs.join(format!("{name}.log")).display());
            return Ok(());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            bail!("port {port}, where the bench starts the {name}, is in use by another process: stop it first");
        }
        eprintln!("$ {} &", line.trim_end());
        std::fs::create_dir_all(&self.logs)?;
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        self.children.push((name, child));
        Ok(())
    }

    fn check_running(&mut self, name: &str) -> anyhow::Result<()> {
        for (child_name, child) in &mut self.children {
            if *child_name == name
                && let Some(status) = child.try_wait()?
            {
                bail!("the {name} stopped ({status}); see {}", self.logs.join(format!("{name}.log")).display());
            }
        }
        Ok(())
    }

    /// Polls `GET path` every `every` until it answers 200 (30 s at most).
    fn wait_ready(&mut self, name: &str, port: u16, path: &str, every: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_status(port, path) == Some(200) {
                return Ok(());
            }
            self.check_running(name)?;
            std::thread::sleep(every);
        }
        bail!("the {name} was not ready on :{port}{path} within 30 s")
    }

    fn wait_listening(&mut self, name: &str, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            self.check_running(name)?;
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the {name} did not listen on :{port} within 30 s")
    }

    /// Reads the peak RSS of the process `name`, then stops it.
    fn peak_rss_then_stop(&mut self, name: &str) -> anyhow::Result<f64> {
        let (_, child) = self
            .children
            .iter()
            .find(|(child_name, _)| *child_name == name)
            .with_context(|| format!("the {name} is not running"))?;
        let mb = peak_rss_mb(child.id())?;
        self.stop(name);
        Ok(mb)
    }

    fn stop(&mut self, name: &str) {
        for (_, child) in self.children.iter_mut().filter(|(child_name, _)| *child_name == name) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.retain(|(child_name, _)| *child_name != name);
    }

    fn stop_all(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The status of `GET http://127.0.0.1:port/path`, or `None` if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// One load scenario's figures, as the load generator reports them.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// Requests (or deliveries) per second.
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub errors: u64,
}

/// The box's ceiling, measured by pgbench in the same run.
#[derive(Clone, Copy, Debug)]
pub struct Ceilings {
    /// `pgbench -S` (select-only), transactions per second.
    pub select: f64,
    /// One-row `INSERT` per transaction, transactions per second.
    pub insert: f64,
}

#[derive(Default)]
pub struct Results {
    pub scenarios: Vec<Scenario>,
    pub startup_ms: Option<f64>,
    /// Peak RSS of each API run.
    pub rss_mb: Vec<f64>,
    pub ceilings: Option<Ceilings>,
    /// After create-job ended, until its events were all published
    /// (`Some(None)`: not within the wait).
    pub publish_lag_s: Option<Option<f64>>,
    /// create-job's statement alone, by pgbench.
    pub create_statement_tps: Option<f64>,
}

fn is_uncached(scenario: &str) -> bool {
    scenario.starts_with("uncached:")
}

/// The target of a scenario (issue 8, on this 2-core machine; uncached
/// discovery and create-job's 2,500/s: issue 18).
fn target(scenario: &str) -> &'static str {
    match scenario {
        "discovery" | "get-agent" => "≥ 10,000 req/s, p99 < 10 ms",
        "create-job" => "≥ 2,500 req/s",
        "deliveries" => "≥ 2,000 deliveries/s",
        name if is_uncached(name) => "≥ 6,000 req/s, p99 < 10 ms",
        _ => "none",
    }
}

/// Whether a scenario meets its target; one with errors does not.
fn meets(scenario: &Scenario) -> bool {
    let target = match scenario.name.as_str() {
        "discovery" | "get-agent" => scenario.rate >= 10_000.0 && scenario.p99 < 10.0,
        "create-job" => scenario.rate >= 2_500.0,
        "deliveries" => scenario.rate >= 2_000.0,
        name if is_uncached(name) => scenario.rate >= 6_000.0 && scenario.p99 < 10.0,
        _ => true,
    };
    target && scenario.errors == 0
}

impl Ceilings {
    /// The ceiling a scenario compares with: select-only for reads, the
    /// insert for writes.
    fn of(&self, scenario: &str) -> Option<f64> {
        match scenario {
            "discovery" | "get-agent" => Some(self.select),
            "create-job" | "deliveries" => Some(self.insert),
            name if is_uncached(name) => Some(self.select),
            _ => None,
        }
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut grouped = String::new();
    for (n, digit) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

impl Results {
    /// The Markdown table: one row per scenario (its rate also as a ratio
    /// of the ceiling), start-up, peak RSS and the two ceilings.
    /// A scenario with errors does not meet its target.
    pub fn table(&self) -> String {
        let mut table = String::from(
            "| scenario | req/s | of ceiling | p50 ms | p99 ms | p99.9 ms | errors | target | met? |\n\
             |---|---:|---:|---:|---:|---:|---:|---|---|\n",
        );
        for scenario in &self.scenarios {
            let (text, met) = (target(&scenario.name), meets(scenario));
            let name = if scenario.name == "deliveries" {
                "deliveries (per s; latency = created → delivered)".to_owned()
            } else {
                scenario.name.clone()
            };
            table.push_str(&format!(
                "| {name} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {text} | {} |\n",
                scenario.rate,
                self.ratio(scenario),
                scenario.p50,
                scenario.p99,
                scenario.p999,
                scenario.errors,
                yes_no(met),
            ));
        }
        if let Some(lag) = self.publish_lag_s {
            let lag = lag.map_or_else(|| "over 300 s".to_owned(), |seconds| format!("{seconds:.1} s"));
            table.push_str(&format!(
                "| create-job's events all published {lag} after its last request | | | | | | | | |\n"
            ));
        }
        if let Some(ms) = self.startup_ms {
            table.push_str(&format!(
                "| start-up (spawn → first /readyz 200) = {ms:.0} ms | | | | | | | < 1 s | {} |\n",
                yes_no(ms < 1000.0)
            ));
        }
        if let Some(mb) = self.rss_mb.iter().copied().reduce(f64::max) {
            table.push_str(&format!(
                "| API peak RSS (VmHWM) = {mb:.1} MB | | | | | | | < 100 MB | {} |\n",
                yes_no(mb < 100.0)
            ));
        }
        if let Some(ceilings) = self.ceilings {
            for (what, tps) in
                [("pgbench -S (select-only)", ceilings.select), ("pgbench one-row INSERT", ceilings.insert)]
            {
                table.push_str(&format!("| ceiling: {what} = {} tps | | | | | | | | |\n", thousands(tps)));
            }
        }
        if let Some(tps) = self.create_statement_tps {
            table.push_str(&format!(
                "| create-job's statement alone (pgbench, xtask/bench/create_job.pgbench) = {} tps | | | | | | | | |\n",
                thousands(tps)
            ));
        }
        table
    }

    /// A scenario's rate as a ratio of its ceiling (`0.42×`); empty without one.
    fn ratio(&self, scenario: &Scenario) -> String {
        self.ceilings
            .and_then(|ceilings| ceilings.of(&scenario.name))
            .map(|ceiling| format!("{:.2}×", scenario.rate / ceiling))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, rate: f64, p99: f64, errors: u64) -> Scenario {
        Scenario { name: name.into(), rate, p50: p99 / 4.0, p99, p999: p99 * 2.0, errors }
    }

    #[test]
    fn the_table_checks_each_target() {
        let results = Results {
            scenarios: vec![
                scenario("discovery", 12_000.0, 4.0, 0),
                scenario("get-agent", 12_000.0, 11.0, 0),
                scenario("create-job", 2_500.0, 30.0, 3),
                scenario("uncached: capabilities=skill-42", 6_000.0, 9.0, 0),
                scenario("uncached: capabilities=translation", 5_999.0, 2.0, 0),
                scenario("deliveries", 1_999.0, 80.0, 0),
            ],
            startup_ms: Some(250.0),
            rss_mb: vec![40.0, 120.5, 60.0],
            ceilings: Some(Ceilings { select: 24_000.0, insert: 5_000.0 }),
            publish_lag_s: Some(Some(2.46)),
            create_statement_tps: Some(3_500.0),
        };
        let table = results.table();
        let columns = |row: &str| row.matches('|').count();
        assert!(table.lines().all(|row| columns(row) == 10), "nine columns in every row:\n{table}");
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 12, "{table}");
        assert!(
            rows[0].starts_with("| discovery | 12000 | 0.50× | 1.00 | 4.00 | 8.00 | 0 |")
                && rows[0].ends_with("| yes |"),
            "reads against the select-only ceiling: {}",
            rows[0]
        );
        assert!(rows[1].ends_with("| **no** |"), "p99 over 10 ms misses: {}", rows[1]);
        assert!(rows[2].contains("| 2500 | 0.50× |"), "writes against the insert ceiling: {}", rows[2]);
        assert!(rows[2].ends_with("| **no** |"), "errors miss the target: {}", rows[2]);
        assert!(rows[3].contains("| 6000 | 0.25× |") && rows[3].contains("≥ 6,000 req/s, p99 < 10 ms"));
        assert!(rows[3].ends_with("| yes |"), "{}", rows[3]);
        assert!(rows[4].ends_with("| **no** |"), "under 6,000 req/s misses: {}", rows[4]);
        assert!(
            rows[5].contains("≥ 2,000 deliveries/s")
                && rows[5].contains("| 0.40× |")
                && rows[5].ends_with("| **no** |")
        );
        assert!(rows[6].starts_with("| create-job's events all published 2.5 s after its last request |"));
        assert!(rows[7].contains("= 250 ms") && rows[7].ends_with("| yes |"));
        assert!(rows[8].contains("= 120.5 MB") && rows[8].ends_with("| **no** |"), "the largest of the runs");
        assert!(rows[9].starts_with("| ceiling: pgbench -S (select-only) = 24,000 tps |"), "{}", rows[9]);
        assert!(rows[10].starts_with("| ceiling: pgbench one-row INSERT = 5,000 tps |"), "{}", rows[10]);
        assert!(rows[11].contains("statement alone (pgbench, xtask/bench/create_job.pgbench) = 3,500 tps"));
    }

    #[test]
    fn without_ceilings_the_ratio_is_empty() {
        let results = Results { scenarios: vec![scenario("discovery", 12_000.0, 4.0, 0)], ..Results::default() };
        let table = results.table();
        assert!(table.contains("| discovery | 12000 |  | 1.00 |"), "{table}");
        assert!(!table.contains("ceiling:"), "{table}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(23_456.7), "23,457");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn pgbench_tps_is_parsed() {
        let output = "number of failed transactions: 0 (0.000%)\nlatency average = 0.066 ms\n\
                      initial connection time = 4.628 ms\ntps = 15137.253878 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(15137.253878));
        assert_eq!(parse_tps("pgbench: error: connection failed"), None);
    }

    #[test]
    fn the_ceiling_database_is_a_sibling_of_the_bench_database() {
        let url = "postgres://postgres@127.0.0.1:5432/agent_registry_bench?sslmode=disable";
        assert_eq!(
            database_url_named(url, CEILING_DATABASE).unwrap(),
            "postgres://postgres@127.0.0.1:5432/agent_registry_bench_ceiling?sslmode=disable"
        );
    }

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
        assert!(parse(&["--fast".into()]).is_err());
        assert!(parse(&["--seconds".into(), "0".into()]).is_err());
        let only = parse(&["--only".into(), "create-job,uncached".into()]).unwrap();
        assert!(only.wants("create-job") && only.wants("uncached: capabilities=skill-42") && !only.wants("discovery"));
        assert!(parse(&["--only".into(), "create-jobs".into()]).is_err(), "a misspelt scenario is refused");
    }
}
