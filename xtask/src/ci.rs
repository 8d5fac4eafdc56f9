//! `cargo xtask ci`: what CI runs, in the order that fails fastest: the
//! tools the tests need first, so a machine without them is told at once.

use std::collections::BTreeMap;
use std::path::Path;

use xshell::cmd;

use crate::runner::Runner;
use crate::{prepare, test, tools};

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let sh = &runner.sh;
    tools::provide(runner)?;
    runner.run(cmd!(sh, "cargo fmt --all -- --check"))?;
    check_sqlx_offline_data(runner)?;
    runner.run(cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings"))?;
    test::run_tests(runner)
}

/// Regenerates the offline data into a scratch folder and compares it with
/// the committed `.sqlx/`, so stale data (a changed query or migration)
/// fails CI instead of a later build.
fn check_sqlx_offline_data(runner: &Runner) -> anyhow::Result<()> {
    let fresh = runner.path("target/sqlx-check");
    prepare::regenerate(runner, &fresh)?;
    runner.step("compare the regenerated query data with .sqlx/", || {
        let (committed, regenerated) = (read_dir(&runner.path(".sqlx"))?, read_dir(&fresh)?);
        if committed != regenerated {
            let stale: Vec<&String> = committed
                .keys()
                .chain(regenerated.keys())
                .filter(|name| committed.get(*name) != regenerated.get(*name))
                .collect();
            anyhow::bail!(
                ".sqlx/ is stale ({} files differ): run `cargo xtask prepare` and commit .sqlx/",
                stale.len()
            );
        }
        Ok(())
    })
}

fn read_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    if dir.exists() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            files.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(entry.path())?);
        }
    }
    Ok(files)
}
