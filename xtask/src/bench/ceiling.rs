//! What the box itself can do, measured with `pgbench` while no service
//! runs (or while they idle): the select-only and one-row insert rates (on
//! a database of its own, dropped at the end of the run, or at the next
//! run's start after a failure), and create-job's own statement alone.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};
use xshell::cmd;

use super::cpu::{exists, processes_holding};
use super::database::{create_ceiling_insert_table, create_pick_tables, drop_database, recreate_database};
use super::report::{Ceiling, Ceilings, CreateStatement};
use super::{CEILING_DATABASE, CEILING_INSERT, Options, wal};
use crate::runner::Runner;

/// The script of the one-row insert, in the bench's directory.
const CEILING_INSERT_SCRIPT: &str = "ceiling_insert.sql";

/// The box's ceiling on a database of its own (`ceiling_url`, dropped by
/// [`drop_ceiling_database`] at the end of the run): `pgbench -S`
/// (select-only) and a one-row `INSERT` script, on as many connections as
/// the scenarios. `None` in a dry run.
pub(super) fn measure_ceilings(
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
    let select = measure(runner, Ceiling::Select, ceiling_url, options, bench_dir)?;
    let script = bench_dir.join(CEILING_INSERT_SCRIPT);
    runner.step(&format!("create the table ceiling_insert; write {}: {CEILING_INSERT}", script.display()), || {
        std::fs::create_dir_all(bench_dir)?;
        std::fs::write(&script, format!("{CEILING_INSERT}\n"))?;
        runtime.block_on(create_ceiling_insert_table(ceiling_url))
    })?;
    let insert = measure(runner, Ceiling::Insert, ceiling_url, options, bench_dir)?;
    Ok(select.zip(insert).map(|(select, insert)| Ceilings { select, insert }))
}

/// One of the ceilings again, on the database [`measure_ceilings`] made:
/// taken just before each scenario held to it (the services idle), as the
/// box's speed drifts within a run.
pub(super) fn measure(
    runner: &Runner,
    ceiling: Ceiling,
    ceiling_url: &str,
    options: &Options,
    bench_dir: &Path,
) -> anyhow::Result<Option<f64>> {
    let sh = &runner.sh;
    let (clients, seconds) = (options.connections.to_string(), options.seconds.to_string());
    let tps = match ceiling {
        Ceiling::Select => {
            run_pgbench(runner, cmd!(sh, "pgbench -S -M prepared -c {clients} -j 2 -T {seconds} {ceiling_url}"))?
        }
        Ceiling::Insert => {
            let script = bench_dir.join(CEILING_INSERT_SCRIPT);
            run_pgbench(
                runner,
                cmd!(sh, "pgbench -n -f {script} -M prepared -c {clients} -j 2 -T {seconds} {ceiling_url}"),
            )?
        }
    };
    if !runner.dry_run {
        wait_for_backends_to_end();
    }
    Ok(tps)
}

/// Until pgbench's backends have ended and been reaped: one still ending
/// when a scenario's first CPU sample is read is missed by it, and then
/// counted, with all it used, among the postmaster's reaped children in
/// that scenario's Postgres. (A zombie's command line is empty, so the
/// backends are found first and then waited for by pid.)
fn wait_for_backends_to_end() {
    let backends = processes_holding(CEILING_DATABASE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while backends.iter().any(|&pid| exists(pid)) {
        if Instant::now() > deadline {
            eprintln!("warning: pgbench's backends on {CEILING_DATABASE} had not ended 10 s after it");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drops the database of the ceilings, once the run no longer measures them.
pub(super) fn drop_ceiling_database(
    runner: &Runner,
    runtime: &tokio::runtime::Runtime,
    ceiling_url: &str,
) -> anyhow::Result<()> {
    runner.step(&format!("drop the database {CEILING_DATABASE}"), || runtime.block_on(drop_database(ceiling_url)))
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

/// create-job's own statement run by `pgbench` alone (`xtask/bench/create_job.pgbench`,
/// on the bench database, with no service running), for comparison with the
/// create-job scenario; its events are then marked published, so the next
/// runs do not publish them. It starts right after a checkpoint, so its
/// WAL per job counts the full-page images of a fresh checkpoint interval,
/// the most there are. `None` in a dry run.
pub(super) fn measure_create_statement(
    runner: &Runner,
    runtime: &tokio::runtime::Runtime,
    database_url: &str,
    options: &Options,
) -> anyhow::Result<Option<CreateStatement>> {
    let sh = &runner.sh;
    let (mut agents, mut clients) = (0, 0);
    runner.step("pick 500 agents and the load's clients for pgbench", || {
        (agents, clients) = runtime.block_on(create_pick_tables(database_url))?;
        Ok(())
    })?;
    let wal = wal::Source { runtime, database_url };
    let mut before = None;
    runner.step("count the jobs, CHECKPOINT, note where the WAL ends", || {
        let jobs = runtime.block_on(count_jobs(database_url))?;
        before = Some((wal.sample(true)?, jobs));
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
    let mut after = None;
    runner.step("note where the WAL ends, count the jobs again", || {
        let end = wal.sample(false)?;
        after = Some((end, runtime.block_on(count_jobs(database_url))?));
        Ok(())
    })?;
    runner.step("mark pgbench's job.created events published (nothing to publish)", || {
        runtime.block_on(async {
            let mut db = PgConnection::connect(database_url).await?;
            db.execute("UPDATE events SET published_at = now() WHERE published_at IS NULL").await?;
            anyhow::Ok(())
        })
    })?;
    let (Some(tps), Some((wal_before, jobs_before)), Some((wal_after, jobs_after))) = (tps, before, after) else {
        return Ok(None);
    };
    let wal = wal.cost(&wal_before, &wal_after, (jobs_after - jobs_before) as f64)?;
    Ok(Some(CreateStatement { tps, wal }))
}

async fn count_jobs(database_url: &str) -> anyhow::Result<i64> {
    let mut db = PgConnection::connect(database_url).await?;
    Ok(sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&mut db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_tps_is_parsed() {
        let output = "number of failed transactions: 0 (0.000%)\nlatency average = 0.066 ms\n\
                      initial connection time = 4.628 ms\ntps = 15137.253878 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(15137.253878));
        assert_eq!(parse_tps("pgbench: error: connection failed"), None);
    }
}
