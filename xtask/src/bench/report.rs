//! The bench's figures and the Markdown table that compares them with the
//! targets and with the box's ceiling, and the one that says where each
//! scenario's CPU went.

use std::collections::HashMap;

use super::Options;
use super::cpu::{Cost, Group};
use super::wal;
use crate::runner::Runner;

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
    /// The CPU it cost, by process group (`None` where not measured).
    pub cost: Option<Cost>,
    /// The WAL it made Postgres write (`None` where not measured).
    pub wal: Option<wal::Cost>,
    /// Of the answers that said how the page cache served them, the share of hits.
    pub cache_hit_rate: Option<f64>,
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
    /// Peak RSS (`VmHWM`) of each API run, after the run's name.
    pub rss_mb: Vec<(&'static str, f64)>,
    pub ceilings: Option<Ceilings>,
    /// Each scenario's own ceiling, by its name: the one its target names,
    /// measured again just before the round shown ran. The box's speed
    /// drifts by a third within minutes, so a share of the run's first
    /// measure says more about the minute than about the scenario.
    pub ceilings_beside: HashMap<String, f64>,
    /// Every round of a scenario measured more than once (`--repeat`), in
    /// the order they ran, by its name.
    pub rounds: HashMap<String, Vec<RoundOutcome>>,
    /// After create-job ended, until its events were all published
    /// (`Some(None)`: not within the wait).
    pub publish_lag_s: Option<Option<f64>>,
    /// create-job's statement alone, by pgbench.
    pub create_statement: Option<CreateStatement>,
}

/// create-job's statement run by pgbench alone, from a checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CreateStatement {
    pub tps: f64,
    /// The whole server's WAL over the run, per job stored.
    pub wal: wal::Cost,
}

/// One measured round of a scenario: its figures, and the ceiling its
/// target names, measured just before it (`None` without a target; a dry
/// run measures no rounds).
pub struct Round {
    pub scenario: Scenario,
    pub ceiling: Option<f64>,
}

/// How one of a scenario's rounds went against its own ceiling.
#[derive(Clone, Copy, Debug)]
pub struct RoundOutcome {
    ceiling: Option<f64>,
    share: Option<f64>,
    met: Option<bool>,
}

pub(super) fn is_uncached(scenario: &str) -> bool {
    scenario.starts_with("uncached:")
}

/// Which of the box's two ceilings a scenario is held against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Ceiling {
    /// `pgbench -S`: reads.
    Select,
    /// pgbench's one-row insert: writes.
    Insert,
}

/// What a scenario is held to (docs/PERFORMANCE.md): a share of that run's
/// own ceiling, so a slower or faster box gives the same verdict, and for
/// reads a p99 bound.
#[derive(Clone, Copy, Debug)]
struct Target {
    ceiling: Ceiling,
    share: f64,
    p99_ms: Option<f64>,
}

impl Target {
    fn of(scenario: &str) -> Option<Target> {
        let (ceiling, share, p99_ms) = match scenario {
            "discovery" | "get-agent" => (Ceiling::Select, 0.30, Some(10.0)),
            name if is_uncached(name) => (Ceiling::Select, 0.15, Some(10.0)),
            "create-job" => (Ceiling::Insert, 0.10, None),
            "deliveries" => (Ceiling::Insert, 0.06, None),
            _ => return None,
        };
        Some(Target { ceiling, share, p99_ms })
    }

    /// The rate this target asks for against `ceiling` (tps).
    fn rate(&self, ceiling: f64) -> f64 {
        self.share * ceiling
    }

    /// As the table shows it: `≥ 0.15× of pgbench -S (9,000 req/s here), p99 < 10 ms`.
    fn text(&self, scenario: &str, ceiling: Option<f64>) -> String {
        let of = self.ceiling.label();
        let unit = if scenario == "deliveries" { "deliveries/s" } else { "req/s" };
        let here =
            ceiling.map(|ceiling| format!(" ({} {unit} here)", thousands(self.rate(ceiling)))).unwrap_or_default();
        let p99 = self.p99_ms.map(|bound| format!(", p99 < {bound} ms")).unwrap_or_default();
        format!("≥ {:.2}× of {of}{here}{p99}", self.share)
    }
}

