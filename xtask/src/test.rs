//! `cargo xtask test`: every test of the workspace. Integration tests create
//! their own databases on the Postgres at `TEST_DATABASE_URL` and use the
//! Redis at `TEST_REDIS_URL` (both default to the local servers). The
//! signature tests also run a published Python RFC 9421 client, the contract
//! test schemathesis, and the end-to-end tests Google's Pub/Sub emulator:
//! [`tools`] provides or checks those first.

use xshell::cmd;

use crate::runner::Runner;
use crate::tools;

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    tools::provide(runner)?;
    run_tests(runner)
}

/// The tests alone, once [`tools::provide`] has run.
pub fn run_tests(runner: &Runner) -> anyhow::Result<()> {
    let sh = &runner.sh;
    if runner.has_cargo_subcommand("nextest") {
        runner.run(cmd!(sh, "cargo nextest run --workspace --no-fail-fast"))
    } else {
        runner.run(cmd!(sh, "cargo test --workspace --no-fail-fast"))
    }
}
