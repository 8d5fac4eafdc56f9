//! `cargo xtask test`: every test of the workspace. Integration tests create
//! their own databases on the Postgres at `TEST_DATABASE_URL` and use the
//! Redis at `TEST_REDIS_URL` (both default to the local servers).

use xshell::cmd;

use crate::runner::Runner;

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let sh = &runner.sh;
    if runner.has_cargo_subcommand("nextest") {
        runner.run(cmd!(sh, "cargo nextest run --workspace --no-fail-fast"))
    } else {
        runner.run(cmd!(sh, "cargo test --workspace --no-fail-fast"))
    }
}
