//! The soak (`--only soak`, `--minutes N`): the load generator's `soak`
//! traffic (a long tail of distinct discovery queries with a Zipf hot head,
//! agent reads, signed job creations) against the whole pipeline for N
//! minutes, sampling the API's and the worker's resident memory every few
//! seconds. Its report: memory over time, the page cache's hit rate, and the
//! short comparisons of the same traffic with the cache on and off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xshell::cmd;

use super::cpu::Group;
use super::report::{Results, Scenario};
use super::stack::{Stack, memory_mb};
use super::{Options, run_load, target_dir};
use crate::runner::Runner;

/// How often memory is sampled.
const EVERY: Duration = Duration::from_secs(5);
/// The API's memory target (docs/PERFORMANCE.md).
const API_RSS_TARGET_MB: f64 = 100.0;

/// One sample: seconds since the soak began, and each process's MB.
pub struct Sample {
    pub at: f64,
    pub mb: Vec<f64>,
}

/// Samples the resident memory of `processes` on a thread of its own until
/// [`Sampler::finish`].
pub struct Sampler {
    names: Vec<&'static str>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(processes: Vec<(&'static str, u32)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let names = processes.iter().map(|(name, _)| *name).collect();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let mb = processes.iter().map(|(_, pid)| memory_mb(*pid, "VmRSS").unwrap_or(f64::NAN)).collect();
                samples.push(Sample { at: start.elapsed().as_secs_f64(), mb });
                let next = Instant::now() + EVERY;
                while Instant::now() < next && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        });
        Self { names, stop, thread }
    }

    pub fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        Memory { names: self.names, samples }
    }
}

/// Memory over the soak.
pub struct Memory {
    names: Vec<&'static str>,
    samples: Vec<Sample>,
}

impl Memory {
    fn peak(&self, process: usize) -> f64 {
        self.samples.iter().map(|sample| sample.mb[process]).fold(f64::NAN, f64::max)
    }

    /// The samples of `process`, sorted.
    fn sorted(&self, process: usize) -> Vec<f64> {
        let mut mbs: Vec<f64> = self.samples.iter().map(|sample| sample.mb[process]).collect();
        mbs.sort_by(f64::total_cmp);
        mbs
    }

    /// The API's samples: how many, their median and their peak (MB).
    fn api(&self) -> Option<(usize, f64, f64)> {
        let process = self.names.iter().position(|name| name.starts_with("api"))?;
        let mbs = self.sorted(process);
        Some((mbs.len(), median(&mbs), self.peak(process)))
    }

    /// One line per process: its first, median and peak sample, and
    /// whether the API stayed under its target at every sample.
    pub fn summary(&self) -> String {
        let mut lines = String::from(
            "| process | samples | first MB | median MB | peak MB | target |\n|---|---:|---:|---:|---:|---|\n",
        );
        for (process, name) in self.names.iter().enumerate() {
            let first = self.samples.first().map_or(f64::NAN, |sample| sample.mb[process]);
            let mbs = self.sorted(process);
            let median = median(&mbs);
            let target = if *name == "api" {
                let met = self.peak(process) < API_RSS_TARGET_MB;
                format!("< {API_RSS_TARGET_MB:.0} MB at every sample: {}", if met { "yes" } else { "**no**" })
            } else {
                String::new()
            };
            lines.push_str(&format!(
                "| {name} | {} | {first:.1} | {median:.1} | {:.1} | {target} |\n",
                mbs.len(),
                self.peak(process)
            ));
        }
        lines
    }

    /// A text chart of each process's memory, one row per 30 s.
    pub fn chart(&self) -> String {
        let scale = self.names.iter().enumerate().map(|(process, _)| self.peak(process)).fold(1.0, f64::max);
        let mut chart = String::from("```text\n");
        let mut next_row = 0.0;
        for sample in &self.samples {
            if sample.at + 0.5 < next_row {
                continue;
            }
            next_row += 30.0;
            chart.push_str(&format!("{:>5.0} s", sample.at));
            for (name, mb) in self.names.iter().zip(&sample.mb) {
                let bar = "#".repeat((mb / scale * 30.0).round() as usize);
                chart.push_str(&format!("  {name} {mb:>6.1} MB {bar:<30}"));
            }
            chart.push('\n');
        }
        chart.push_str("```\n");
        chart
    }

