//! The load generator of `cargo xtask bench`: drives one scenario against a
//! running API from a process of its own and prints one JSON line of results
//! on stdout (progress goes to stderr).
//!
//! ```text
//! load <scenario> [--url U] [--seconds S] [--connections N] [--clients C]
//!                 [--jobs K] [--receiver R] [--database-url D] [--query Q]...
//!                 [--original-url O] [--ids-from I]
//! ```
//!
//! Scenarios:
//! - `discovery`: `GET /v1/agents?<query>`, cycling through the `--query` strings given
//!   (e.g. `capabilities=translation&limit=20`), or by default a few varied filters.
//! - `get-agent`: `GET /v1/agents/{id}` over ids found by discovery first (of
//!   `--ids-from`, by default of `--url`, so two services can be read by the same ids).
//! - `create-job`: signed `POST /v1/jobs` (with an `Idempotency-Key`) by `--clients`
//!   pre-registered clients, to agents found by discovery, each body signed per request.
//! - `deliveries`: registers an agent whose endpoint is `--receiver`, creates `--jobs` jobs
//!   to it, then polls `webhook_deliveries` in `--database-url` until all are delivered;
//!   the rate is deliveries / (first create → last delivered), the latencies are each
//!   delivery's `finished_at - created_at`.
//! - `soak`: a long tail of distinct discovery queries with a Zipf-distributed
//!   hot head, agent reads and signed job creations by many clients
//!   ([`soak`]); `soak-hot`, the hot set's queries alone; `soak-tail`, a
//!   pure long tail. Each counts the page cache's hits (`Cache-Status`).
//! - `same-answers`: no load; whether `--original-url` (the FastAPI original)
//!   answers the `--query` discovery pages and their agents as `--url` does
//!   ([`same_answers`]); fails when not.
//!
//! Requests run for `--seconds` on `--connections` keep-alive HTTP/1.1
//! connections, each sending its next request when the last one is answered;
//! every latency is recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde_json::{Value, json};
use shared::error_chain::render;
use shared::progress::{self, Progress};
use shared::signing::{IDEMPOTENCY_KEY, RequestSigner, SignOptions};

mod same_answers;
mod soak;

const USAGE: &str = "usage: load <discovery|get-agent|create-job|deliveries|soak|soak-hot|soak-tail|same-answers> [--url U] \
                     [--seconds S] [--connections N] [--clients C] [--jobs K] [--receiver R] [--database-url D] \
                     [--query Q]... [--original-url O] [--ids-from I]";

/// Discovery filters the `discovery` scenario cycles through without
/// `--query` (the tags are the ones `cargo xtask bench` seeds).
const DISCOVERY_QUERIES: &[&str] = &[
    "capabilities=translation&limit=20",
    "capabilities=summarization&sort=price&limit=20",
    "capabilities=code-review&min_rating=4&limit=20",
    "capabilities=translation,legal&sort=rating&limit=20",
    "capabilities=data-extraction&max_price=20&sort=price&limit=20",
    "capabilities=image-captioning&sort=newest&limit=20",
];