/// Which ceiling the scenario `name` is held against, if any.
pub(super) fn ceiling_of(name: &str) -> Option<Ceiling> {
    Target::of(name).map(|target| target.ceiling)
}

/// Whether a scenario meets its target against `ceiling`: `None` when it
/// has one but no ceiling was measured to judge it by. One with errors does not.
fn meets(scenario: &Scenario, ceiling: Option<f64>) -> Option<bool> {
    let Some(target) = Target::of(&scenario.name) else { return Some(scenario.errors == 0) };
    let rate = target.rate(ceiling?);
    let p99 = target.p99_ms.is_none_or(|bound| scenario.p99 < bound);
    Some(scenario.rate >= rate && p99 && scenario.errors == 0)
}

impl Ceiling {
    fn label(self) -> &'static str {
        match self {
            Self::Select => "pgbench -S",
            Self::Insert => "the insert",
        }
    }
}

impl Ceilings {
    fn of(&self, ceiling: Ceiling) -> f64 {
        match ceiling {
            Ceiling::Select => self.select,
            Ceiling::Insert => self.insert,
        }
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    // Rates and counts: never negative; `as` saturates.
    shared::progress::grouped(value.round() as u64)
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

/// `yes`, `**no**`, or `?` when there was nothing to judge by.
fn verdict(met: Option<bool>) -> &'static str {
    met.map_or("?", yes_no)
}

impl Results {
    /// The ceiling `scenario`'s target names: the one measured beside it
    /// (every scenario with a target has one in a real run), or else the
    /// run's first (dry runs, and a scenario added without its own).
    fn ceiling(&self, scenario: &Scenario, target: &Target) -> Option<f64> {
        let first = self.ceilings.map(|ceilings| ceilings.of(target.ceiling));
        self.ceilings_beside.get(&scenario.name).copied().or(first)
    }

    /// Adds a scenario measured in `rounds`, each against the ceiling
    /// measured just before it. The table shows the round whose share of
    /// its ceiling is the median (the lower one of an even count), and
    /// judges the scenario by most rounds: one minute's speed, fast or
    /// slow, decides no verdict.
    pub fn add_rounds(&mut self, rounds: Vec<Round>) {
        let share = |round: &Round| round.ceiling.map(|ceiling| round.scenario.rate / ceiling);
        let mut by_share: Vec<usize> = (0..rounds.len()).collect();
        // A round without a ceiling (only in tests: a real round has one) is ordered by its rate.
        by_share.sort_by(|&a, &b| {
            let key = |round: &Round| share(round).unwrap_or(round.scenario.rate);
            key(&rounds[a]).total_cmp(&key(&rounds[b]))
        });
        let Some(&median) = by_share.get((rounds.len().saturating_sub(1)) / 2) else { return };
        if rounds.len() > 1 {
            let outcomes = rounds
                .iter()
                .map(|round| RoundOutcome {
                    ceiling: round.ceiling,
                    share: share(round),
                    met: meets(&round.scenario, round.ceiling),
                })
                .collect();
            self.rounds.insert(rounds[median].scenario.name.clone(), outcomes);
        }
        let Round { scenario, ceiling } = rounds.into_iter().nth(median).expect("the median is one of the rounds");
        if let Some(ceiling) = ceiling {
            self.ceilings_beside.insert(scenario.name.clone(), ceiling);
        }
        self.scenarios.push(scenario);
    }

