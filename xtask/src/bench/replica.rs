//! The replica run (`--only replica`): discovery served by a streaming
//! replica. A throwaway primary and its replica ([`pg_cluster::Cluster`]:
//! the system Postgres holds every other database and admits no base
//! backup), the bench's seed on the primary (whose `VACUUM ANALYZE` the
//! replica gets by replay, with the data), an API with `DATABASE_URL` = the
//! primary, `DATABASE_READ_URL` = the replica and the page cache off, and
//! the discovery shapes of [`SHAPES`] driven one at a time. Its report: per
//! shape, the rate, the p99 and the CPU per page of the API, the primary and
//! the replica, and what `/readyz` said of the replica meanwhile (polled
//! every [`POLL_EVERY`]). The cluster is stopped and removed at the end,
//! also on error.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pg_cluster::{Cluster, Server};
use sqlx::{Connection, PgConnection};
use xshell::cmd;

use super::cpu::Group;
use super::database::{recreate_database, seed};
use super::report::{Ceilings, Scenario};
use super::stack::{Stack, http_body};
use super::{API_PORT, Options, UNCACHED_SHAPES, run_load, target_dir};
use crate::runner::Runner;

/// The shapes driven on the replica: a tag, two tags by rating, a word within a tag.
const SHAPES: [&str; 3] = [UNCACHED_SHAPES[0], UNCACHED_SHAPES[2], UNCACHED_SHAPES[4]];
const DATABASE: &str = "agent_registry_bench";
/// How often `/readyz` is read while a shape runs (it answers from a cache at most a second old).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// One shape's figures and what `/readyz` said meanwhile.
pub struct Shape {
    pub scenario: Scenario,
    pub seen: ReplicaSeen,
}

/// The replica run's figures.
pub struct ReplicaRun {
    pub shapes: Vec<Shape>,
    /// From the seed's end on the primary until the replica had replayed it.
    pub replayed_after_s: f64,
    /// The API's peak RSS (`VmHWM`) in this run.
    pub api_peak_rss_mb: f64,
}

/// Everything the replica run does; `None` in a dry run. `api` is the API
/// binary to run (`--api`, or the one built), `api_env` its environment for
/// a database URL.
pub(super) fn run(
    runner: &Runner,
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    stack: &mut Stack,
    api: &Path,
    api_env: &dyn Fn(&str) -> Vec<(String, String)>,
) -> anyhow::Result<Option<ReplicaRun>> {
    let sh = &runner.sh;
    let load = target_dir(&runner.root).join("release").join("load");
    let bench_dir = runner.path("target/bench");
    let mut cluster = None;
    runner.step(
        "start a throwaway primary (initdb) and its streaming replica (pg_basebackup -R), each on a free port",
        || {
            let started = Cluster::start_primary()?;
            started.start_replica_from_backup()?;
            cluster = Some(started);
            Ok(())
        },
    )?;
    let url = |server: Server| {
        cluster.as_ref().map_or_else(|| format!("<the {server:?}'s URL>"), |cluster| cluster.url(server, DATABASE))
    };
    let (primary_url, replica_url) = (url(Server::Primary), url(Server::Replica));
    runner.step(&format!("create the database {DATABASE} on the primary"), || {
        runtime.block_on(recreate_database(&primary_url))
    })?;
    runner.run(cmd!(sh, "{api} migrate").envs(api_env(&primary_url)))?;
    let agents = options.agents;
    runner.step(&format!("seed {agents} agents on the primary, as the other runs' database"), || {
        runtime.block_on(seed(&primary_url, agents))
    })?;
    let mut replayed_after_s = 0.0;
    runner.step("wait until the replica has replayed the primary's WAL as of now (at most 5 minutes)", || {
        replayed_after_s = runtime.block_on(wait_for_replay(&primary_url, &replica_url))?.as_secs_f64();
        Ok(())
    })?;

    let mut env = api_env(&primary_url);
    env.push(("DATABASE_READ_URL".into(), replica_url.clone()));
    env.push(("PUBLIC_READ_CACHE_MS".into(), "0".into()));
    stack.spawn("api-replica", API_PORT, api, &["serve"], &env, &bench_dir)?;
    runner.step("wait for the API, then until its /readyz says the replica is in use", || {
        stack.wait_ready("api-replica", API_PORT, "/readyz", Duration::from_millis(20))?;
        wait_until_in_use()
    })?;
    let postmasters = match &cluster {
        Some(cluster) => vec![
            (Group::Primary, cluster.postmaster_pid(Server::Primary)?),
            (Group::Replica, cluster.postmaster_pid(Server::Replica)?),
        ],
        None => Vec::new(),
    };
    let api_url = format!("http://127.0.0.1:{API_PORT}");
    let (seconds, connections) = (options.seconds.to_string(), options.connections.to_string());
    let mut shapes = Vec::new();
    for shape in SHAPES {
        let query = format!("{shape}&limit=20");
        let command = cmd!(
            sh,
            "{load} discovery --url {api_url} --seconds {seconds} --connections {connections} --query {query}"
        );
        let watcher = Watcher::start();
        let scenario = run_load(runner, stack, &format!("replica: {shape}"), command, &postmasters, None)?;
        let seen = watcher.finish();
        shapes.extend(scenario.map(|scenario| Shape { scenario, seen }));
    }
    let mut api_peak_rss_mb = 0.0;
    runner.step("read that API's peak RSS, stop it; then stop and remove the cluster", || {
        api_peak_rss_mb = stack.peak_rss_then_stop("api-replica")?;
        Ok(())
    })?;
    drop(cluster);
    Ok((!runner.dry_run).then_some(ReplicaRun { shapes, replayed_after_s, api_peak_rss_mb }))
}

