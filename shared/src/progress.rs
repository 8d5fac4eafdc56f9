//! Progress of long work (the bench's seed and scenarios, sealing webhook
//! secrets): a line every few seconds with the count so far, of how many
//! when known, and the rate; nothing for work done within those seconds.
//!
//! Hand-written rather than a progress-bar crate: a periodic line is all
//! that is needed, and the same reports must also go to a service's
//! structured log (the maintenance task's sealing), where a bar cannot.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a line is written.
const EVERY: Duration = Duration::from_secs(3);

/// Where the lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Lines on stderr, for a person watching a terminal.
    Terminal,
    /// `tracing` info events, for a service's log.
    Log,
    /// Nowhere: CI logs, output into a file or a pipe.
    Quiet,
}

impl Report {
    /// [`Report::Terminal`] when stderr is a terminal and `CI` is not set,
    /// else [`Report::Quiet`].
    pub fn terminal_if_any() -> Self {
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() { Self::Terminal } else { Self::Quiet }
    }
}

/// Counts work done and reports it every [`EVERY`].
pub struct Progress {
    what: String,
    unit: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    report: Report,
    lines: u32,
}

impl Progress {
    /// `what` is being done to `total` (when known) things counted in `unit`s.
    pub fn new(what: impl Into<String>, unit: &'static str, total: Option<u64>, report: Report) -> Self {
        let now = Instant::now();
        Self { what: what.into(), unit, total, done: 0, started: now, last_line: now, report, lines: 0 }
    }

    /// `count` more done; writes a line when one is due.
    pub fn add(&mut self, count: u64) {
        self.done += count;
        if self.last_line.elapsed() >= EVERY {
            self.write();
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// A last line with the totals, when any line was written before (work
    /// that took less than [`EVERY`] says nothing).
    pub fn finish(mut self) {
        if self.lines > 0 {
            self.write();
        }
    }

    fn write(&mut self) {
        self.last_line = Instant::now();
        self.lines += 1;
        let line = render(&self.what, self.unit, self.done, self.total, self.started.elapsed());
        match self.report {
            Report::Terminal => eprintln!("{line}"),
            Report::Log => tracing::info!(done = self.done, total = self.total, "{line}"),
            Report::Quiet => {}
        }
    }
}

/// "sealing webhook secrets: 120,000 of 1,000,000 rows (12%), 8,000/s, 15 s".
fn render(what: &str, unit: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { (done as f64 / seconds).round() as u64 } else { 0 };
    let of = match total {
        Some(total) if total > 0 => format!(" of {} {unit} ({}%)", grouped(total), done * 100 / total),
        _ => format!(" {unit}"),
    };
    format!("{what}: {}{of}, {}/s, {:.0} s", grouped(done), grouped(rate), seconds)
}

/// 1234567 as "1,234,567".
pub fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_count_the_total_and_the_rate() {
        let line = render("sealing webhook secrets", "rows", 120_000, Some(1_000_000), Duration::from_secs(15));
        assert_eq!(line, "sealing webhook secrets: 120,000 of 1,000,000 rows (12%), 8,000/s, 15 s");
        let line = render("discovery", "requests", 999, None, Duration::from_millis(500));
        assert_eq!(line, "discovery: 999 requests, 1,998/s, 0 s");
        assert_eq!(render("seeding", "agents", 0, Some(0), Duration::ZERO), "seeding: 0 agents, 0/s, 0 s");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn short_work_says_nothing_and_long_work_counts() {
        let mut progress = Progress::new("test", "things", Some(10), Report::Quiet);
        progress.add(4);
        assert_eq!(progress.lines, 0, "nothing within the first seconds");
        progress.last_line -= EVERY;
        progress.add(1);
        assert_eq!((progress.done, progress.lines), (5, 1));
    }
}