struct Options {
    scenario: String,
    url: String,
    seconds: u64,
    connections: usize,
    clients: usize,
    jobs: usize,
    receiver: String,
    database_url: String,
    /// The `discovery` and `same-answers` query strings (`--query`, repeatable).
    queries: Vec<String>,
    /// The service `same-answers` compares `url` with.
    original_url: Option<String>,
    /// Where `get-agent` finds its ids (default: `url`).
    ids_from: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        scenario: String::new(),
        url: "http://127.0.0.1:8080".into(),
        seconds: 10,
        connections: 32,
        clients: 64,
        jobs: 2000,
        receiver: "http://127.0.0.1:8090".into(),
        database_url: String::new(),
        queries: Vec::new(),
        original_url: None,
        ids_from: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--url" => options.url = value()?,
            "--seconds" => options.seconds = value()?.parse().context("--seconds")?,
            "--connections" => options.connections = value()?.parse().context("--connections")?,
            "--clients" => options.clients = value()?.parse().context("--clients")?,
            "--jobs" => options.jobs = value()?.parse().context("--jobs")?,
            "--receiver" => options.receiver = value()?,
            "--database-url" => options.database_url = value()?,
            "--query" => options.queries.push(value()?),
            "--original-url" => options.original_url = Some(value()?),
            "--ids-from" => options.ids_from = Some(value()?),
            _ if !arg.starts_with('-') && options.scenario.is_empty() => options.scenario = arg,
            _ => bail!("unexpected argument {arg:?}\n{USAGE}"),
        }
    }
    if options.connections == 0 || options.seconds == 0 {
        bail!("--connections and --seconds must be at least 1");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(options.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    if options.scenario == "same-answers" {
        let original = options.original_url.as_deref().context("same-answers needs --original-url")?;
        let queries: Vec<&str> = options.queries.iter().map(String::as_str).collect();
        let comparison = same_answers::compare(&http, &options.url, original, &queries).await?;
        println!("{}", comparison.to_json());
        if comparison.differs() {
            bail!("{original} does not answer as {} does (see first_differences)", options.url);
        }
        return Ok(());
    }
    let report = match options.scenario.as_str() {
        "discovery" => discovery(&http, &options).await?,
        "get-agent" => get_agent(&http, &options).await?,
        "create-job" => create_job(&http, &options).await?,
        "deliveries" => deliveries(&http, &options).await?,
        "soak" | "soak-hot" | "soak-tail" => soak(&http, &options).await?,
        other => bail!("unknown scenario {other:?}\n{USAGE}"),
    };
    println!("{}", report.to_json(&options.scenario));
    Ok(())
}

/// What a scenario measured.
#[derive(Default)]
struct Report {
    /// Completed operations (requests, or deliveries).
    count: usize,
    elapsed: Duration,
    /// Latencies in microseconds, sorted.
    latencies: Vec<u64>,
    errors: usize,
    /// The first error, to say what went wrong.
    first_error: Option<String>,
    /// Answers that said how the page cache served them (`Cache-Status`), and the hits among them.
    cache_lookups: usize,
    cache_hits: usize,
}

impl Report {
    fn percentile_ms(&self, fraction: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((self.latencies.len() as f64 * fraction).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1] as f64 / 1000.0
    }

    fn to_json(&self, scenario: &str) -> Value {
        json!({
            "scenario": scenario,
            "count": self.count,
            "seconds": self.elapsed.as_secs_f64(),
            "rate": self.count as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
            "p50_ms": self.percentile_ms(0.50),
            "p99_ms": self.percentile_ms(0.99),
            "p999_ms": self.percentile_ms(0.999),
            "errors": self.errors,
            "first_error": self.first_error,
            "cache_lookups": self.cache_lookups,
            "cache_hits": self.cache_hits,
        })
    }
}

/// One request of a scenario, built anew for each send (signed requests need
/// a fresh nonce every time).
trait RequestMaker: Send + Sync + 'static {
    fn request(
        &self,
        http: &reqwest::Client,
        n: usize,
    ) -> impl Future<Output = anyhow::Result<reqwest::RequestBuilder>> + Send;
}