    /// Every sample, as CSV.
    pub fn csv(&self) -> String {
        let mut csv =
            format!("seconds,{}\n", self.names.iter().map(|name| format!("{name}_mb")).collect::<Vec<_>>().join(","));
        for sample in &self.samples {
            let mbs: Vec<String> = sample.mb.iter().map(|mb| format!("{mb:.1}")).collect();
            csv.push_str(&format!("{:.1},{}\n", sample.at, mbs.join(",")));
        }
        csv
    }
}

/// The middle of sorted samples.
fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One API run's memory: its own peak (`VmHWM`, read as it stopped) and its
/// RSS sampled while the soak's traffic ran on it (`None`: none ran).
pub struct RunMemory<'a> {
    pub run: &'a str,
    pub peak_mb: f64,
    pub sampled: Option<&'a Memory>,
}

/// The soak's section of the report: memory over the long run and per API
/// run, the hit rate, and each traffic's rate and API CPU per request with
/// the cache against without it.
pub fn report(memory: &Memory, runs: &[RunMemory], scenarios: &[Scenario]) -> String {
    let mut report = format!("### Soak: memory\n\n{}\n{}", memory.summary(), memory.chart());
    report.push_str(&per_run(runs));
    report.push_str(&cache_table(scenarios));
    report
}

/// Each API run's own peak and sampled RSS, so a peak is pinned to a run.
fn per_run(runs: &[RunMemory]) -> String {
    let mut table = String::from(
        "\n### Soak: the API's memory per run\n\n| API run | VmHWM MB | RSS samples | median MB | peak sampled MB | VmHWM < 100 MB |\n|---|---:|---:|---:|---:|---|\n",
    );
    for run in runs {
        let (samples, median, peak) = run.sampled.and_then(Memory::api).map_or_else(
            || (String::from("0"), String::new(), String::new()),
            |(count, median, peak)| (count.to_string(), format!("{median:.1}"), format!("{peak:.1}")),
        );
        let met = if run.peak_mb < API_RSS_TARGET_MB { "yes" } else { "**no**" };
        table.push_str(&format!("| {} | {:.1} | {samples} | {median} | {peak} | {met} |\n", run.run, run.peak_mb));
    }
    table
}