/// How long until the replica replayed the primary's WAL up to where it was on call.
async fn wait_for_replay(primary_url: &str, replica_url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut primary = PgConnection::connect(primary_url).await.context("cannot connect to the primary")?;
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(&mut primary).await?;
    let mut replica = PgConnection::connect(replica_url).await.context("cannot connect to the replica")?;
    while started.elapsed() < Duration::from_secs(300) {
        let replayed: bool = sqlx::query_scalar("SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)")
            .bind(&written)
            .fetch_one(&mut replica)
            .await?;
        if replayed {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the replica had not replayed the primary's WAL up to {written} after 5 minutes")
}

/// Waits (30 s at most) until the API's `/readyz` reports the replica `in_use`:
/// until then, public reads run on the primary.
fn wait_until_in_use() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = ReplicaSeen::default();
    while Instant::now() < deadline {
        if let Some(readiness) = http_body(API_PORT, "/readyz") {
            seen.record(&readiness);
            if seen.in_use > 0 {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the API's /readyz never said the replica is in use within 30 s (it said: {})", seen.statuses())
}

/// What `/readyz` said of the replica over a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaSeen {
    /// Answers that reported the replica.
    pub polls: u32,
    /// Of those, the ones where it was in use (public reads there).
    pub in_use: u32,
    /// Every other status reported, once each.
    pub others: BTreeSet<String>,
    pub last_lag_ms: Option<u64>,
    pub max_lag_ms: Option<u64>,
}

impl ReplicaSeen {
    /// Counts one `/readyz` answer; one that does not report the replica counts nothing.
    fn record(&mut self, readiness: &str) {
        let Ok(readiness) = serde_json::from_str::<serde_json::Value>(readiness) else { return };
        let replica = &readiness["replica"];
        let Some(status) = replica["status"].as_str() else { return };
        self.polls += 1;
        if status == "in_use" {
            self.in_use += 1;
        } else {
            self.others.insert(status.to_owned());
        }
        if let Some(lag) = replica["lag_ms"].as_u64() {
            self.last_lag_ms = Some(lag);
            self.max_lag_ms = Some(self.max_lag_ms.map_or(lag, |max| max.max(lag)));
        }
    }

    /// `in_use 39 of 40 (also lagging)`.
    fn statuses(&self) -> String {
        let others: Vec<&str> = self.others.iter().map(String::as_str).collect();
        let also = if others.is_empty() { String::new() } else { format!(" (also {})", others.join(", ")) };
        format!("in_use {} of {}{also}", self.in_use, self.polls)
    }

    /// `0 ms; 12 ms`: the last lag reported, and the largest.
    fn lags(&self) -> String {
        let ms = |lag: Option<u64>| lag.map_or_else(|| "unknown".to_owned(), |ms| format!("{ms} ms"));
        format!("{}; {}", ms(self.last_lag_ms), ms(self.max_lag_ms))
    }
}

/// Reads the API's `/readyz` every [`POLL_EVERY`] on a thread of its own
/// until [`Watcher::finish`].
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ReplicaSeen>,
}

impl Watcher {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = ReplicaSeen::default();
            while !stopped.load(Ordering::Relaxed) {
                if let Some(readiness) = http_body(API_PORT, "/readyz") {
                    seen.record(&readiness);
                }
                std::thread::sleep(POLL_EVERY);
            }
            seen
        });
        Self { stop, thread }
    }

    fn finish(self) -> ReplicaSeen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The replica run's table: per shape, the rate (also of `pgbench -S`), the
