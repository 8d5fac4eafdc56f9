//! `--only original`: the API beside the FastAPI service it replaces
//! (`xtask/bench/fastapi_original/`, rebuilt from its documented design:
//! FastAPI, asyncpg, Redis rate limits, uvicorn with 2 workers), on the same
//! database, both with no page cache. First `load same-answers` checks that
//! the original answers every traffic's pages and agents as the API does;
//! then each traffic (every uncached discovery shape, and an agent read by
//! the same ids) is driven at the API and at the original back to back,
//! by the same load generator; the table puts them side by side, with the
//! CPU each request cost the serving processes (uvicorn's master and
//! workers for the original).

use std::path::Path;
use std::time::Duration;

use xshell::cmd;

use super::cpu::{Group, ORIGINAL_SERVICE};
use super::report::Scenario;
use super::stack::Stack;
use super::{Options, UNCACHED_SHAPES, run_load, target_dir};
use crate::runner::Runner;

const ORIGINAL_PORT: u16 = 18082;
/// The original's deployment ran uvicorn with two workers.
const WORKERS: &str = "2";
/// What the side-by-side run must show (the bar): at least this
/// many times the original's throughput, with a lower p99.
const TARGET_RATIO: f64 = 10.0;
const APP_DIR: &str = "xtask/bench/fastapi_original";

/// One traffic, at both services.
pub(super) struct Pair {
    traffic: String,
    ours: Scenario,
    original: Scenario,
}

/// Where the API without page cache listens and what the original needs.
pub(super) struct Setup<'a> {
    pub api_url: &'a str,
    /// The FastAPI original's virtualenv.
    pub venv: &'a Path,
    pub database_url: &'a str,
    pub redis_url: &'a str,
    pub redis_key_prefix: &'a str,
}

