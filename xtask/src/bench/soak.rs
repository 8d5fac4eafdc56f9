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

use super::report::Scenario;
use super::stack::memory_mb;

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

    /// One line per process: its first, median and peak sample, and
    /// whether the API stayed under its target at every sample.
    pub fn summary(&self) -> String {
        let mut lines = String::from(
            "| process | samples | first MB | median MB | peak MB | target |\n|---|---:|---:|---:|---:|---|\n",
        );
        for (process, name) in self.names.iter().enumerate() {
            let mut mbs: Vec<f64> = self.samples.iter().map(|sample| sample.mb[process]).collect();
            let first = mbs.first().copied().unwrap_or(f64::NAN);
            mbs.sort_by(f64::total_cmp);
            let median = mbs.get(mbs.len() / 2).copied().unwrap_or(f64::NAN);
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

/// The soak's section of the report: memory, the hit rate, and each
/// traffic's rate with the cache against without it.
pub fn report(memory: &Memory, scenarios: &[Scenario]) -> String {
    let mut report = format!("### Soak: memory\n\n{}\n{}", memory.summary(), memory.chart());
    report.push_str("\n### Soak: the page cache\n\n| traffic | cache on req/s | hits | cache off req/s | on ÷ off |\n|---|---:|---:|---:|---:|\n");
    for traffic in TRAFFIC {
        let on = scenarios.iter().find(|scenario| scenario.name == name(traffic, true));
        let off = scenarios.iter().find(|scenario| scenario.name == name(traffic, false));
        if let (Some(on), Some(off)) = (on, off) {
            let hits = on.cache_hit_rate.map_or_else(String::new, |rate| format!("{:.0} %", rate * 100.0));
            report.push_str(&format!(
                "| {traffic} | {:.0} | {hits} | {:.0} | {:.2}× |\n",
                on.rate,
                off.rate,
                on.rate / off.rate
            ));
        }
    }
    report
}

/// The load generator's soak scenarios.
pub const TRAFFIC: [&str; 3] = ["soak", "soak-hot", "soak-tail"];

/// A soak scenario's name in the table.
pub fn name(traffic: &str, cache: bool) -> String {
    format!("{traffic} (cache {})", if cache { "on" } else { "off" })
}