/// Runs `maker`'s requests on `connections` tasks for `seconds`.
async fn drive<M: RequestMaker>(http: &reqwest::Client, options: &Options, maker: M) -> anyhow::Result<Report> {
    let maker = Arc::new(maker);
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(options.seconds);
    let progress = report_progress(format!("{} for {} s", options.scenario, options.seconds), counter.clone(), None);
    let mut tasks = Vec::new();
    for _ in 0..options.connections {
        let (http, maker, counter) = (http.clone(), maker.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut report = Report::default();
            let mut latencies = Vec::with_capacity(65536);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let outcome = async {
                    let response = maker.request(&http, n).await?.send().await?;
                    if let Some(cache) = response.headers().get("cache-status") {
                        report.cache_lookups += 1;
                        report.cache_hits += usize::from(cache.as_bytes().ends_with(b"; hit"));
                    }
                    let status = response.status();
                    let body = response.bytes().await?;
                    if !status.is_success() {
                        bail!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
                    }
                    Ok(())
                }
                .await;
                latencies.push(sent.elapsed().as_micros() as u64);
                report.count += 1;
                if let Err(error) = outcome {
                    report.errors += 1;
                    report.first_error.get_or_insert_with(|| render(&*error));
                }
            }
            report.latencies = latencies;
            report
        }));
    }
    let mut total = Report::default();
    for task in tasks {
        let report = task.await?;
        total.count += report.count;
        total.errors += report.errors;
        total.cache_lookups += report.cache_lookups;
        total.cache_hits += report.cache_hits;
        total.latencies.extend(report.latencies);
        if total.first_error.is_none() {
            total.first_error = report.first_error;
        }
    }
    progress.abort();
    total.elapsed = start.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

/// Every second, what `sent` (requests started) has grown by, as progress
/// on stderr when it is a terminal; until aborted.
fn report_progress(what: String, sent: Arc<AtomicUsize>, total: Option<u64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut progress = Progress::new(what, "requests", total, progress::Report::terminal_if_any());
        let mut seen = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = sent.load(Ordering::Relaxed) as u64;
            progress.add(now.saturating_sub(seen));
            seen = now;
        }
    })
}

/// `GET`s of a fixed list of URLs, in turn.
struct Gets {
    urls: Vec<String>,
}

impl RequestMaker for Gets {
    async fn request(&self, http: &reqwest::Client, n: usize) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(http.get(&self.urls[n % self.urls.len()]))
    }
}

async fn discovery(http: &reqwest::Client, options: &Options) -> anyhow::Result<Report> {
    let queries: Vec<&str> = if options.queries.is_empty() {
        DISCOVERY_QUERIES.to_vec()
    } else {
        options.queries.iter().map(String::as_str).collect()
    };
    let urls = queries.iter().map(|query| format!("{}/v1/agents?{query}", options.url)).collect();
    drive(http, options, Gets { urls }).await
}

/// Agents found by discovery: `(id, price)`.
async fn known_agents(http: &reqwest::Client, base_url: &str, wanted: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut agents = Vec::new();
    for query in DISCOVERY_QUERIES.iter().cycle().take(DISCOVERY_QUERIES.len() * 4) {
        let first = format!("{base_url}/v1/agents?{}", query.replace("limit=20", "limit=100"));
        let mut url = first.clone();
        // A few pages of each, following the cursor.
        for _ in 0..4 {
            let page: Value = http.get(&url).send().await?.error_for_status()?.json().await?;
            for agent in page["agents"].as_array().context("a discovery page has agents")? {
                let id = agent["id"].as_str().context("an agent has an id")?.to_owned();
                let price = agent["price"].as_str().context("an agent has a price")?.to_owned();
                if !agents.iter().any(|(known, _)| *known == id) {
                    agents.push((id, price));
                }
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => url = format!("{first}&cursor={cursor}"),
                None => break,
            }
            if agents.len() >= wanted {
                return Ok(agents);
            }
        }
    }
    if agents.is_empty() {
        bail!("discovery found no agents: is the database seeded?");
    }
    Ok(agents)
}

async fn get_agent(http: &reqwest::Client, options: &Options) -> anyhow::Result<Report> {
    let agents = known_agents(http, options.ids_from.as_ref().unwrap_or(&options.url), 1000).await?;
    eprintln!("load: get-agent over {} agent ids", agents.len());
    let urls = agents.iter().map(|(id, _)| format!("{}/v1/agents/{id}", options.url)).collect();
    drive(http, options, Gets { urls }).await
}