/// Starts the original, checks it answers as the API does, drives each
/// traffic at both and stops it; the pairs measured (none in a dry run).
/// Every run also goes to `scenarios`, for the CPU table.
pub(super) fn run(
    runner: &Runner,
    stack: &mut Stack,
    options: &Options,
    setup: &Setup<'_>,
    bench_dir: &Path,
    scenarios: &mut Vec<Scenario>,
) -> anyhow::Result<Vec<Pair>> {
    let sh = &runner.sh;
    let uvicorn = setup.venv.join("bin/uvicorn");
    let app_dir = runner.path(APP_DIR);
    let app_dir = app_dir.to_str().unwrap_or(APP_DIR);
    let port = ORIGINAL_PORT.to_string();
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", setup.database_url.to_owned()),
        ("REDIS_URL", setup.redis_url.to_owned()),
        ("REDIS_KEY_PREFIX", format!("{}original:", setup.redis_key_prefix)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    // As the API's in the bench: the buckets are still taken, never empty.
    for class in ["DISCOVERY", "READ"] {
        env.push((format!("RATE_LIMIT_{class}_CAPACITY"), "1000000000".into()));
        env.push((format!("RATE_LIMIT_{class}_REFILL_PER_MIN"), "1000000000".into()));
    }
    // No access log, warnings only: as the API runs here (RUST_LOG=warn).
    let args = [
        "main:app",
        "--app-dir",
        app_dir,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--workers",
        WORKERS,
        "--no-access-log",
        "--log-level",
        "warning",
    ];
    stack.spawn(ORIGINAL_SERVICE, ORIGINAL_PORT, &uvicorn, &args, &env, bench_dir)?;
    runner.step("wait for the FastAPI original (uvicorn, 2 workers)", || {
        stack.wait_ready(ORIGINAL_SERVICE, ORIGINAL_PORT, "/readyz", Duration::from_millis(50))
    })?;

    let load = target_dir(&runner.root).join("release/load");
    let (ours, original) = (setup.api_url, format!("http://127.0.0.1:{ORIGINAL_PORT}"));
    let queries: Vec<String> = UNCACHED_SHAPES.iter().map(|shape| format!("{shape}&limit=20")).collect();
    let query_args: Vec<&str> = queries.iter().flat_map(|query| ["--query", query.as_str()]).collect();
    runner.run(cmd!(sh, "{load} same-answers --url {ours} --original-url {original} {query_args...}"))?;

    let (seconds, connections) = (options.seconds.to_string(), options.connections.to_string());
    let mut pairs = Vec::new();
    let traffics = queries
        .iter()
        .map(|query| (format!("discovery: {query}"), Some(query)))
        .chain([("agent read (GET /v1/agents/{id}, 1,000 ids)".to_owned(), None)]);
    for (traffic, query) in traffics {
        let mut measured = Vec::new();
        for (who, url) in [("ours", ours), ("FastAPI original", original.as_str())] {
            let command = match query {
                Some(query) => cmd!(
                    sh,
                    "{load} discovery --url {url} --seconds {seconds} --connections {connections} --query {query}"
                ),
                None => cmd!(
                    sh,
                    "{load} get-agent --url {url} --ids-from {ours} --seconds {seconds} --connections {connections}"
                ),
            };
            measured.extend(run_load(runner, stack, &format!("side by side, {who}: {traffic}"), command, &[], None)?);
        }
        scenarios.extend(measured.iter().cloned());
        // Both measured, unless this is a dry run.
        if let Ok([ours, original]) = <[Scenario; 2]>::try_from(measured) {
            pairs.push(Pair { traffic, ours, original });
        }
    }
    runner.step("stop the FastAPI original", || {
        stack.stop(ORIGINAL_SERVICE);
        Ok(())
    })?;
    Ok(pairs)
}

/// The side-by-side table: each traffic's rate, p99 and serving CPU per
/// request at both, the ratios, and whether the API reaches the bar;
/// empty without pairs.
pub(super) fn table(pairs: &[Pair]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut table = String::from(
        "| side by side (no page cache) | ours req/s | ours p99 ms | ours API CPU ms/req | original req/s | original p99 ms | original CPU ms/req (uvicorn + workers) | × req/s | × p99 | × CPU/req | ≥ 10× req/s, lower p99? |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for Pair { traffic, ours, original } in pairs {
        let cpu = |scenario: &Scenario, group: Group| scenario.cost.as_ref().map(|cost| cost.group_ms_per_op[&group]);
        let (our_cpu, their_cpu) = (cpu(ours, Group::Api), cpu(original, Group::Original));
        let shown = |ms: Option<f64>| ms.map(|ms| format!("{ms:.3}")).unwrap_or_default();
        let ratio = |numerator: f64, denominator: f64| {
            if denominator > 0.0 { format!("{:.1}×", numerator / denominator) } else { String::new() }
        };
        let cpu_ratio = match (our_cpu, their_cpu) {
            (Some(ours), Some(theirs)) => ratio(theirs, ours),
            _ => String::new(),
        };
        let verdict = if ours.errors + original.errors > 0 {
            format!("**no** ({} errors ours, {} theirs)", ours.errors, original.errors)
        } else if ours.rate >= TARGET_RATIO * original.rate && ours.p99 < original.p99 {
            "yes".to_owned()
        } else {
            "**no**".to_owned()
        };
        table.push_str(&format!(
            "| {traffic} | {:.0} | {:.2} | {} | {:.0} | {:.2} | {} | {} | {} | {cpu_ratio} | {verdict} |\n",
            ours.rate,
            ours.p99,
            shown(our_cpu),
            original.rate,
            original.p99,
            shown(their_cpu),
            ratio(ours.rate, original.rate),
            ratio(original.p99, ours.p99),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cpu::Cost;

    fn measured(name: &str, rate: f64, p99: f64, errors: u64, group: Group, cpu_ms: f64) -> Scenario {
        let cost = Cost {
            cores: 2.0,
            busy_share: 0.99,
            machine_ms_per_op: cpu_ms * 2.0,
            group_ms_per_op: Group::ALL
                .into_iter()
                .map(|each| (each, if each == group { cpu_ms } else { 0.0 }))
                .collect(),
        };
        Scenario {
            name: name.into(),
            rate,
            p50: p99 / 3.0,
            p99,
            p999: p99 * 2.0,
            errors,
            cost: Some(cost),
            wal: None,
            cache_hit_rate: None,
        }
    }

    #[test]
    fn the_table_gives_the_ratios_and_holds_the_api_to_ten_times_with_a_lower_p99() {
        let pair = |traffic: &str, ours: Scenario, original: Scenario| Pair { traffic: traffic.into(), ours, original };
        let pairs = [
            pair(
                "a",
                measured("o", 8_000.0, 6.0, 0, Group::Api, 0.1),
                measured("f", 500.0, 90.0, 0, Group::Original, 3.2),
            ),
            pair(
                "b",
                measured("o", 8_000.0, 6.0, 0, Group::Api, 0.1),
                measured("f", 900.0, 50.0, 0, Group::Original, 1.8),
            ),
            pair(
                "c",
                measured("o", 8_000.0, 60.0, 0, Group::Api, 0.1),
                measured("f", 500.0, 50.0, 0, Group::Original, 3.0),
            ),
            pair(
                "d",
                measured("o", 8_000.0, 6.0, 2, Group::Api, 0.1),
                measured("f", 500.0, 90.0, 0, Group::Original, 3.0),
            ),
        ];
        let table = table(&pairs);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 6, "{table}");
        assert!(rows.iter().all(|row| row.matches('|').count() == 12), "eleven columns in every row:\n{table}");
        assert_eq!(rows[2], "| a | 8000 | 6.00 | 0.100 | 500 | 90.00 | 3.200 | 16.0× | 15.0× | 32.0× | yes |");
        assert!(
            rows[3].starts_with("| b |") && rows[3].contains("| 8.9× |") && rows[3].ends_with("| **no** |"),
            "under 10×: {}",
            rows[3]
        );
        assert!(rows[4].ends_with("| **no** |"), "a higher p99 misses: {}", rows[4]);
        assert!(rows[5].ends_with("| **no** (2 errors ours, 0 theirs) |"), "{}", rows[5]);
        assert_eq!(super::table(&[]), "", "nothing measured, no table");
    }
}