/// p99 and the CPU per page by whom, and what `/readyz` said.
pub(super) fn table(run: &ReplicaRun, ceilings: Option<Ceilings>) -> String {
    let mut table = String::from(
        "| on the replica, cache off | req/s | of pgbench -S | p99 ms | errors | CPU ms per page | API | primary | replica | the rest (Redis, load generator, kernel) | /readyz: replica status | lag: last; largest |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for Shape { scenario, seen } in &run.shapes {
        let ratio = ceilings.map(|ceilings| format!("{:.2}×", scenario.rate / ceilings.select)).unwrap_or_default();
        let (machine, [api, primary, replica]) = match &scenario.cost {
            Some(cost) => (
                cost.machine_ms_per_op,
                [Group::Api, Group::Primary, Group::Replica].map(|group| cost.group_ms_per_op[&group]),
            ),
            None => (0.0, [0.0; 3]),
        };
        let rest = (machine - api - primary - replica).max(0.0);
        table.push_str(&format!(
            "| {} | {:.0} | {ratio} | {:.2} | {} | {machine:.3} | {api:.3} | {primary:.3} | {replica:.3} | {rest:.3} | {} | {} |\n",
            scenario.name.trim_start_matches("replica: "),
            scenario.rate,
            scenario.p99,
            scenario.errors,
            seen.statuses(),
            seen.lags(),
        ));
    }
    table.push_str(&format!(
        "\nThe replica had replayed the seed {:.1} s after it ended; the API's peak RSS (VmHWM) in this run: {:.1} MB.\n",
        run.replayed_after_s, run.api_peak_rss_mb
    ));
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cpu::Cost;

    #[test]
    fn readiness_answers_are_counted() {
        let mut seen = ReplicaSeen::default();
        seen.record(r#"{"status":"ready","postgres":"ok","redis":"ok","replica":{"status":"starting"}}"#);
        seen.record(r#"{"status":"ready","postgres":"ok","redis":"ok","replica":{"status":"in_use","lag_ms":0}}"#);
        seen.record(r#"{"status":"ready","replica":{"status":"in_use","lag_ms":12}}"#);
        seen.record(r#"{"status":"ready","replica":{"status":"lagging","lag_ms":6200}}"#);
        seen.record(r#"{"status":"ready","replica":{"status":"in_use","lag_ms":3}}"#);
        seen.record(r#"{"status":"ready","postgres":"ok","redis":"ok"}"#);
        seen.record("<html>");
        assert_eq!((seen.polls, seen.in_use), (5, 3), "answers without the replica count nothing");
        assert_eq!((seen.last_lag_ms, seen.max_lag_ms), (Some(3), Some(6200)));
        assert_eq!(seen.statuses(), "in_use 3 of 5 (also lagging, starting)");
        assert_eq!(seen.lags(), "3 ms; 6200 ms");
        assert_eq!(ReplicaSeen::default().lags(), "unknown; unknown");
    }

    #[test]
    fn the_table_splits_the_cpu_between_the_api_the_primary_and_the_replica() {
        let cost = Cost {
            cores: 2.0,
            busy_share: 0.99,
            machine_ms_per_op: 0.4,
            group_ms_per_op: Group::ALL.into_iter().zip([0.15, 0.001, 0.02, 0.0, 0.04, 0.002, 0.17]).collect(),
        };
        let scenario = Scenario {
            name: "replica: capabilities=translation".into(),
            rate: 5_000.0,
            p50: 3.0,
            p99: 9.5,
            p999: 14.0,
            errors: 0,
            cost: Some(cost),
            wal: None,
            cache_hit_rate: None,
        };
        let seen =
            ReplicaSeen { polls: 40, in_use: 40, last_lag_ms: Some(0), max_lag_ms: Some(4), ..Default::default() };
        let run = ReplicaRun { shapes: vec![Shape { scenario, seen }], replayed_after_s: 1.5, api_peak_rss_mb: 48.0 };
        let table = table(&run, Some(Ceilings { select: 25_000.0, insert: 9_000.0 }));
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows[0].matches('|').count(), rows[1].matches('|').count(), "{table}");
        assert_eq!(rows[0].matches('|').count(), rows[2].matches('|').count(), "{table}");
        assert_eq!(
            rows[2],
            "| capabilities=translation | 5000 | 0.20× | 9.50 | 0 | 0.400 | 0.150 | 0.002 | 0.170 | 0.078 | in_use 40 of 40 | 0 ms; 4 ms |",
            "the rest = machine - API - primary - replica"
        );
        assert!(table.contains("replayed the seed 1.5 s after it ended") && table.contains("48.0 MB"), "{table}");
    }
}