/// Each traffic with the cache on and off: rate, hits, and the API's CPU
/// per request (what a box shared with other work distorts least).
fn cache_table(scenarios: &[Scenario]) -> String {
    let mut table = String::from(
        "\n### Soak: the page cache\n\n| traffic | cache on req/s | hits | API CPU ms/req | cache off req/s | API CPU ms/req | req/s on ÷ off | API CPU on ÷ off |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let api_ms = |scenario: &Scenario| scenario.cost.as_ref().map(|cost| cost.group_ms_per_op[&Group::Api]);
    let shown = |ms: Option<f64>| ms.map_or_else(String::new, |ms| format!("{ms:.3}"));
    for traffic in TRAFFIC {
        let on = scenarios.iter().find(|scenario| scenario.name == name(traffic, true));
        let off = scenarios.iter().find(|scenario| scenario.name == name(traffic, false));
        if let (Some(on), Some(off)) = (on, off) {
            let hits = on.cache_hit_rate.map_or_else(String::new, |rate| format!("{:.0} %", rate * 100.0));
            let cpu_ratio =
                api_ms(on).zip(api_ms(off)).map_or_else(String::new, |(on, off)| format!("{:.2}×", on / off));
            table.push_str(&format!(
                "| {traffic} | {:.0} | {hits} | {} | {:.0} | {} | {:.2}× | {cpu_ratio} |\n",
                on.rate,
                shown(api_ms(on)),
                off.rate,
                shown(api_ms(off)),
                on.rate / off.rate
            ));
        }
    }
    table
}

/// The load generator's soak scenarios.
pub const TRAFFIC: [&str; 3] = ["soak", "soak-hot", "soak-tail"];

/// A soak scenario's name in the table.
pub fn name(traffic: &str, cache: bool) -> String {
    format!("{traffic} (cache {})", if cache { "on" } else { "off" })
}

/// The soak's traffics for `--seconds` each against the running API, its
/// page cache on or off, to compare the two; the API's RSS sampled
/// meanwhile (`None` when the soak is not wanted or in a dry run).
pub(super) fn comparisons(
    runner: &Runner,
    stack: &Stack,
    options: &Options,
    api_url: &str,
    cache: bool,
    results: &mut Results,
) -> anyhow::Result<Option<Memory>> {
    if !options.wants("soak") {
        return Ok(None);
    }
    let sh = &runner.sh;
    let load = target_dir(&runner.root).join("release/load");
    let (seconds, connections) = (options.seconds.to_string(), options.connections.to_string());
    let api = stack.pids().into_iter().filter(|(name, _)| name.starts_with("api")).collect();
    let memory = (!runner.dry_run).then(|| Sampler::start(api));
    for traffic in TRAFFIC {
        let command = cmd!(sh, "{load} {traffic} --url {api_url} --seconds {seconds} --connections {connections}");
        results.scenarios.extend(run_load(runner, stack, &name(traffic, cache), command, &[], None)?);
    }
    Ok(memory.map(Sampler::finish))
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cost;
    use super::*;

    fn memory(names: Vec<&'static str>, mbs: &[&[f64]]) -> Memory {
        let samples = mbs.iter().enumerate().map(|(i, mb)| Sample { at: i as f64 * 5.0, mb: mb.to_vec() }).collect();
        Memory { names, samples }
    }

    fn scenario(name: String, rate: f64, api_ms: f64, hits: Option<f64>) -> Scenario {
        let cost = Cost {
            cores: 2.0,
            busy_share: 1.0,
            machine_ms_per_op: 1.0,
            group_ms_per_op: Group::ALL
                .into_iter()
                .map(|group| (group, if group == Group::Api { api_ms } else { 0.1 }))
                .collect(),
        };
        Scenario {
            name,
            rate,
            p50: 1.0,
            p99: 2.0,
            p999: 3.0,
            errors: 0,
            cost: Some(cost),
            wal: None,
            cache_hit_rate: hits,
        }
    }

    /// Each run's own peak and samples, and each traffic's API CPU per
    /// request on and off, are in the report.
    #[test]
    fn the_report_pins_memory_to_each_run_and_compares_cpu_per_request() {
        let long = memory(vec!["api", "webhook-worker"], &[&[50.0, 30.0], &[70.0, 31.0], &[60.0, 32.0]]);
        let on = memory(vec!["api"], &[&[40.0], &[80.0], &[45.0]]);
        let off = memory(vec!["api-uncached"], &[&[41.0], &[42.0]]);
        let runs = [
            RunMemory { run: "1: cache on", peak_mb: 102.6, sampled: Some(&on) },
            RunMemory { run: "2: cache off", peak_mb: 44.0, sampled: Some(&off) },
            RunMemory { run: "3: pipeline", peak_mb: 71.0, sampled: Some(&long) },
        ];
        let scenarios = [
            scenario(name("soak-hot", true), 12_000.0, 0.05, Some(0.94)),
            scenario(name("soak-hot", false), 4_000.0, 0.20, None),
            scenario(name("soak-tail", true), 2_200.0, 0.16, Some(0.0)),
        ];
        let report = report(&long, &runs, &scenarios);
        assert!(report.contains("| 1: cache on | 102.6 | 3 | 45.0 | 80.0 | **no** |"), "{report}");
        assert!(report.contains("| 2: cache off | 44.0 | 2 | 42.0 | 42.0 | yes |"), "{report}");
        assert!(report.contains("| 3: pipeline | 71.0 | 3 | 60.0 | 70.0 | yes |"), "the API's column: {report}");
        assert!(report.contains("| soak-hot | 12000 | 94 % | 0.050 | 4000 | 0.200 | 3.00× | 0.25× |"), "{report}");
        assert!(!report.contains("| soak-tail |"), "no row without both sides: {report}");
    }
}