/// Registers `count` clients (a fresh key each), concurrently; returns their signers.
async fn register_clients(http: &reqwest::Client, base_url: &str, count: usize) -> anyhow::Result<Vec<RequestSigner>> {
    let mut tasks = Vec::new();
    for n in 0..count {
        let (http, base_url) = (http.clone(), base_url.to_owned());
        tasks.push(tokio::spawn(async move {
            let (seed, public_key) = new_key();
            let signer = RequestSigner::from_seed(&seed, &public_key)?;
            let body = json!({"name": format!("Bench client {n}"), "public_key": public_key});
            let client = send_signed(&http, &signer, "POST", &format!("{base_url}/v1/clients"), &body).await?;
            let id = client["id"].as_str().context("a client registration answers its id")?;
            Ok::<_, anyhow::Error>(signer.with_keyid(id))
        }));
    }
    let mut signers = Vec::new();
    for task in tasks {
        signers.push(task.await??);
    }
    Ok(signers)
}

/// A job creation request: signed by one of the clients, to one of the agents.
struct CreateJob {
    url: String,
    clients: Vec<RequestSigner>,
    agents: Vec<(String, String)>,
    run: u64,
}

impl CreateJob {
    fn body(&self, n: usize) -> Vec<u8> {
        let (agent, price) = &self.agents[n % self.agents.len()];
        let body = json!({
            "agent_id": agent,
            "input": {"text": "Bonjour le monde", "to": "en", "n": n},
            "price": price,
        });
        serde_json::to_vec(&body).expect("JSON serialises")
    }
}

impl RequestMaker for CreateJob {
    async fn request(&self, http: &reqwest::Client, n: usize) -> anyhow::Result<reqwest::RequestBuilder> {
        let body = self.body(n);
        let signer = &self.clients[n % self.clients.len()];
        let mut request = http.post(&self.url).header("content-type", "application/json");
        // Signed, as the API requires of an Idempotency-Key; the signer adds the header.
        let key = format!("bench-{}-{n}", self.run);
        let options = SignOptions { headers: &[(IDEMPOTENCY_KEY, &key)], ..SignOptions::default() };
        for (name, value) in signer.sign_with("POST", &self.url, &body, &options).await? {
            request = request.header(name, value);
        }
        Ok(request.body(body))
    }
}

async fn create_job(http: &reqwest::Client, options: &Options) -> anyhow::Result<Report> {
    let agents = known_agents(http, &options.url, 500).await?;
    let clients = register_clients(http, &options.url, options.clients).await?;
    eprintln!("load: create-job by {} clients to {} agents", clients.len(), agents.len());
    let url = format!("{}/v1/jobs", options.url);
    drive(http, options, CreateJob { url, clients, agents, run: run_id() }).await
}

async fn soak(http: &reqwest::Client, options: &Options) -> anyhow::Result<Report> {
    let draw = soak::Draw::named(&options.scenario)?;
    let (agents, writes) = if matches!(draw, soak::Draw::Zipf(_)) {
        let agents = known_agents(http, &options.url, 1000).await?;
        let clients = register_clients(http, &options.url, soak::SOAK_CLIENTS).await?;
        let url = format!("{}/v1/jobs", options.url);
        let writes = CreateJob { url, clients, agents: agents.clone(), run: run_id() };
        (agents, Some(writes))
    } else {
        (Vec::new(), None)
    };
    eprintln!("load: {} for {} s", options.scenario, options.seconds);
    drive(http, options, soak::Soak::new(&options.url, draw, &agents, writes)?).await
}

