//! One scenario measured in rounds (`--repeat`, 1 by default), each
//! against the ceiling its target names, measured again just before it.
//!
//! The box's speed moves by a third within minutes, and a slow minute
//! slows pgbench and the services alike: so each round is judged by its
//! own ceiling, and a scenario by most of its rounds ([`Results::add_rounds`]).

use std::path::Path;

use super::report::{self, Results, Round};
use super::stack::Stack;
use super::{Options, WARM_UP_SECONDS, ceiling, database::wait_for_events_published, run_load, wal};
use crate::runner::Runner;

/// What every round needs, whatever the scenario.
pub(super) struct Rounds<'a> {
    pub runner: &'a Runner,
    pub runtime: &'a tokio::runtime::Runtime,
    pub options: &'a Options,
    /// The bench database, whose events the API publishes.
    pub database_url: &'a str,
    pub ceiling_url: &'a str,
    pub bench_dir: &'a Path,
}

impl<'a> Rounds<'a> {
    /// Measures `name` `--repeat` times: in each round, once the services
    /// are idle (every event published), its ceiling if its target names
    /// one, then, if `warm_up`, `drive` unmeasured for a few seconds (to
    /// refill the buffers pgbench took; its events published before the
    /// measured run), then `drive` for `--seconds`, measured.
    pub fn measure(
        &self,
        stack: &Stack,
        name: &str,
        warm_up: bool,
        drive: impl Fn(&str) -> xshell::Cmd<'a>,
        results: &mut Results,
    ) -> anyhow::Result<()> {
        let seconds = self.options.seconds.to_string();
        let mut rounds = Vec::with_capacity(self.options.repeat);
        let wal = wal::Source { runtime: self.runtime, database_url: self.database_url };
        for _ in 0..self.options.repeat {
            let ceiling = match report::ceiling_of(name) {
                Some(ceiling) => {
                    self.wait_until_published("before the ceiling")?;
                    ceiling::measure(self.runner, ceiling, self.ceiling_url, self.options, self.bench_dir)?
                }
                None => None,
            };
            if warm_up {
                self.runner.run(drive(WARM_UP_SECONDS).ignore_stdout())?;
                self.wait_until_published("after the warm-up")?;
            }
            let measured = run_load(self.runner, stack, name, drive(&seconds), &[], Some(&wal))?;
            rounds.extend(measured.map(|scenario| Round { scenario, ceiling }));
        }
        results.add_rounds(rounds);
        Ok(())
    }

    /// Until the API has published every event: its publisher's work is
    /// not the ceiling's, nor the next measured run's.
    fn wait_until_published(&self, when: &str) -> anyhow::Result<()> {
        self.runner.step(&format!("wait until the API has published every event ({when})"), || {
            if self.runtime.block_on(wait_for_events_published(self.database_url))?.is_none() {
                eprintln!("warning: events were still unpublished after five minutes; measuring anyway");
            }
            Ok(())
        })
    }
}
