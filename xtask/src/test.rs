//! `cargo xtask test`: every test of the workspace. Integration tests create
//! their own databases on the Postgres at `TEST_DATABASE_URL` and use the
//! Redis at `TEST_REDIS_URL` (both default to the local servers). The
//! signature tests also run a published Python RFC 9421 client, and the
//! contract test schemathesis (`tests/scripts/requirements.txt`), installed
//! here when missing.

use xshell::cmd;

use crate::runner::Runner;

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    crate::axe::provision(runner)?;
    let sh = &runner.sh;
    let has_python_client = cmd!(sh, "python3 -c 'import http_message_signatures, requests, schemathesis'")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok();
    if !has_python_client {
        runner.run(cmd!(sh, "python3 -m pip install --quiet -r tests/scripts/requirements.txt"))?;
    }
    if runner.has_cargo_subcommand("nextest") {
        runner.run(cmd!(sh, "cargo nextest run --workspace --no-fail-fast"))
    } else {
        runner.run(cmd!(sh, "cargo test --workspace --no-fail-fast"))
    }
}