async fn deliveries(http: &reqwest::Client, options: &Options) -> anyhow::Result<Report> {
    if options.database_url.is_empty() {
        bail!("deliveries needs --database-url (to count delivered rows)");
    }
    let db = sqlx::PgPool::connect(&options.database_url).await.context("cannot connect to --database-url")?;
    // The agent whose endpoint is the receiver, registered with its own key.
    let (seed, public_key) = new_key();
    let signer = RequestSigner::from_seed(&seed, &public_key)?;
    let registration = json!({
        "name": "Bench sink",
        "description": "Receives the webhooks of cargo xtask bench.",
        "capabilities": ["bench-sink"],
        "endpoint_url": format!("{}/bench-sink", options.receiver),
        "public_key": public_key,
        "price": "1.00",
    });
    let agent = send_signed(http, &signer, "POST", &format!("{}/v1/agents", options.url), &registration).await?;
    let agent_id = agent["id"].as_str().context("the agent registration answers its id")?.to_owned();
    let agent_uuid = agent_id.trim_start_matches("agt_").to_owned();
    let clients = register_clients(http, &options.url, options.clients).await?;
    let maker = Arc::new(CreateJob {
        url: format!("{}/v1/jobs", options.url),
        clients,
        agents: vec![(agent_id, "1.00".into())],
        run: run_id(),
    });
    eprintln!("load: creating {} jobs for {}", options.jobs, options.receiver);

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let progress = report_progress("creating jobs".into(), next.clone(), Some(options.jobs as u64));
    let mut tasks = Vec::new();
    for _ in 0..options.connections {
        let (http, maker, next, jobs) = (http.clone(), maker.clone(), next.clone(), options.jobs);
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= jobs {
                    return failures;
                }
                let sent = async { Ok::<_, anyhow::Error>(maker.request(&http, n).await?.send().await?) }.await;
                match sent {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => failures.push(format!("create: {}", response.status())),
                    Err(error) => failures.push(format!("create: {}", render(&*error))),
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await?);
    }
    progress.abort();
    let created = options.jobs - failures.len();
    eprintln!("load: {created} jobs created in {:.2} s; waiting for their deliveries", start.elapsed().as_secs_f64());

    let give_up = start + Duration::from_secs(options.seconds.max(60) * 3);
    while Instant::now() < give_up {
        // One index probe (the first unfinished row), not a count: counting
        // every row four times a second competed with the pipeline for Postgres.
        let unfinished: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM webhook_deliveries
                            WHERE agent_id = $1::text::uuid AND status IN ('pending', 'dispatched'))",
        )
        .bind(&agent_uuid)
        .fetch_one(&db)
        .await?;
        if !unfinished {
            break;
        }
        // The rate comes from the rows' own times, not from when this sees them.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (delivered, dead): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'dead')
         FROM webhook_deliveries WHERE agent_id = $1::text::uuid",
    )
    .bind(&agent_uuid)
    .fetch_one(&db)
    .await?;
    // First delivery written → last one delivered, by Postgres's clock.
    let span_micros: Option<i64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(finished_at) - min(created_at)) * 1000000)::bigint
         FROM webhook_deliveries WHERE agent_id = $1::text::uuid AND status = 'delivered'",
    )
    .bind(&agent_uuid)
    .fetch_one(&db)
    .await?;
    let elapsed = span_micros.map_or_else(|| start.elapsed(), |micros| Duration::from_micros(micros.max(1) as u64));
    let mut latencies: Vec<i64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM finished_at - created_at) * 1000000)::bigint
         FROM webhook_deliveries WHERE agent_id = $1::text::uuid AND status = 'delivered'",
    )
    .bind(&agent_uuid)
    .fetch_all(&db)
    .await?;
    latencies.sort_unstable();
    let missing = (created as i64 - delivered - dead).max(0) as usize;
    let errors = failures.len() + dead as usize + missing;
    let first_error = failures.into_iter().next().or_else(|| {
        (dead > 0 || missing > 0).then(|| format!("{dead} deliveries dead, {missing} not delivered in time"))
    });
    Ok(Report {
        count: delivered as usize,
        elapsed,
        latencies: latencies.into_iter().map(|micros| micros.max(0) as u64).collect(),
        errors,
        first_error,
        ..Report::default()
    })
}

/// Makes idempotency keys of different runs against one database distinct.
fn run_id() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|now| now.as_millis() as u64).unwrap_or(0)
}

fn new_key() -> ([u8; 32], String) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    (seed, STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes()))
}

async fn send_signed(
    http: &reqwest::Client,
    signer: &RequestSigner,
    method: &str,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(body)?;
    let mut request = http.request(method.parse()?, url).header("content-type", "application/json");
    for (name, value) in signer.sign(method, url, &body).await? {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {url} answered {status}: {answer}");
    }
    Ok(answer)
}