    /// The `met?` cell: the verdict of the one round, or of most rounds
    /// with each round's share beside it.
    fn met_cell(&self, scenario: &Scenario, ceiling: Option<f64>) -> String {
        let Some(outcomes) = self.rounds.get(&scenario.name) else {
            return verdict(meets(scenario, ceiling)).to_owned();
        };
        let met = outcomes.iter().filter(|outcome| outcome.met == Some(true)).count();
        let judged = outcomes.iter().all(|outcome| outcome.met.is_some());
        let shares: Vec<String> = outcomes
            .iter()
            .map(|outcome| outcome.share.map_or_else(|| "?".to_owned(), |share| format!("{share:.2}×")))
            .collect();
        format!(
            "{}: {met} of {} rounds ({})",
            verdict(judged.then_some(met * 2 > outcomes.len())),
            outcomes.len(),
            shares.join(", ")
        )
    }

    /// The Markdown table: one row per scenario (its rate also as a ratio
    /// of the ceiling), start-up, peak RSS and the two ceilings.
    /// A scenario with errors does not meet its target.
    pub fn table(&self) -> String {
        let mut table = String::from(
            "| scenario | req/s | of ceiling | p50 ms | p99 ms | p99.9 ms | errors | target | met? |\n\
             |---|---:|---:|---:|---:|---:|---:|---|---|\n",
        );
        for scenario in &self.scenarios {
            let target = Target::of(&scenario.name);
            let ceiling = target.and_then(|target| self.ceiling(scenario, &target));
            let text = target.map_or_else(|| "none".to_owned(), |target| target.text(&scenario.name, ceiling));
            let met = self.met_cell(scenario, ceiling);
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
                met,
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
        if let Some((run, mb)) = self.rss_mb.iter().copied().reduce(|a, b| if b.1 > a.1 { b } else { a }) {
            table.push_str(&format!(
                "| API peak RSS (VmHWM) = {mb:.1} MB, in run {run} | | | | | | | < 100 MB | {} |\n",
                yes_no(mb < 100.0)
            ));
        }
        if let Some(ceilings) = self.ceilings {
            for (what, tps) in
                [("pgbench -S (select-only)", ceilings.select), ("pgbench one-row INSERT", ceilings.insert)]
            {
                table.push_str(&format!("| ceiling at the start: {what} = {} tps | | | | | | | | |\n", thousands(tps)));
            }
        }
        for kind in [Ceiling::Select, Ceiling::Insert] {
            let beside = self.ceilings_beside.iter().filter(|(name, _)| ceiling_of(name) == Some(kind)).flat_map(
                |(name, &tps)| match self.rounds.get(name) {
                    Some(outcomes) => outcomes.iter().filter_map(|outcome| outcome.ceiling).collect(),
                    None => vec![tps],
                },
            );
            let Some((low, high)) = beside.fold(None, |range: Option<(f64, f64)>, tps| {
                Some(range.map_or((tps, tps), |(low, high)| (low.min(tps), high.max(tps))))
            }) else {
                continue;
            };
            let range = if low == high { thousands(low) } else { format!("{}–{}", thousands(low), thousands(high)) };
            table.push_str(&format!(
                "| ceiling: {} just before each scenario (each round) held to it = {range} tps (each is judged by its own) | | | | | | | | |\n",
                kind.label()
            ));
        }
        if let Some(CreateStatement { tps, wal }) = self.create_statement {
            table.push_str(&format!(
                "| create-job's statement alone (pgbench, xtask/bench/create_job.pgbench) = {} tps; from a checkpoint, {} WAL bytes per job, {} of them full-page images | | | | | | | | |\n",
                thousands(tps),
                thousands(wal.bytes_per_op),
                thousands(wal.image_bytes_per_op)
            ));
        }
        table
    }

    /// Where each scenario's CPU went, per operation, and what that cost
    /// allows on this machine against what its target needs; empty if no
    /// scenario was measured.
    pub fn cpu_table(&self) -> String {
        let measured: Vec<(&Scenario, &Cost)> =
            self.scenarios.iter().filter_map(|scenario| Some((scenario, scenario.cost.as_ref()?))).collect();
        let Some(cores) = measured.first().map(|(_, cost)| cost.cores) else {
            return String::new();
        };
        let groups: Vec<&str> = Group::STACK.iter().map(|group| group.label()).collect();
        let mut table = format!(
            "| scenario | cores busy (of {cores:.0}) | CPU ms per op | {} | other (kernel interrupts, other processes) | most/s at this cost | target needs ≤ ms per op |\n\
             |---|---:|---:|{}---:|---:|---:|\n",
            groups.join(" | "),
            "---:|".repeat(groups.len()),
        );
        for (scenario, cost) in measured {
            let by_group: Vec<String> =
                Group::STACK.iter().map(|group| format!("{:.3}", cost.group_ms_per_op[group])).collect();
            let needs = Target::of(&scenario.name)
                .and_then(|target| Some(target.rate(self.ceiling(scenario, &target)?)))
                .map(|rate| format!("{:.3}", cost.cores * 1000.0 / rate))
                .unwrap_or_default();
            table.push_str(&format!(
                "| {} | {:.0} % | {:.3} | {} | {:.3} | {} | {needs} |\n",
                scenario.name,
                cost.busy_share * 100.0,
                cost.machine_ms_per_op,
                by_group.join(" | "),
                cost.other_ms_per_op(),
                thousands(cost.most_per_second()),
            ));
        }
        table
    }

    /// The WAL each scenario that wrote any made Postgres write, per
    /// operation; empty if none did.
    pub fn wal_table(&self) -> String {
        let wrote: Vec<(&Scenario, &wal::Cost)> = self
            .scenarios
            .iter()
            .filter_map(|scenario| Some((scenario, scenario.wal.as_ref()?)))
            .filter(|(_, wal)| wal.bytes_per_op >= 1.0)
            .collect();
        if wrote.is_empty() {
            return String::new();
        }
        let mut table = String::from(
            "| scenario | WAL bytes per op (the whole server, from a checkpoint) | of which full-page images |\n|---|---:|---:|\n",
        );
        for (scenario, wal) in wrote {
            table.push_str(&format!(
                "| {} | {} | {} |\n",
                scenario.name,
                thousands(wal.bytes_per_op),
                thousands(wal.image_bytes_per_op)
            ));
        }
        table
    }

    /// A scenario's rate as a ratio of its ceiling (`0.42×`); empty without one.
    fn ratio(&self, scenario: &Scenario) -> String {
        Target::of(&scenario.name)
            .and_then(|target| self.ceiling(scenario, &target))
            .map(|ceiling| format!("{:.2}×", scenario.rate / ceiling))
            .unwrap_or_default()
    }
}

/// Prints the tables (the main ones, then `more`) and writes them to `target/bench/latest.md`.
pub(super) fn write(runner: &Runner, options: &Options, results: &Results, more: &str) -> anyhow::Result<()> {
    runner.step("print the table, write target/bench/latest.md", || {
        let table = format!("{}\n{}\n{}\n{more}", results.table(), results.cpu_table(), results.wal_table());
        println!("\n{table}");
        let bench_dir = runner.path("target/bench");
        std::fs::create_dir_all(&bench_dir)?;
        let note = format!(
            "cargo xtask bench --seconds {} --connections {} --jobs {} --agents {} --minutes {} --repeat {}{}{}{}; load generator and services on the same machine.\n\n",
            options.seconds,
            options.connections,
            options.jobs,
            options.agents,
            options.minutes,
            options.repeat,
            if options.only.is_empty() { String::new() } else { format!(" --only {}", options.only.join(",")) },
            options.api.as_ref().map(|api| format!(" --api {}", api.display())).unwrap_or_default(),
            options.worker.as_ref().map(|worker| format!(" --worker {}", worker.display())).unwrap_or_default(),
        );
        std::fs::write(bench_dir.join("latest.md"), note + &table)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, rate: f64, p99: f64, errors: u64) -> Scenario {
        Scenario {
            name: name.into(),
            rate,
            p50: p99 / 4.0,
            p99,
            p999: p99 * 2.0,
            errors,
            cost: None,
            wal: None,
            cache_hit_rate: None,
        }
    }

    #[test]
    fn the_table_checks_each_target() {
        let results = Results {
            scenarios: vec![
                scenario("discovery", 12_000.0, 4.0, 0),
                scenario("get-agent", 12_000.0, 11.0, 0),
                scenario("create-job", 2_500.0, 30.0, 3),
                scenario("uncached: capabilities=skill-42", 6_000.0, 9.0, 0),
                scenario("uncached: capabilities=translation", 3_599.0, 2.0, 0),
                scenario("deliveries", 250.0, 80.0, 0),
            ],
            startup_ms: Some(250.0),
            rss_mb: vec![("1", 40.0), ("2", 120.5), ("3", 60.0)],
            ceilings: Some(Ceilings { select: 24_000.0, insert: 5_000.0 }),
            publish_lag_s: Some(Some(2.46)),
            create_statement: Some(CreateStatement {
                tps: 3_500.0,
                wal: wal::Cost { bytes_per_op: 9_682.4, image_bytes_per_op: 4_215.6 },
            }),
            ..Results::default()
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
        assert!(rows[0].contains("| ≥ 0.30× of pgbench -S (7,200 req/s here), p99 < 10 ms |"), "{}", rows[0]);
        assert!(rows[1].ends_with("| **no** |"), "p99 over 10 ms misses: {}", rows[1]);
        assert!(rows[2].contains("| ≥ 0.10× of the insert (500 req/s here) |"), "{}", rows[2]);
        assert!(rows[2].contains("| 2500 | 0.50× |"), "writes against the insert ceiling: {}", rows[2]);
        assert!(rows[2].ends_with("| **no** |"), "errors miss the target: {}", rows[2]);
        assert!(
            rows[3].contains("| 6000 | 0.25× |")
                && rows[3].contains("≥ 0.15× of pgbench -S (3,600 req/s here), p99 < 10 ms")
        );
        assert!(rows[3].ends_with("| yes |"), "{}", rows[3]);
        assert!(rows[4].ends_with("| **no** |"), "under 0.15× of pgbench -S misses: {}", rows[4]);
        assert!(
            rows[5].contains("≥ 0.06× of the insert (300 deliveries/s here)")
                && rows[5].contains("| 0.05× |")
                && rows[5].ends_with("| **no** |"),
            "{}",
            rows[5]
        );
        assert!(rows[6].starts_with("| create-job's events all published 2.5 s after its last request |"));
        assert!(rows[7].contains("= 250 ms") && rows[7].ends_with("| yes |"));
        assert!(
            rows[8].contains("= 120.5 MB, in run 2 |") && rows[8].ends_with("| **no** |"),
            "the largest of the runs"
        );
        assert!(rows[9].starts_with("| ceiling at the start: pgbench -S (select-only) = 24,000 tps |"), "{}", rows[9]);
        assert!(rows[10].starts_with("| ceiling at the start: pgbench one-row INSERT = 5,000 tps |"), "{}", rows[10]);
        assert!(rows[11].contains("statement alone (pgbench, xtask/bench/create_job.pgbench) = 3,500 tps"));
        assert!(
            rows[11].contains("from a checkpoint, 9,682 WAL bytes per job, 4,216 of them full-page images"),
            "{}",
            rows[11]
        );
    }

    #[test]
    fn the_cpu_table_says_what_the_cost_allows_against_the_target() {
        let cost = Cost {
            cores: 2.0,
            busy_share: 0.975,
            machine_ms_per_op: 1.25,
            group_ms_per_op: Group::STACK.into_iter().zip([0.3, 0.0, 0.5, 0.05, 0.0, 0.1]).collect(),
        };
        let mut measured = scenario("create-job", 1_560.0, 30.0, 0);
        measured.cost = Some(cost);
        let results = Results {
            scenarios: vec![measured, scenario("discovery", 12_000.0, 4.0, 0)],
            ceilings: Some(Ceilings { select: 60_000.0, insert: 25_000.0 }),
            ..Results::default()
        };
        let table = results.cpu_table();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3, "a header, its rule and one measured scenario:\n{table}");
        assert!(rows[0].contains("cores busy (of 2)") && rows[0].contains("| load generator |"), "{}", rows[0]);
        assert_eq!(rows[0].matches('|').count(), rows[1].matches('|').count(), "{table}");
        assert_eq!(
            rows[2],
            "| create-job | 98 % | 1.250 | 0.300 | 0.000 | 0.500 | 0.050 | 0.000 | 0.100 | 0.300 | 1,600 | 0.800 |",
            "other = machine - groups; most = cores / cost; the target needs cores / (0.10 × 25,000)"
        );
        assert_eq!(Results::default().cpu_table(), "", "nothing measured, no table");
    }

    #[test]
    fn the_wal_table_lists_the_scenarios_that_wrote() {
        let mut writes = scenario("create-job", 1_560.0, 30.0, 0);
        writes.wal = Some(wal::Cost { bytes_per_op: 9_682.4, image_bytes_per_op: 4_215.6 });
        let mut reads = scenario("discovery", 12_000.0, 4.0, 0);
        reads.wal = Some(wal::Cost { bytes_per_op: 0.2, image_bytes_per_op: 0.0 });
        let results =
            Results { scenarios: vec![writes, reads, scenario("get-agent", 12_000.0, 4.0, 0)], ..Results::default() };
        let table = results.wal_table();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3, "a header, its rule and the one scenario that wrote:\n{table}");
        assert_eq!(rows[2], "| create-job | 9,682 | 4,216 |");
        assert_eq!(Results::default().wal_table(), "", "nothing measured, no table");
    }

    #[test]
    fn each_scenario_is_judged_by_the_ceiling_measured_beside_it() {
        let (translation, skill) = ("uncached: capabilities=translation", "uncached: capabilities=skill-42");
        let results = Results {
            scenarios: vec![
                scenario(translation, 6_000.0, 8.0, 0),
                scenario(skill, 6_000.0, 8.0, 0),
                scenario("create-job", 2_000.0, 30.0, 0),
            ],
            ceilings: Some(Ceilings { select: 42_000.0, insert: 20_000.0 }),
            ceilings_beside: HashMap::from([
                (translation.to_owned(), 36_000.0),
                (skill.to_owned(), 44_000.0),
                ("create-job".to_owned(), 19_000.0),
            ]),
            ..Results::default()
        };
        let table = results.table();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert!(rows[0].contains("| 6000 | 0.17× |") && rows[0].contains("(5,400 req/s here)"), "{}", rows[0]);
        assert!(rows[0].ends_with("| yes |"), "a slow minute, and a ceiling as slow: {}", rows[0]);
        assert!(rows[1].contains("| 0.14× |") && rows[1].contains("(6,600 req/s here)"), "{}", rows[1]);
        assert!(rows[1].ends_with("| **no** |"), "a fast minute: {}", rows[1]);
        assert!(rows[2].contains("| 0.11× |") && rows[2].ends_with("| yes |"), "{}", rows[2]);
        assert!(rows[3].starts_with("| ceiling at the start: pgbench -S (select-only) = 42,000 tps |"), "{table}");
        assert!(rows[5].starts_with(
            "| ceiling: pgbench -S just before each scenario (each round) held to it = 36,000–44,000 tps"
        ));
        assert!(
            rows[6].starts_with("| ceiling: the insert just before each scenario (each round) held to it = 19,000 tps")
        );
        assert!(table.lines().all(|row| row.matches('|').count() == 10), "nine columns in every row:\n{table}");
    }

    #[test]
    fn rounds_show_the_median_share_and_most_rounds_decide() {
        let round = |rate: f64, p99: f64, ceiling: f64| Round {
            scenario: scenario("uncached: capabilities=translation", rate, p99, 0),
            ceiling: Some(ceiling),
        };
        let mut results = Results::default();
        // Shares 0.16×, 0.12×, 0.20×: the median is the first round's.
        results.add_rounds(vec![
            round(6_400.0, 8.0, 40_000.0),
            round(6_000.0, 9.0, 50_000.0),
            round(7_000.0, 7.0, 35_000.0),
        ]);
        // Shares 0.16× (p99 over 10 ms), 0.14×, 0.15×, 0.17×: the lower median, 0.15×, is shown; two of four meet.
        let rated = |rate: f64, p99: f64, ceiling: f64| Round {
            scenario: scenario("uncached: capabilities=code-review&min_rating=4", rate, p99, 0),
            ceiling: Some(ceiling),
        };
        results.add_rounds(vec![
            rated(6_400.0, 12.0, 40_000.0),
            rated(5_600.0, 8.0, 40_000.0),
            rated(6_000.0, 8.0, 40_000.0),
            rated(6_800.0, 8.0, 40_000.0),
        ]);
        let once =
            Round { scenario: scenario("uncached: capabilities=skill-42", 9_000.0, 5.0, 0), ceiling: Some(45_000.0) };
        results.add_rounds(vec![once]);
        results.add_rounds(Vec::new());
        assert_eq!(results.scenarios.len(), 3, "one row per scenario, none for no rounds");
        let table = results.table();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert!(rows[0].contains("| 6400 | 0.16× |"), "the median round: {}", rows[0]);
        assert!(rows[0].ends_with("| yes: 2 of 3 rounds (0.16×, 0.12×, 0.20×) |"), "{}", rows[0]);
        assert!(rows[1].contains("| 6000 | 0.15× |"), "the lower of the two middle rounds: {}", rows[1]);
        assert!(
            rows[1].ends_with("| **no**: 2 of 4 rounds (0.16×, 0.14×, 0.15×, 0.17×) |"),
            "the first's p99 and the second's share miss, and a half is not most: {}",
            rows[1]
        );
        assert!(rows[2].contains("| 9000 | 0.20× |") && rows[2].ends_with("| yes |"), "one round: {}", rows[2]);
        assert!(
            table.contains("pgbench -S just before each scenario (each round) held to it = 35,000–50,000 tps"),
            "every round's ceiling is in the range: {table}"
        );
        assert!(table.lines().all(|row| row.matches('|').count() == 10), "nine columns in every row:\n{table}");

        let mut dry = Results::default();
        let unjudged = |rate: f64| Round { scenario: scenario("create-job", rate, 20.0, 0), ceiling: None };
        dry.add_rounds(vec![unjudged(3.0), unjudged(1.0), unjudged(2.0)]);
        assert_eq!(dry.scenarios[0].rate, 2.0, "without ceilings, the median rate");
        assert!(dry.table().contains("| ?: 0 of 3 rounds (?, ?, ?) |"), "{}", dry.table());
    }

    #[test]
    fn without_ceilings_the_ratio_is_empty() {
        let results = Results { scenarios: vec![scenario("discovery", 12_000.0, 4.0, 0)], ..Results::default() };
        let table = results.table();
        assert!(table.contains("| discovery | 12000 |  | 1.00 |"), "{table}");
        assert!(table.contains("| ≥ 0.30× of pgbench -S, p99 < 10 ms | ? |"), "nothing to judge by: {table}");
        assert!(!table.contains("ceiling:"), "{table}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(23_456.7), "23,457");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
